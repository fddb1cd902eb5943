//! Reading config files: lines into entries under the conditions of their blocks, and
//! `Include` with its globs, relative directories and depth limit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::lexer::split_line;
use super::settings::parse_setting;
use super::{Condition, Entry, LineError, Origin, SshConfig, SshConfigError, MAX_INCLUDE_DEPTH};
use crate::inventory::expand_tilde;

impl SshConfig {
    pub(super) fn read_if_present(
        &mut self,
        file: &Path,
        include_dir: Option<&Path>,
        outer: &[Condition],
        depth: usize,
    ) -> Result<(), SshConfigError> {
        match fs::read_to_string(file) {
            Ok(text) => self.read(&text, file, include_dir, outer, depth),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SshConfigError::Read {
                file: file.to_path_buf(),
                source,
            }),
        }
    }

    /// Reads the lines of one file under the conditions of the `Include` that led to it.
    pub(super) fn read(
        &mut self,
        text: &str,
        file: &Path,
        include_dir: Option<&Path>,
        outer: &[Condition],
        depth: usize,
    ) -> Result<(), SshConfigError> {
        let mut conditions = outer.to_vec();
        for (index, raw) in text.lines().enumerate() {
            let origin = Origin {
                file: file.to_path_buf(),
                line: index + 1,
            };
            let invalid = |source: LineError| SshConfigError::Invalid {
                file: file.to_path_buf(),
                line: index + 1,
                source,
            };
            let Some((keyword, args)) = split_line(raw).map_err(invalid)? else {
                continue;
            };
            match keyword.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(invalid(LineError::HostPatterns));
                    }
                    conditions = outer.to_vec();
                    conditions.push(Condition::Host(
                        args.iter().map(|a| a.to_ascii_lowercase()).collect(),
                    ));
                }
                "match" => {
                    if args.is_empty() {
                        return Err(invalid(LineError::MatchCriteria));
                    }
                    conditions = outer.to_vec();
                    if !(args.len() == 1 && args[0].eq_ignore_ascii_case("all")) {
                        conditions.push(Condition::Never);
                    }
                }
                "include" => {
                    if args.is_empty() {
                        return Err(invalid(LineError::IncludeFile));
                    }
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(invalid(LineError::IncludeDepth));
                    }
                    for arg in &args {
                        let pattern = expand_tilde(arg, self.local.home.as_deref());
                        let pattern = match include_dir {
                            Some(dir) if pattern.is_relative() => dir.join(pattern),
                            _ => pattern,
                        };
                        for path in expand_glob(&pattern) {
                            if path.is_dir() {
                                continue;
                            }
                            let text = fs::read_to_string(&path).map_err(|source| {
                                SshConfigError::Read {
                                    file: path.clone(),
                                    source,
                                }
                            })?;
                            self.read(&text, &path, include_dir, &conditions, depth + 1)?;
                        }
                    }
                }
                _ => {
                    if let Some(setting) = parse_setting(&keyword, &args).map_err(invalid)? {
                        self.entries.push(Entry {
                            conditions: conditions.clone(),
                            setting,
                            origin,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// The files matching a path whose components may hold `*` and `?`, sorted as glob(3)
/// sorts them; a path without wildcards is returned when it exists.
///
/// Not the `glob` crate: with glob(3)'s rule that `*` skips hidden files turned on
/// (`require_literal_leading_dot`), it also drops them from patterns that spell the dot
/// (`.*.conf`), and it panics on a file name that is not UTF-8.
pub(super) fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let mut matches = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        if !text.contains(['*', '?']) {
            for path in &mut matches {
                path.push(component);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &matches {
            let listing = if dir.as_os_str().is_empty() {
                fs::read_dir(".")
            } else {
                fs::read_dir(dir)
            };
            let Ok(listing) = listing else { continue };
            let mut names: Vec<String> = listing
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
                // Hidden files only match a pattern that asks for them, as in glob(3).
                .filter(|name| !name.starts_with('.') || text.starts_with('.'))
                .filter(|name| crate::glob::matches(&text, name))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|name| dir.join(name)));
        }
        matches = next;
    }
    matches.retain(|path| !path.as_os_str().is_empty() && path.exists());
    matches
}
