//! `lineinfile`: one line of a file converge does not own, present or absent.
//!
//! With `state: present`, the last line `regexp` matches is replaced by `line`; when
//! none matches and `line` is not already in the file, `line` is inserted after the last
//! line `insert_after` matches (or before the last `insert_before` matches, or at the
//! file's start or end). With `state: absent`, every line `regexp` matches (without
//! `regexp`: every line equal to `line`) is removed. The rest of the file is kept byte
//! for byte (see [`lines`]).

use serde::Deserialize;

use crate::fact::{FactKey, FactStore};
use crate::paths::lines::{self, Anchor, Pattern, Place, Target};
use crate::{Mode, Module, ParamError, Plan, PlanError, Presence};

/// Parameters of the `lineinfile` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineInFile {
    pub path: String,
    #[serde(default)]
    pub line: Option<String>,
    #[serde(default)]
    pub regexp: Option<Pattern>,
    #[serde(default)]
    pub state: Presence,
    #[serde(default)]
    pub insert_after: Option<Anchor>,
    #[serde(default)]
    pub insert_before: Option<Anchor>,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
}

impl LineInFile {
    fn target(&self) -> Target<'_> {
        Target {
            path: &self.path,
            state: self.state,
            create: self.create,
            owner: self.owner.as_ref(),
            group: self.group.as_ref(),
            mode: self.mode,
        }
    }

    /// `content` with the line in place (`state: present`).
    fn present(&self, content: &[u8], line: &[u8]) -> Vec<u8> {
        let mut lines = lines::split(content);
        let matched = self.regexp.as_ref().and_then(|regexp| {
            lines
                .iter()
                .rposition(|current| regexp.is_match(lines::text(current)))
        });
        if let Some(index) = matched {
            lines[index] = lines::replaced(&lines[index], line);
        } else if !lines.iter().any(|current| lines::text(current) == line) {
            let place = Place::of(self.insert_after.as_ref(), self.insert_before.as_ref());
            let index = place.index(&lines);
            let new = lines::ended(line, lines::newline(&lines));
            lines::insert(&mut lines, index, vec![new]);
        }
        lines.concat()
    }

    /// `content` without the lines `regexp` matches, or else those equal to `line`.
    fn absent(&self, content: &[u8]) -> Vec<u8> {
        let mut lines = lines::split(content);
        lines.retain(|current| {
            let current = lines::text(current);
            match (&self.regexp, &self.line) {
                (Some(regexp), _) => !regexp.is_match(current),
                (None, Some(line)) => current != line.as_bytes(),
                (None, None) => true,
            }
        });
        lines.concat()
    }
}

impl Module for LineInFile {
    const NAME: &'static str = "lineinfile";

    fn validate(&self) -> Result<(), ParamError> {
        self.target()
            .validate(self.insert_after.as_ref(), self.insert_before.as_ref())?;
        if let Some(line) = &self.line {
            lines::validate_one_line("line", line, " (blockinfile manages several lines)")?;
        }
        match self.state {
            Presence::Present if self.line.is_none() => Err(ParamError::Required {
                param: "line",
                when: "when state is present",
            }),
            Presence::Absent if self.line.is_none() && self.regexp.is_none() => {
                Err(ParamError::Required {
                    param: "regexp or line",
                    when: "when state is absent",
                })
            }
            _ => Ok(()),
        }
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        self.target().facts()
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        self.target()
            .plan(facts, |content| match (self.state, &self.line) {
                (Presence::Present, Some(line)) => self.present(content, line.as_bytes()),
                // Refused by `validate`: nothing to put in place.
                (Presence::Present, None) => content.to_vec(),
                (Presence::Absent, _) => self.absent(content),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{Change, FileWrite};
    use crate::paths::lines::tests::{edited_text, facts, refused, written};
    use crate::paths::PathChange;

    fn task(json: &str) -> LineInFile {
        lines::tests::task(json)
    }

    fn edited(task: &LineInFile, content: &str) -> Option<String> {
        edited_text(task, content)
    }

    const SSHD: &str = "Port 22\n#PermitRootLogin prohibit-password\nPasswordAuthentication yes\n";

    #[test]
    fn the_last_line_regexp_matches_is_replaced() {
        let task = task(r#""regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no""#);
        assert_eq!(
            edited(&task, SSHD).unwrap(),
            "Port 22\nPermitRootLogin no\nPasswordAuthentication yes\n"
        );
        assert_eq!(
            edited(&task, "#PermitRootLogin yes\nPermitRootLogin yes\n").unwrap(),
            "#PermitRootLogin yes\nPermitRootLogin no\n"
        );
    }

    #[test]
    fn a_line_already_right_is_ok() {
        let task = task(r#""regexp": "^Port ", "line": "Port 22""#);
        assert_eq!(written(&task, SSHD.as_bytes()), None);
        let exact = self::task(r#""line": "Port 22""#);
        assert_eq!(written(&exact, SSHD.as_bytes()), None);
    }

    #[test]
    fn without_a_match_the_line_goes_at_the_end() {
        let task = task(r#""regexp": "^MaxAuthTries", "line": "MaxAuthTries 3""#);
        assert_eq!(
            edited(&task, SSHD).unwrap(),
            format!("{SSHD}MaxAuthTries 3\n")
        );
    }

    #[test]
    fn without_a_regexp_match_an_equal_line_is_not_added_twice() {
        let task = task(r#""regexp": "^Nothing", "line": "Port 22""#);
        assert_eq!(written(&task, SSHD.as_bytes()), None);
    }

    #[test]
    fn insert_after_and_before_the_last_matching_line() {
        let conf = "[a]\nx=1\n[b]\ny=2\n[a]\nz=3\n";
        let after = task(r#""line": "new=1", "insert_after": "^\\[a\\]$""#);
        assert_eq!(
            edited(&after, conf).unwrap(),
            "[a]\nx=1\n[b]\ny=2\n[a]\nnew=1\nz=3\n"
        );
        let before = task(r#""line": "new=1", "insert_before": "^\\[b\\]""#);
        assert_eq!(
            edited(&before, conf).unwrap(),
            "[a]\nx=1\nnew=1\n[b]\ny=2\n[a]\nz=3\n"
        );
        let nowhere = task(r#""line": "new=1", "insert_before": "^\\[c\\]""#);
        assert_eq!(edited(&nowhere, conf).unwrap(), format!("{conf}new=1\n"));
    }

    #[test]
    fn a_regexp_match_wins_over_insert_after() {
        let task = task(r#""regexp": "^Port", "line": "Port 2222", "insert_after": "BOF""#);
        assert_eq!(
            edited(&task, SSHD).unwrap(),
            SSHD.replace("Port 22", "Port 2222")
        );
    }

    #[test]
    fn bof_and_eof() {
        let bof = task(r#""line": "first", "insert_before": "BOF""#);
        assert_eq!(edited(&bof, "a\nb\n").unwrap(), "first\na\nb\n");
        let bof = task(r#""line": "first", "insert_after": "BOF""#);
        assert_eq!(edited(&bof, "a\nb\n").unwrap(), "first\na\nb\n");
        let eof = task(r#""line": "last", "insert_after": "EOF""#);
        assert_eq!(edited(&eof, "a\nb\n").unwrap(), "a\nb\nlast\n");
        assert_eq!(edited(&eof, "").unwrap(), "last\n");
    }

    #[test]
    fn crlf_files_get_crlf_lines() {
        let task = task(r#""regexp": "^b", "line": "B""#);
        assert_eq!(edited(&task, "a\r\nb\r\nc\r\n").unwrap(), "a\r\nB\r\nc\r\n");
        let add = self::task(r#""line": "d""#);
        assert_eq!(edited(&add, "a\r\nb\r\n").unwrap(), "a\r\nb\r\nd\r\n");
        assert_eq!(written(&add, b"a\r\nd\r\n"), None);
    }

    #[test]
    fn a_missing_final_newline_is_kept_on_replace_and_added_before_an_insert() {
        let replace = task(r#""regexp": "^b", "line": "B""#);
        assert_eq!(edited(&replace, "a\nb").unwrap(), "a\nB");
        let add = task(r#""line": "c""#);
        assert_eq!(edited(&add, "a\nb").unwrap(), "a\nb\nc\n");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept() {
        let task = task(r#""regexp": "^b=", "line": "b=2""#);
        let content = b"caf\xe9=1\nb=1\n\xff\xfe\n";
        assert_eq!(
            written(&task, content).unwrap(),
            b"caf\xe9=1\nb=2\n\xff\xfe\n"
        );
    }

    #[test]
    fn absent_removes_every_matching_line_or_every_equal_line() {
        let regexp = task(r#""regexp": "^#", "state": "absent""#);
        assert_eq!(edited(&regexp, "#a\nb\n#c\n").unwrap(), "b\n");
        let line = task(r#""line": "b", "state": "absent""#);
        assert_eq!(edited(&line, "b\nb \nb\r\nc").unwrap(), "b \nc");
        assert_eq!(written(&line, b"a\n"), None);
        assert!(line.plan(&facts(None)).unwrap().changes.is_empty());
    }

    #[test]
    fn a_missing_file_is_an_error_unless_create() {
        let task = task(r#""line": "a""#);
        assert_eq!(
            task.plan(&facts(None)).unwrap_err().to_string(),
            "/etc/app.conf does not exist (create: true creates it, or create it in an earlier task)"
        );
        let create = self::task(r#""line": "a", "create": true, "mode": "0600""#);
        let plan = create.plan(&facts(None)).unwrap();
        let [Change::Paths(PathChange::WriteFile(write))] = plan.changes.as_slice() else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (write.content.as_slice(), write.mode, write.before.as_ref()),
            (&b"a\n"[..], 0o600, None)
        );
    }

    #[test]
    fn an_edit_keeps_owner_group_and_mode_unless_given() {
        let task = task(r#""line": "a""#);
        let plan = task.plan(&facts(Some(b"b\n"))).unwrap();
        let [Change::Paths(PathChange::WriteFile(FileWrite {
            owner,
            group,
            mode,
            before,
            ..
        }))] = plan.changes.as_slice()
        else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (owner.as_deref(), group.as_deref(), *mode, before.as_deref()),
            (Some("root"), Some("adm"), 0o640, Some(&b"b\n"[..]))
        );
        let mode = self::task(r#""line": "a", "mode": "0600""#);
        let plan = mode.plan(&facts(Some(b"a\n"))).unwrap();
        assert!(matches!(
            plan.changes.as_slice(),
            [Change::Paths(PathChange::SetAttributes { .. })]
        ));
    }

    #[test]
    fn check_mode_sees_the_predicted_content() {
        let task = task(r#""line": "a""#);
        let mut store = facts(Some(b"b\n"));
        for change in task.plan(&store).unwrap().changes {
            change.domain().predict(&mut store);
        }
        assert!(task.plan(&store).unwrap().changes.is_empty());
    }

    #[test]
    fn parameters_are_checked() {
        let check = refused::<LineInFile>;
        assert_eq!(
            check(r#""regexp": "^a""#),
            "`line` is required when state is present"
        );
        assert_eq!(
            check(r#""state": "absent""#),
            "`regexp or line` is required when state is absent"
        );
        assert_eq!(
            check(r#""line": "a\nb""#),
            "`line` must be one line, without a newline or carriage return (blockinfile manages several lines)"
        );
        let bad = serde_json::from_str::<LineInFile>(r#"{"path": "/a", "regexp": "["}"#);
        assert!(bad
            .unwrap_err()
            .to_string()
            .starts_with("invalid regular expression \"[\": unclosed character class"));
    }
}
