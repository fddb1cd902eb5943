//! The INI inventory format: section headers, host lines, `key=value` variables with
//! Ansible's quoting and comments.

use std::path::Path;

use indexmap::IndexSet;
use serde_json::Value;

use super::builder::{set_var, Builder};
use super::names::{check_group_name, parse_host_spec, NameError};
use super::tagged::{Level, TEMPLATE_TAG};
use super::{InventoryError, Vars, ALL, UNGROUPED};

/// A problem with one INI line.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(
        "malformed section header `{header}`: expected [group], [group:vars] or [group:children]"
    )]
    Header { header: String },
    #[error("unknown section type `{kind}` in `{header}`: expected vars or children")]
    SectionKind { kind: String, header: String },
    #[error("unterminated quote")]
    Quote,
    #[error("expected key=value after the host name, found `{token}`")]
    HostVar { token: String },
    #[error("expected key=value in [{group}:vars], found `{text}`")]
    Var { group: String, text: String },
    #[error("expected a single group name in [{group}:children], found `{text}`")]
    Child { group: String, text: String },
    #[error(
        "`{name}`: `!{TEMPLATE_TAG}` is read in YAML only (INI values are always data); \
         set this variable in a YAML inventory or a group_vars/host_vars file"
    )]
    Template { name: String },
}

/// Reads an INI inventory into `builder`; `origin` names the file in error messages.
pub(super) fn read_ini(
    builder: &mut Builder,
    text: &str,
    origin: &Path,
) -> Result<(), InventoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut section = Section::Hosts(UNGROUPED.to_string());
    // `[g:vars]` for a group defined nowhere is almost always a misspelt group name,
    // so it is an error (as in Ansible); the group may still be defined further down.
    let mut vars_sections: Vec<(String, usize)> = Vec::new();
    // Groups from files read earlier (an inventory directory) count as defined.
    let mut defined: IndexSet<String> = [ALL, UNGROUPED].map(String::from).into();
    defined.extend(builder.groups.keys().cloned());
    for (index, raw) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let result = if line.starts_with('[') {
            parse_section_header(line).map(|header| {
                match &header {
                    Section::Hosts(group) | Section::Children(group) => {
                        builder.group(group);
                        defined.insert(group.clone());
                    }
                    Section::Vars(group) => vars_sections.push((group.clone(), line_number)),
                }
                section = header;
            })
        } else {
            parse_section_line(builder, &mut defined, &section, line)
        };
        result.map_err(|e| InventoryError::Ini {
            file: origin.to_path_buf(),
            line: line_number,
            message: e.to_string(),
        })?;
    }
    if let Some((group, line)) = vars_sections
        .into_iter()
        .find(|(group, _)| !defined.contains(group))
    {
        return Err(InventoryError::Ini {
            file: origin.to_path_buf(),
            line,
            message: format!(
                "[{group}:vars] is for group {group}, which this inventory never defines"
            ),
        });
    }
    Ok(())
}

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

fn parse_section_header(line: &str) -> Result<Section, LineError> {
    let header_error = || LineError::Header {
        header: line.to_string(),
    };
    let close = line.find(']').ok_or_else(header_error)?;
    let after = line[close + 1..].trim_start();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return Err(header_error());
    }
    let header = &line[..=close];
    let inside = &line[1..close];
    Ok(match inside.split_once(':') {
        None => Section::Hosts(check_group_name(inside)?),
        Some((group, "vars")) => Section::Vars(check_group_name(group)?),
        Some((group, "children")) => Section::Children(check_group_name(group)?),
        Some((_, kind)) => {
            return Err(LineError::SectionKind {
                kind: kind.to_string(),
                header: header.to_string(),
            })
        }
    })
}

fn parse_section_line(
    builder: &mut Builder,
    defined: &mut IndexSet<String>,
    section: &Section,
    line: &str,
) -> Result<(), LineError> {
    match section {
        Section::Hosts(group) => {
            let tokens = split_tokens(line)?;
            let Some((first, rest)) = tokens.split_first() else {
                return Ok(());
            };
            let (names, mut vars) = parse_host_spec(first)?;
            for token in rest {
                let (name, value) = token
                    .split_once('=')
                    .filter(|(name, _)| is_var_name(name))
                    .ok_or_else(|| LineError::HostVar {
                        token: (*token).to_string(),
                    })?;
                set_var(&mut vars, name, ini_var(name, value)?);
            }
            let vars = Level::data(vars);
            for name in names {
                builder.add_host(group, &name, &vars);
            }
        }
        Section::Children(group) => {
            let tokens = split_tokens(line)?;
            let [child] = tokens.as_slice() else {
                return Err(LineError::Child {
                    group: group.clone(),
                    text: line.to_string(),
                });
            };
            let child = check_group_name(child)?;
            builder.add_child(group, &child);
            defined.insert(child);
        }
        Section::Vars(group) => {
            let (name, value) = line
                .split_once('=')
                .map(|(name, value)| (name.trim(), value))
                .filter(|(name, _)| is_var_name(name))
                .ok_or_else(|| LineError::Var {
                    group: group.clone(),
                    text: line.to_string(),
                })?;
            let value = ini_var(name, strip_comment(value)?.trim())?;
            let mut vars = Vars::new();
            vars.insert(name.to_string(), value);
            builder.add_group_vars(group, &Level::data(vars));
        }
    }
    Ok(())
}

fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '='))
}

/// Where a scan of a line is with respect to quotes: `"` quotes know `\\` escapes, `'`
/// quotes do not.
#[derive(Default)]
struct Quotes {
    open: Option<char>,
    escaped: bool,
}

impl Quotes {
    /// Takes in `c`; true while `c` is inside quotes, its closing quote included.
    fn inside(&mut self, c: char) -> bool {
        let Some(open) = self.open else {
            return false;
        };
        if self.escaped {
            self.escaped = false;
        } else if open == '"' && c == '\\' {
            self.escaped = true;
        } else if c == open {
            self.open = None;
        }
        true
    }

    /// Takes in `c`, outside quotes: opens a quote if it is one.
    fn open_at(&mut self, c: char) {
        if c == '"' || c == '\'' {
            self.open = Some(c);
        }
    }

    /// An error when the line ended inside quotes.
    fn finish(&self) -> Result<(), LineError> {
        match self.open {
            Some(_) => Err(LineError::Quote),
            None => Ok(()),
        }
    }
}

/// Splits a host line at whitespace outside quotes, keeping the quotes; a `#` starting a
/// token begins a comment.
fn split_tokens(line: &str) -> Result<Vec<&str>, LineError> {
    let mut tokens = Vec::new();
    let mut start = None;
    let mut quotes = Quotes::default();
    for (index, c) in line.char_indices() {
        if quotes.inside(c) {
            continue;
        }
        if c.is_whitespace() {
            if let Some(begin) = start.take() {
                tokens.push(&line[begin..index]);
            }
            continue;
        }
        if start.is_none() {
            if c == '#' {
                return Ok(tokens);
            }
            start = Some(index);
        }
        quotes.open_at(c);
    }
    quotes.finish()?;
    if let Some(begin) = start {
        tokens.push(&line[begin..]);
    }
    Ok(tokens)
}

/// Cuts a `#` comment (at the start or after whitespace, outside quotes) off a value.
fn strip_comment(text: &str) -> Result<&str, LineError> {
    let mut quotes = Quotes::default();
    let mut after_space = true;
    for (index, c) in text.char_indices() {
        if !quotes.inside(c) {
            if c == '#' && after_space {
                return Ok(&text[..index]);
            }
            quotes.open_at(c);
        }
        after_space = c.is_whitespace();
    }
    quotes.finish()?;
    Ok(text)
}

/// The value of the variable `name`, refusing the `!template` tag of YAML inventories:
/// someone who writes it expects a template, and would silently get text.
fn ini_var(name: &str, raw: &str) -> Result<Value, LineError> {
    let tag = raw
        .strip_prefix('!')
        .and_then(|rest| rest.strip_prefix(TEMPLATE_TAG));
    if tag.is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return Err(LineError::Template {
            name: name.to_owned(),
        });
    }
    ini_value(raw)
}

/// An INI value: quoted text stays a string; otherwise `true`/`false` and integers become
/// JSON booleans and numbers.
fn ini_value(raw: &str) -> Result<Value, LineError> {
    let mut text = String::with_capacity(raw.len());
    let mut quoted = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => return Err(LineError::Quote),
                    }
                }
            }
            '"' => {
                quoted = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => text.push(c),
                            Some(c) => {
                                text.push('\\');
                                text.push(c);
                            }
                            None => return Err(LineError::Quote),
                        },
                        Some(c) => text.push(c),
                        None => return Err(LineError::Quote),
                    }
                }
            }
            c => text.push(c),
        }
    }
    if quoted {
        return Ok(Value::String(text));
    }
    Ok(match text.as_str() {
        "true" | "True" => Value::Bool(true),
        "false" | "False" => Value::Bool(false),
        _ => match text.parse::<i64>() {
            // A leading zero (`0755`) or sign is kept as text: it is usually a mode or
            // an identifier whose spelling matters.
            Ok(number) if number.to_string() == text => Value::from(number),
            _ => Value::String(text),
        },
    })
}
