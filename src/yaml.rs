//! The one place converge parses YAML, so the parser can be swapped without touching
//! the rest.
//!
//! Playbooks and inventories are deserialized straight from text (never through an
//! untyped tree first), so every error, however deep, keeps the line and column where
//! it happened. [`YamlError`] turns the parser's message into one a person can act on:
//! what is wrong, where, and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

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

/// Deserializes `text` (read from `file`) as a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str, file: &Path) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|error| explain(&error, file))
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

/// Turns serde's wording into converge's, with a help line naming the fix.
fn rephrase(message: &str) -> (String, Option<String>) {
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
    fn missing_key_is_named() {
        let error = from_str::<Vec<Play>>("- tasks: []\n", Path::new("p.yml")).unwrap_err();
        assert_eq!(error.message, "missing required key `hosts`");
    }
}
