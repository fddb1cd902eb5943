//! Host and group names, host ranges (`web[01:03]`) and `name[:port]` host specs.

use serde_json::Value;

use super::Vars;

/// A problem with a host or group name, reported with the position of whatever held it.
#[derive(Debug, thiserror::Error)]
pub(super) enum NameError {
    #[error("invalid host name {name:?}: only letters, digits, '.', '-' and '_' are allowed")]
    Host { name: String },
    #[error("invalid group name {name:?}: only letters, digits, '.', '-' and '_' are allowed")]
    Group { name: String },
    #[error("invalid host range in {pattern:?}: {reason}")]
    Range {
        pattern: String,
        reason: &'static str,
    },
    #[error("invalid port in {spec:?}: expected an integer from 1 to 65535")]
    Port { spec: String },
}

/// A range such as `web[0:99999999]` could otherwise exhaust memory before any other
/// check runs; no real inventory comes close to this many hosts from one name.
const MAX_RANGE_HOSTS: usize = 65_536;

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

pub(super) fn check_group_name(name: &str) -> Result<String, NameError> {
    if is_name(name) {
        Ok(name.to_string())
    } else {
        Err(NameError::Group {
            name: name.to_string(),
        })
    }
}

/// Expands the ranges in a host name and checks every resulting name.
pub(super) fn expand_hosts(pattern: &str) -> Result<Vec<String>, NameError> {
    let range_error = |reason| NameError::Range {
        pattern: pattern.to_string(),
        reason,
    };
    let mut names = vec![String::new()];
    let mut rest = pattern;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .map(|offset| open + offset)
            .ok_or_else(|| range_error("missing `]`"))?;
        let literal = &rest[..open];
        let items = range_items(pattern, &rest[open + 1..close])?;
        if names.len().saturating_mul(items.len()) > MAX_RANGE_HOSTS {
            return Err(range_error("expands to too many hosts"));
        }
        names = names
            .iter()
            .flat_map(|name| {
                items
                    .iter()
                    .map(move |item| format!("{name}{literal}{item}"))
            })
            .collect();
        rest = &rest[close + 1..];
    }
    for name in &mut names {
        name.push_str(rest);
        if !is_name(name) {
            return Err(NameError::Host { name: name.clone() });
        }
    }
    Ok(names)
}

/// The items of one range body (`01:03`, `a:c`, `0:10:2`).
fn range_items(pattern: &str, body: &str) -> Result<Vec<String>, NameError> {
    let error = |reason| NameError::Range {
        pattern: pattern.to_string(),
        reason,
    };
    let mut parts = body.split(':');
    let (Some(start), Some(end), step, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(error("expected [start:end] or [start:end:step]"));
    };
    let step = match step {
        None => 1,
        Some(step) => match step.parse::<usize>() {
            Ok(step) if step > 0 => step,
            _ => return Err(error("the step must be a positive integer")),
        },
    };
    // An omitted start counts from zero, as in Ansible.
    let start = if start.is_empty() { "0" } else { start };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(start) && digits(end) {
        let width = if start.len() > 1 && start.starts_with('0') {
            if end.len() != start.len() {
                return Err(error(
                    "a zero-padded range needs start and end of the same width",
                ));
            }
            start.len()
        } else {
            0
        };
        let (Ok(first), Ok(last)) = (start.parse::<u64>(), end.parse::<u64>()) else {
            return Err(error("range bounds are too large"));
        };
        if first > last {
            return Err(error("the start is after the end"));
        }
        if (last - first) / step as u64 >= MAX_RANGE_HOSTS as u64 {
            return Err(error("expands to too many hosts"));
        }
        return Ok((first..=last)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect());
    }
    let letter = |s: &str| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
            _ => None,
        }
    };
    match (letter(start), letter(end)) {
        (Some(first), Some(last)) if first.is_ascii_lowercase() == last.is_ascii_lowercase() => {
            if first > last {
                return Err(error("the start is after the end"));
            }
            Ok((first..=last).step_by(step).map(String::from).collect())
        }
        _ => Err(error(
            "bounds must be two integers or two letters of the same case",
        )),
    }
}

/// Splits `name[:port]` (the port colon is the last one outside brackets) and expands the
/// name; a port becomes the `port` variable.
pub(super) fn parse_host_spec(spec: &str) -> Result<(Vec<String>, Vars), NameError> {
    let mut depth = 0usize;
    let mut colon = None;
    for (index, c) in spec.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colon = Some(index),
            _ => {}
        }
    }
    let mut vars = Vars::new();
    let name = match colon {
        Some(colon) => {
            let port = &spec[colon + 1..];
            match port.parse::<u16>() {
                Ok(number) if number != 0 && port.bytes().all(|b| b.is_ascii_digit()) => {
                    vars.insert("port".to_string(), Value::from(number));
                }
                _ => {
                    return Err(NameError::Port {
                        spec: spec.to_string(),
                    })
                }
            }
            &spec[..colon]
        }
        None => spec,
    };
    Ok((expand_hosts(name)?, vars))
}
