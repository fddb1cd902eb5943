//! A file's bytes as lines, and the edits [`lineinfile`](super::lineinfile) and
//! [`blockinfile`](super::blockinfile) make to them.
//!
//! Everything here works on bytes, never on a lossy string, so bytes that are not UTF-8
//! come back as they were. A line is compared without its ending (`\n` or `\r\n`); a
//! line converge inserts gets the file's own ending (that of its first line, `\n` for an
//! empty file), and a line it replaces keeps the ending it had. Lines are inserted after
//! a line that lacks its final newline only once that line has one.
//!
//! The edit and its plan are pure: the new content is computed on the controller from
//! the file's content read in the batched read, and written through the same atomic
//! write as [`file`](super::file).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::change::Attributes;
use crate::fact::{FactKey, FactStore, PathKind};
use crate::paths::file::{new_file, update_file};
use crate::paths::PathKey;
use crate::{
    check_owner_group, names, owner_group_facts, validate_owner_group, Mode, ParamError, Plan,
    PlanError, Presence,
};

/// A `regexp`, `insert_after` or `insert_before` that is not a regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid regular expression {text:?}: {}", last_line(source))]
pub struct InvalidPattern {
    text: String,
    source: regex::Error,
}

/// The last line of the parser's message, which says what is wrong (the lines before it
/// draw the expression with a caret).
fn last_line(error: &regex::Error) -> String {
    let message = error.to_string();
    let reason = message.lines().last().unwrap_or_default();
    reason.strip_prefix("error: ").unwrap_or(reason).to_owned()
}

/// A regular expression, matched against a line without its ending (so `$` is the end
/// of the line's text) and on its bytes, so a line need not be UTF-8. Invalid syntax is
/// refused while the playbook is read.
#[derive(Debug, Clone)]
pub struct Pattern(regex::bytes::Regex);

impl Pattern {
    /// Compiles `text`, or says in one line why it is not a regular expression.
    pub fn new(text: &str) -> Result<Self, InvalidPattern> {
        regex::bytes::Regex::new(text)
            .map(Pattern)
            .map_err(|source| InvalidPattern {
                text: text.to_owned(),
                source,
            })
    }

    /// Whether the expression matches somewhere in `line` (its text, without ending).
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.0.is_match(line)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::new(&text).map_err(serde::de::Error::custom)
    }
}

/// Where `insert_after` or `insert_before` points: the file's start (`BOF`), its end
/// (`EOF`), or the last line a regular expression matches.
#[derive(Debug, Clone)]
pub enum Anchor {
    Bof,
    Eof,
    Line(Pattern),
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::Bof => f.write_str("BOF"),
            Anchor::Eof => f.write_str("EOF"),
            Anchor::Line(pattern) => f.write_str(pattern.as_str()),
        }
    }
}

impl Serialize for Anchor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Anchor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(match text.as_str() {
            "BOF" => Anchor::Bof,
            "EOF" => Anchor::Eof,
            _ => Anchor::Line(Pattern::new(&text).map_err(serde::de::Error::custom)?),
        })
    }
}

/// Where new lines go when nothing in the file says where they are.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place<'a> {
    Start,
    End,
    After(&'a Pattern),
    Before(&'a Pattern),
}

impl<'a> Place<'a> {
    /// From `insert_after` and `insert_before` (at most one; neither is the end).
    pub(crate) fn of(after: Option<&'a Anchor>, before: Option<&'a Anchor>) -> Self {
        match (after, before) {
            (Some(Anchor::Bof), _) | (_, Some(Anchor::Bof)) => Place::Start,
            (Some(Anchor::Line(pattern)), _) => Place::After(pattern),
            (_, Some(Anchor::Line(pattern))) => Place::Before(pattern),
            _ => Place::End,
        }
    }

    /// The index in `lines` where new lines go: after or before the last line the
    /// pattern matches, or at the end when none does.
    pub(crate) fn index(self, lines: &[Vec<u8>]) -> usize {
        let last = |pattern: &Pattern| lines.iter().rposition(|line| pattern.is_match(text(line)));
        match self {
            Place::Start => 0,
            Place::End => lines.len(),
            Place::After(pattern) => last(pattern).map_or(lines.len(), |i| i + 1),
            Place::Before(pattern) => last(pattern).unwrap_or(lines.len()),
        }
    }
}

/// Checks `insert_after` and `insert_before`: at most one, and `EOF` only after.
fn validate_place(after: Option<&Anchor>, before: Option<&Anchor>) -> Result<(), ParamError> {
    if after.is_some() && before.is_some() {
        return Err(ParamError::AtMostOne {
            options: "insert_after, insert_before",
        });
    }
    if matches!(before, Some(Anchor::Eof)) {
        return Err(ParamError::Invalid {
            param: "insert_before",
            reason: "cannot be EOF: use insert_after: EOF (the default) to add at the end"
                .to_owned(),
        });
    }
    Ok(())
}

/// Refuses a value that must be one line.
pub(crate) fn validate_one_line(
    param: &'static str,
    value: &str,
    hint: &str,
) -> Result<(), ParamError> {
    if value.contains(['\n', '\r']) {
        return Err(ParamError::Invalid {
            param,
            reason: format!("must be one line, without a newline or carriage return{hint}"),
        });
    }
    Ok(())
}

/// `content` cut after each `\n`: every line keeps its ending, and the last one may
/// have none.
pub(crate) fn split(content: &[u8]) -> Vec<Vec<u8>> {
    content
        .split_inclusive(|byte| *byte == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A line without its ending.
pub(crate) fn text(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The ending of `line` (`\r\n`, `\n`, or none for a last line without one).
fn ending(line: &[u8]) -> &[u8] {
    &line[text(line).len()..]
}

/// The ending new lines get: that of the file's first line, `\n` when it has none.
pub(crate) fn newline(lines: &[Vec<u8>]) -> &'static [u8] {
    match lines.first().map(|line| ending(line)) {
        Some(b"\r\n") => b"\r\n",
        _ => b"\n",
    }
}

/// `line`'s text with the ending `newline`.
pub(crate) fn ended(line: &[u8], newline: &[u8]) -> Vec<u8> {
    [line, newline].concat()
}

/// Inserts `new` lines at `index`, first giving the line before them the final newline
/// it may lack.
pub(crate) fn insert(lines: &mut Vec<Vec<u8>>, index: usize, new: Vec<Vec<u8>>) {
    let newline = newline(lines);
    if let Some(before) = index.checked_sub(1).and_then(|i| lines.get_mut(i)) {
        if !before.ends_with(b"\n") {
            before.extend_from_slice(newline);
        }
    }
    lines.splice(index..index, new);
}

/// `line`'s text replaced by `new`, its ending kept.
pub(crate) fn replaced(line: &[u8], new: &[u8]) -> Vec<u8> {
    ended(new, ending(line))
}

/// What `lineinfile` and `blockinfile` share: the file, whether the edit is made or
/// undone, whether a missing file is created, and the attributes to give it.
pub(crate) struct Target<'a> {
    pub path: &'a str,
    pub state: Presence,
    pub create: bool,
    pub owner: Option<&'a String>,
    pub group: Option<&'a String>,
    pub mode: Option<Mode>,
}

impl Target<'_> {
    /// Checks the path, the accounts and where new lines go.
    pub(crate) fn validate(
        &self,
        after: Option<&Anchor>,
        before: Option<&Anchor>,
    ) -> Result<(), ParamError> {
        names::file_path(self.path)?;
        validate_owner_group(self.owner, self.group)?;
        validate_place(after, before)
    }

    /// The file's state and bytes, and the accounts to check.
    pub(crate) fn facts(&self) -> Vec<FactKey> {
        let mut keys = vec![
            FactKey::Paths(PathKey::Path(self.path.to_owned())),
            FactKey::Paths(PathKey::Content(self.path.to_owned())),
        ];
        keys.extend(owner_group_facts(self.owner, self.group));
        keys
    }

    /// The plan that gives the file what `edit` makes of its bytes (of no bytes for a
    /// missing file with `create`), in one atomic write that keeps the owner, group and
    /// mode not given; or, when the bytes stay as they are, the attributes that differ.
    pub(crate) fn plan(
        &self,
        facts: &FactStore,
        edit: impl FnOnce(&[u8]) -> Vec<u8>,
    ) -> Result<Plan, PlanError> {
        let state = facts.path(self.path)?;
        let wanted = Attributes {
            owner: self.owner.cloned(),
            group: self.group.cloned(),
            mode: self.mode.map(|mode| mode.0),
        };
        match state.kind {
            PathKind::Missing if self.state == Presence::Absent => Ok(Plan::default()),
            PathKind::Missing if self.create => {
                check_owner_group(facts, self.owner, self.group)?;
                Ok(new_file(self.path, edit(b""), wanted))
            }
            PathKind::Missing => Err(PlanError::NoFile {
                path: self.path.to_owned(),
            }),
            PathKind::File => {
                check_owner_group(facts, self.owner, self.group)?;
                let Some(current) = facts.content(self.path)? else {
                    // Its type and its bytes were read apart: it went meanwhile.
                    return Err(PlanError::NoFile {
                        path: self.path.to_owned(),
                    });
                };
                let content = edit(current);
                Ok(update_file(
                    self.path,
                    state,
                    Some(current),
                    Some(&content),
                    wanted,
                ))
            }
            PathKind::Directory | PathKind::Symlink | PathKind::Other => {
                Err(PlanError::WrongKind {
                    path: self.path.to_owned(),
                    kind: state.kind,
                    expected: "regular file",
                })
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::change::Change;
    use crate::fact::{Fact, PathState};
    use crate::paths::{PathChange, PathFact};
    use crate::Module;

    /// A task of module `M` on `/etc/app.conf` with the parameters `json` (the inside
    /// of a JSON object), checked as the playbook would be.
    pub(crate) fn task<M: Module>(json: &str) -> M {
        let task: M =
            serde_json::from_str(&format!("{{\"path\": \"/etc/app.conf\", {json}}}")).unwrap();
        task.validate().unwrap();
        task
    }

    /// Why the parameters `json` of a task of module `M` are refused.
    pub(crate) fn refused<M: Module>(json: &str) -> String {
        let task: M = serde_json::from_str(&format!("{{\"path\": \"/etc/a\", {json}}}")).unwrap();
        task.validate().unwrap_err().to_string()
    }

    /// What `task` writes over `content` (`None`: nothing), asserting that it then
    /// leaves the result alone.
    pub(crate) fn edited<M: Module>(task: &M, content: &[u8]) -> Option<Vec<u8>> {
        let new = written(task, content)?;
        assert_eq!(written(task, &new), None, "not idempotent");
        Some(new)
    }

    /// [`edited`], as text.
    pub(crate) fn edited_text<M: Module>(task: &M, content: &str) -> Option<String> {
        edited(task, content.as_bytes()).map(|new| String::from_utf8(new).unwrap())
    }

    /// What `task` writes over `content`: `None` when it writes nothing.
    pub(crate) fn written<M: Module>(task: &M, content: &[u8]) -> Option<Vec<u8>> {
        let plan = task.plan(&facts(Some(content))).unwrap();
        match plan.changes.as_slice() {
            [] => None,
            [Change::Paths(PathChange::WriteFile(write))] => Some(write.content.clone()),
            other => panic!("{other:?}"),
        }
    }

    /// The facts of `/etc/app.conf`: `None` for a missing file, else its bytes, owned by
    /// root:adm with mode 0640.
    pub(crate) fn facts(content: Option<&[u8]>) -> FactStore {
        let mut store = FactStore::default();
        let state = match content {
            Some(_) => PathState {
                kind: PathKind::File,
                owner: "root".into(),
                group: "adm".into(),
                mode: 0o640,
            },
            None => PathState::missing(),
        };
        store.insert(
            PathKey::Path("/etc/app.conf".into()).into(),
            PathFact::Path(state).into(),
        );
        store.insert(
            PathKey::Content("/etc/app.conf".into()).into(),
            Fact::Paths(PathFact::Content(content.map(<[u8]>::to_vec))),
        );
        store
    }

    #[test]
    fn a_link_or_a_directory_at_the_path_is_refused_not_followed() {
        let target = Target {
            path: "/etc/app.conf",
            state: Presence::Present,
            create: true,
            owner: None,
            group: None,
            mode: None,
        };
        for kind in [PathKind::Symlink, PathKind::Directory] {
            let mut store = facts(Some(b"a\n"));
            store.insert(
                PathKey::Path("/etc/app.conf".into()).into(),
                PathFact::Path(PathState {
                    kind,
                    owner: "root".into(),
                    group: "root".into(),
                    mode: 0o777,
                })
                .into(),
            );
            assert_eq!(
                target.plan(&store, <[u8]>::to_vec).unwrap_err().to_string(),
                format!("/etc/app.conf is a {kind}; expected a regular file")
            );
        }
    }

    #[test]
    fn lines_keep_their_endings_and_compare_without_them() {
        let lines = split(b"a\r\nb\nc");
        assert_eq!(lines, [&b"a\r\n"[..], b"b\n", b"c"]);
        assert_eq!(
            lines.iter().map(|l| text(l)).collect::<Vec<_>>(),
            [&b"a"[..], b"b", b"c"]
        );
        assert_eq!(newline(&lines), b"\r\n");
        assert_eq!(newline(&split(b"")), b"\n");
        assert_eq!(replaced(b"x\r\n", b"y"), b"y\r\n");
        assert_eq!(replaced(b"x", b"y"), b"y");
        assert_eq!(split(b""), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn inserting_after_a_last_line_without_newline_ends_it_first() {
        let mut lines = split(b"a\r\nb");
        insert(&mut lines, 2, vec![b"c\r\n".to_vec()]);
        assert_eq!(lines.concat(), b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn invalid_expressions_are_refused_in_one_line() {
        assert_eq!(
            Pattern::new("(unclosed").unwrap_err().to_string(),
            "invalid regular expression \"(unclosed\": unclosed group"
        );
        let anchor: Anchor = serde_json::from_str("\"EOF\"").unwrap();
        assert!(matches!(anchor, Anchor::Eof));
        let anchor: Anchor = serde_json::from_str("\"^Port\"").unwrap();
        assert_eq!(anchor.to_string(), "^Port");
    }

    #[test]
    fn places_are_one_of_after_and_before_and_eof_only_after() {
        let eof = Anchor::Eof;
        assert_eq!(
            validate_place(Some(&eof), Some(&Anchor::Bof))
                .unwrap_err()
                .to_string(),
            "give at most one of insert_after, insert_before"
        );
        assert_eq!(
            validate_place(None, Some(&eof)).unwrap_err().to_string(),
            "`insert_before` cannot be EOF: use insert_after: EOF (the default) to add at the end"
        );
    }
}
