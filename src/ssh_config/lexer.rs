//! Splitting a config line into its keyword and arguments, with OpenSSH's quoting.

use super::LineError;

/// Splits a config line into its lowercased keyword and arguments; `None` for blank lines
/// and comments. `Keyword value`, `Keyword=value` and `Keyword = value` are all accepted;
/// arguments may be quoted with `"` or `'`, and an unquoted `#` starts a comment.
pub(super) fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, LineError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_) | None, '\\') => match chars.next() {
                Some(next) => {
                    current.push(next);
                    in_word = true;
                }
                None => return Err(LineError::TrailingBackslash),
            },
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(LineError::Quote);
    }
    if in_word {
        args.push(current);
    }
    Ok(Some((keyword, args)))
}
