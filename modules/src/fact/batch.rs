//! The batched read: every fact a play needs, printed by one generated `sh` script and
//! cut apart again by the same pure parsers.

use crate::paths::PathKey;
use std::fmt::Write as _;

use super::{parse, Fact, FactError, FactKey};
use crate::paths::facts::PATH_FORMAT;
use crate::paths::safe_path;
use crate::shell::quote;

/// Prints the attributes of each path given in [`PATH_FORMAT`] (or `missing`) from
/// `$converge_stat`, the output of one `stat` over every path of the batch, in order.
///
/// `stat` prints one line per path it could read, in the order it was given them, and
/// nothing for the others. So the sections of those paths, run in that same order,
/// each take the next line if it names their path and leave it for a later path
/// otherwise: a line is only ever given to the path it names. Each path is looked at
/// once, by that `stat`, so one that vanishes meanwhile is either wholly there or
/// `missing`.
const PATH_FROM_SHARED_STAT: &str = r#"converge_nl='
'
converge_path() {
  for converge_name in "$@"; do
    converge_line=${converge_stat%%"$converge_nl"*}
    if [ "${converge_line#*:*:*:*:*:}" = "$converge_name" ]; then
      printf '%s\n' "$converge_line"
      converge_stat=${converge_stat#*"$converge_nl"}
    else
      echo missing
    fi
  done
}
"#;

/// Whether a path's attributes come from the batch's shared `stat`. A name with a
/// newline would split its line in two, so such a path keeps its own probe (paths
/// converge validates never hold one; a home directory from passwd cannot either).
fn shares_stat(key: &FactKey) -> Option<&str> {
    match key {
        FactKey::Paths(PathKey::Path(path)) if !path.contains('\n') => Some(path),
        _ => None,
    }
}

/// Builds one `sh` script that prints every fact in `keys`, each after a delimiter line
/// carrying `nonce`, so that no file content or command output can forge a boundary.
pub fn batch_script(keys: &[FactKey], nonce: &str) -> String {
    let mut script = String::from("export LC_ALL=C\n");
    // Execs are what reading facts costs a host, far more than shell builtins: one
    // `stat` for all paths instead of one each.
    let paths: Vec<&str> = keys.iter().filter_map(shares_stat).collect();
    if !paths.is_empty() {
        script.push_str(PATH_FROM_SHARED_STAT);
        let _ = write!(
            script,
            "converge_stat=\"$(stat -c {} --",
            quote(PATH_FORMAT)
        );
        for path in paths {
            for step in with_ancestors(path) {
                script.push(' ');
                script.push_str(&quote(&step));
            }
        }
        script.push_str(" 2>/dev/null)$converge_nl\"\n");
    }
    for (index, key) in keys.iter().enumerate() {
        let section = match shares_stat(key) {
            // In the script's own shell, not a subshell: each takes its line off
            // `$converge_stat` for the next.
            Some(path) => {
                let mut call = String::from("converge_path");
                for step in with_ancestors(path) {
                    call.push(' ');
                    call.push_str(&quote(&step));
                }
                call
            }
            None => format!("( {} )", key.probe()),
        };
        let _ = write!(
            script,
            "echo '{}'\n{section}\n",
            delimiter(nonce, &index.to_string()),
        );
    }
    let _ = writeln!(script, "echo '{}'", delimiter(nonce, "end"));
    script
}

/// The directories on the way to `path`, then `path`: what its fact is read from.
fn with_ancestors(path: &str) -> Vec<String> {
    let mut steps = safe_path::ancestors(path);
    steps.push(path.to_owned());
    steps
}

fn delimiter(nonce: &str, label: &str) -> String {
    format!("::converge:{nonce}:{label}::")
}

/// Cuts the output of [`batch_script`] apart and parses each fact.
pub fn split_batch(
    keys: &[FactKey],
    nonce: &str,
    output: &str,
) -> Result<Vec<(FactKey, Fact)>, FactError> {
    let mut sections: Vec<String> = Vec::with_capacity(keys.len());
    let mut current: Option<String> = None;
    let end = delimiter(nonce, "end");
    let mut ended = false;
    let prefix = format!("::converge:{nonce}:");
    for line in output.lines() {
        if line == end {
            sections.extend(current.take());
            ended = true;
            break;
        }
        if line.starts_with(&prefix) && line.ends_with("::") {
            sections.extend(current.take());
            current = Some(String::new());
        } else if let Some(section) = current.as_mut() {
            section.push_str(line);
            section.push('\n');
        }
    }
    if !ended {
        sections.extend(current.take());
    }
    let mut facts = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let section = sections
            .get(index)
            .filter(|_| ended || index + 1 < sections.len());
        let Some(section) = section else {
            return Err(FactError::Truncated {
                key: key.to_string(),
            });
        };
        facts.push((key.clone(), parse(key, section)?));
    }
    Ok(facts)
}
