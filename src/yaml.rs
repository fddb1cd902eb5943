//! The one place converge parses YAML, so the parser can be swapped without touching
//! the rest.
//!
//! Playbooks and inventories are deserialized straight from text (never through an
//! untyped tree first), so every error, however deep, keeps the line and column where
//! it happened. [`YamlError`] turns the parser's message into one a person can act on:
//! what is wrong, where, and how to fix it.
//!
//! Nesting is bounded before the parser sees the text: [`too_deep`] finds the first
//! flow collection (`[`, `{`) opened more than [`MAX_NESTING`] levels deep in one quick
//! pass, because the parser's own recursion limit is only reached after work that grows
//! with the square of the depth (tens of seconds for a few hundred kilobytes). Alias
//! expansion is bounded by the parser itself (its repetition limit).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde::Deserializer;

/// A YAML document that could not be read as what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub file: PathBuf,
    /// 1-based; 0 when the parser gave no position.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for YamlError {}

/// How deep collections may nest; the parser refuses more than 128 levels anyway.
pub const MAX_NESTING: usize = 128;

/// Deserializes `text` (read from `file`) as a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, YamlError> {
    check_nesting(text, file)?;
    serde_yaml::from_str(text).map_err(|error| explain(&error, file))
}

/// Writes `value` as a YAML document (the `to_yaml` filter).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(value)
}

/// Refuses `text` when a collection in it nests deeper than [`MAX_NESTING`], naming
/// where; in time linear in the length of the text.
pub fn check_nesting(text: &str, file: &Path) -> Result<(), YamlError> {
    match too_deep(text) {
        None => Ok(()),
        Some((line, column)) => Err(YamlError {
            file: file.to_owned(),
            line,
            column,
            message: format!("collections nested more than {MAX_NESTING} levels deep"),
            help: Some(format!(
                "converge reads YAML nested at most {MAX_NESTING} levels deep; flatten the structure"
            )),
        }),
    }
}

/// The line and column (1-based) of the first `[` or `{` that opens a flow collection
/// more than [`MAX_NESTING`] levels deep, if any.
///
/// A light scanner, not a parser: it skips comments, quoted scalars and block scalars
/// (`|`, `>`), and counts a bracket as an opening one only where a collection can start
/// (at the start of a line or after `-`, `:`, `,`, `?`, `[`, `{` and blanks), so
/// brackets inside plain words (`a[1]`) are not counted. It errs on the side of
/// counting: a document it refuses would not have been one a person wrote by hand.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut index = 0;
    // A quoted scalar may go on over several lines.
    let mut quote: Option<char> = None;
    while index < lines.len() {
        let line = lines[index];
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut previous: Option<char> = None;
        let mut chars = line.char_indices().peekable();
        let mut block_scalar = None;
        while let Some((at, ch)) = chars.next() {
            if let Some(open) = quote {
                if open == '"' && ch == '\\' {
                    chars.next();
                } else if ch == open {
                    // `''` inside single quotes is an escaped quote.
                    if open == '\'' && chars.peek().map(|&(_, next)| next) == Some('\'') {
                        chars.next();
                    } else {
                        quote = None;
                        previous = Some('x');
                    }
                }
                continue;
            }
            let starts_value =
                previous.is_none_or(|p| matches!(p, '-' | ':' | ',' | '?' | '[' | '{'));
            // What comes after a character inside a word is not a collection's start.
            let mut structural = ch;
            match ch {
                ' ' | '\t' | '\r' => continue,
                '#' if at == 0 || line[..at].ends_with([' ', '\t']) => break,
                '"' | '\'' if starts_value => quote = Some(ch),
                '[' | '{' if starts_value || depth > 0 => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some((index + 1, line[..at].chars().count() + 1));
                    }
                }
                ']' | '}' if depth > 0 => depth -= 1,
                '|' | '>' if starts_value && depth == 0 => {
                    block_scalar = Some(indent);
                    break;
                }
                '[' | '{' | '"' | '\'' => structural = 'x',
                _ => {}
            }
            previous = Some(structural);
        }
        index += 1;
        if let Some(parent) = block_scalar {
            // The block scalar's lines are those indented as much as its first
            // non-empty line, which is indented more than the line that opened it.
            let content = lines[index..]
                .iter()
                .find(|line| !line.trim().is_empty())
                .map(|line| line.len() - line.trim_start_matches(' ').len());
            if let Some(content) = content.filter(|&content| content > parent) {
                while index < lines.len()
                    && (lines[index].trim().is_empty()
                        || lines[index].len() - lines[index].trim_start_matches(' ').len()
                            >= content)
                {
                    index += 1;
                }
            }
        }
    }
    None
}

fn explain(error: &serde_yaml::Error, file: &Path) -> YamlError {
    let (line, column) = error
        .location()
        .map_or((0, 0), |location| (location.line(), location.column()));
    let mut message = error.to_string();
    // The parser appends the position and prepends the path inside the document; the
    // position is reported separately and the path only repeats what the line shows.
    if let Some(stripped) = message.strip_suffix(&format!(" at line {line} column {column}")) {
        message = stripped.to_owned();
    }
    if let Some((path, rest)) = message.split_once(": ") {
        let looks_like_path = !path.is_empty()
            && !path.contains(' ')
            && (path.starts_with('[')
                || path.starts_with('.')
                || path.contains('[')
                || path.contains('.'));
        if looks_like_path {
            message = rest.to_owned();
        }
    }
    let (message, help) = rephrase(&message);
    YamlError {
        file: file.to_owned(),
        line,
        column,
        message,
        help,
    }
}

/// One step into a YAML document, for [`locate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The value of a mapping's key.
    Key(String),
    /// A mapping's key itself.
    KeyItself(String),
    /// An item of a sequence.
    Index(usize),
}

/// The line and column (1-based) where the value at `path` starts in `text`, or the
/// key itself for a last [`Step::KeyItself`]; `None` when there is no such value.
///
/// The parser keeps no positions in values it has read, so this reads the document
/// again down to the value and stops there with an error, which the parser marks with
/// the value's position. It is only called to report an error.
pub fn locate(text: &str, path: &[Step]) -> Option<(usize, usize)> {
    let error = Seek(path)
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .err()?;
    // Any other error (the document ends before the path does) locates nothing.
    if !error.to_string().contains(HERE) {
        return None;
    }
    error
        .location()
        .map(|location| (location.line(), location.column()))
}

/// What [`Seek`] fails with where it arrives.
const HERE: &str = "converge: the value to locate";

/// Walks down to a value and fails there (see [`locate`]).
struct Seek<'a>(&'a [Step]);

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Reaching the value is the error that carries its position.
        f.write_str(HERE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Index(index), rest)) = self.0.split_first() else {
            return Err(de::Error::custom(HERE));
        };
        for _ in 0..*index {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek(rest)).map(drop)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (wanted, itself, rest) = match self.0.split_first() {
            Some((Step::Key(key), rest)) => (key, false, rest),
            Some((Step::KeyItself(key), rest)) => (key, true, rest),
            _ => return Err(de::Error::custom(HERE)),
        };
        while let Some(key) = map.next_key_seed(KeySeek { wanted, itself })? {
            if key == *wanted {
                return map.next_value_seed(Seek(rest));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// Reads a mapping's key, failing on it when it is the one to locate.
struct KeySeek<'a> {
    wanted: &'a str,
    itself: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeek<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeek<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
        // Failing inside the visitor, the parser marks the key's position.
        if self.itself && key == self.wanted {
            return Err(E::custom(HERE));
        }
        Ok(key.to_owned())
    }
}

/// Turns serde's wording into converge's, with a help line naming the fix.
pub fn rephrase(message: &str) -> (String, Option<String>) {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (field, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let allowed = expected
            .trim_start_matches("expected one of ")
            .trim_start_matches("expected ")
            .replace('`', "");
        let help = if allowed.is_empty() || allowed.starts_with("there are no fields") {
            None
        } else {
            Some(format!("allowed keys here: {allowed}"))
        };
        return (format!("unknown key {field}"), help);
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return (format!("missing required key {rest}"), None);
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        return (
            format!("key {rest} is given twice"),
            Some("keep one of them".to_owned()),
        );
    }
    if message.starts_with("did not find expected")
        || message.starts_with("mapping values are not allowed")
        || message.starts_with("found character that cannot start")
        || message.starts_with("while parsing")
        || message.starts_with("found unexpected")
        || message.starts_with("could not find expected")
    {
        return (
            format!("invalid YAML: {message}"),
            Some("check the indentation and quoting on this line and the one before it".to_owned()),
        );
    }
    (message.to_owned(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Play {
        hosts: String,
        #[serde(default)]
        tasks: Vec<Task>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Task {
        name: String,
    }

    #[test]
    fn unknown_key_names_position_and_allowed_keys() {
        let text = "- hosts: app\n  tasks:\n    - name: x\n      nmae: y\n";
        let error = from_str::<Vec<Play>>(text, Path::new("site.yml")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml:4:7: unknown key `nmae`\n  help: allowed keys here: name"
        );
    }

    #[test]
    fn syntax_error_names_position_and_fix() {
        let text = "- hosts: app\n  tasks:\n    - name: x\n   bad: [\n";
        let error = from_str::<Vec<Play>>(text, Path::new("site.yml")).unwrap_err();
        assert!(error.line > 0, "{error}");
        assert!(error.message.starts_with("invalid YAML: "), "{error}");
        assert!(error.help.is_some());
    }

    #[test]
    fn deep_nesting_is_refused_where_it_goes_too_deep() {
        let deep = |depth: usize| {
            format!(
                "- hosts: app\n  vars: {{ deep: {}{} }}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        // `{` of the vars map is level 1, so the 128th `[` (column 17 + 127) is level 129.
        let error =
            from_str::<serde_yaml::Value>(&deep(100_000), Path::new("site.yml")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml:2:144: collections nested more than 128 levels deep\n  help: converge reads YAML nested at most 128 levels deep; flatten the structure"
        );
        assert!(from_str::<serde_yaml::Value>(&deep(100), Path::new("site.yml")).is_ok());
    }

    #[test]
    fn brackets_in_words_quotes_comments_and_block_scalars_are_not_nesting() {
        let many = "[".repeat(500);
        for text in [
            format!("a: x{many}\n"),
            format!("a: \"{many}\"\nb: '{many}'\n"),
            format!("a: 1 # {many}\n"),
            format!("a: |\n  {many}\n  more\nb: >\n    {many}\n"),
            format!("- |\n {many}\n- 'it''s {many}'\n"),
            format!("a: \"multi\n  line {many} \\\" still\"\n"),
        ] {
            assert_eq!(too_deep(&text), None, "{text}");
            assert!(
                from_str::<serde_yaml::Value>(&text, Path::new("t.yml")).is_ok(),
                "{text}"
            );
        }
        // What ends a block scalar is scanned again.
        let text = format!("- a: |\n    x\n  b: {}\n", "[".repeat(200));
        assert_eq!(too_deep(&text), Some((3, 6 + 128)));
    }

    #[test]
    fn values_and_keys_are_located_again_by_their_path() {
        let text = "- hosts: app\n  tasks:\n    - file: { path: /x, mode: \"{{ m }}\" }\n      name: &n a\n    - user:\n        name: *n\n        groups: [adm, wheel]\n";
        let at = |path: &[Step]| locate(text, path);
        let task = |index: usize, rest: &[Step]| {
            let mut path = vec![
                Step::Index(0),
                Step::Key("tasks".into()),
                Step::Index(index),
            ];
            path.extend_from_slice(rest);
            path
        };
        assert_eq!(at(&task(0, &[])), Some((3, 7)));
        assert_eq!(
            at(&task(
                0,
                &[Step::Key("file".into()), Step::Key("mode".into())]
            )),
            Some((3, 31))
        );
        assert_eq!(
            at(&task(
                0,
                &[Step::Key("file".into()), Step::KeyItself("mode".into())]
            )),
            Some((3, 25))
        );
        assert_eq!(
            at(&task(
                1,
                &[
                    Step::Key("user".into()),
                    Step::Key("groups".into()),
                    Step::Index(1)
                ]
            )),
            Some((7, 23))
        );
        assert_eq!(at(&task(2, &[])), None, "no third task");
        assert_eq!(at(&task(0, &[Step::Key("nope".into())])), None);
    }

    #[test]
    fn missing_key_is_named() {
        let error = from_str::<Vec<Play>>("- tasks: []\n", Path::new("p.yml")).unwrap_err();
        assert_eq!(error.message, "missing required key `hosts`");
    }
}
