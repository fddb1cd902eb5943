//! Inventory sources on disk: telling YAML from INI, reading a file or an inventory
//! directory, and the `group_vars/` and `host_vars/` directories beside them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::builder::Builder;
use super::ini::read_ini;
use super::tagged::{Level, TaggedVars};
use super::yaml::{nesting_error, read_yaml, yaml_error};
use super::InventoryError;

/// Endings of file names that an inventory directory's reader skips (Ansible's default
/// `inventory_ignore_extensions`).
const IGNORED_IN_DIRECTORY: [&str; 13] = [
    "~", ".orig", ".bak", ".ini", ".cfg", ".retry", ".pyc", ".pyo", ".swp", ".rpm", ".md", ".txt",
    ".rst",
];

/// The spellings, in order, of a `group_vars`/`host_vars` entry for a name.
const VARS_EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

pub(super) fn is_yaml(path: &Path, text: &str) -> bool {
    let extension = path.extension().and_then(OsStr::to_str).unwrap_or("");
    if ["yml", "yaml", "json"]
        .iter()
        .any(|yaml| extension.eq_ignore_ascii_case(yaml))
    {
        return true;
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with(';'))
    else {
        return false;
    };
    if first.starts_with('[') {
        return false;
    }
    if first == "---"
        || first.starts_with("--- ")
        || first.starts_with('%')
        || first.starts_with('{')
    {
        return true;
    }
    first
        .split_whitespace()
        .next()
        .is_some_and(|word| word.ends_with(':'))
}

/// Reads one inventory file into `builder`, YAML or INI.
pub(super) fn read_source(builder: &mut Builder, path: &Path) -> Result<(), InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    if is_yaml(path, &text) {
        read_yaml(builder, &text, path)
    } else {
        read_ini(builder, &text, path)
    }
}

/// Reads every inventory file of a directory in name order, as Ansible does: hidden
/// files, subdirectories (`group_vars/` and `host_vars/` among them) and names ending in
/// one of [`IGNORED_IN_DIRECTORY`] are skipped.
pub(super) fn read_directory(builder: &mut Builder, dir: &Path) -> Result<(), InventoryError> {
    let listing = std::fs::read_dir(dir).map_err(|source| InventoryError::Read {
        file: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| {
            let name = path.file_name().and_then(OsStr::to_str).unwrap_or(".");
            !name.starts_with('.')
                && !IGNORED_IN_DIRECTORY
                    .iter()
                    .any(|ignored| name.ends_with(ignored))
        })
        .collect();
    files.sort();
    for file in files {
        read_source(builder, &file)?;
    }
    Ok(())
}

/// Reads `group_vars/` and `host_vars/` in `dir` for every group and host `builder`
/// knows, where Ansible's `host_group_vars` plugin finds them: for a name NAME, the
/// files `NAME`, `NAME.yml`, `NAME.yaml` and `NAME.json`, in that order; each of these
/// that is a directory gives its files instead (recursively, in name order, without
/// hidden files, `~` backups and other extensions).
pub(super) fn read_vars_dirs(builder: &mut Builder, dir: &Path) -> Result<(), InventoryError> {
    let groups: Vec<String> = builder.groups.keys().cloned().collect();
    let hosts: Vec<String> = builder.hosts.keys().cloned().collect();
    for (kind, names) in [("group_vars", groups), ("host_vars", hosts)] {
        let base = dir.join(kind);
        if !base.is_dir() {
            continue;
        }
        for name in names {
            let mut vars = Level::default();
            for file in vars_files(&base, &name) {
                vars.merge(&read_vars_file(&file)?);
            }
            if vars.vars.is_empty() {
                continue;
            }
            let found = if kind == "group_vars" {
                &mut builder.dir_group_vars
            } else {
                &mut builder.dir_host_vars
            };
            found.insert(name, vars);
        }
    }
    Ok(())
}

/// The variable files for `name` under `base`, in the order they apply.
fn vars_files(base: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for extension in VARS_EXTENSIONS {
        let path = base.join(format!("{name}{extension}"));
        if path.is_dir() {
            collect_vars_dir(&path, &mut found);
        } else if path.is_file() {
            found.push(path);
        }
    }
    found
}

fn collect_vars_dir(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(OsStr::to_str).unwrap_or(".");
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if path.is_dir() {
            collect_vars_dir(&path, found);
        } else if match path.extension().and_then(OsStr::to_str) {
            None => true,
            Some(extension) => VARS_EXTENSIONS
                .iter()
                .any(|known| known.strip_prefix('.') == Some(extension)),
        } {
            found.push(path);
        }
    }
}

/// One `group_vars`/`host_vars` file: a YAML (or JSON) mapping of variables, or nothing.
fn read_vars_file(path: &Path) -> Result<Level, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    if text.trim_start().starts_with("$ANSIBLE_VAULT;") {
        return Err(InventoryError::YamlDocument {
            file: path.to_path_buf(),
            message: "the file is encrypted with ansible-vault, which converge cannot read"
                .to_owned(),
        });
    }
    crate::yaml::check_nesting(&text, path).map_err(nesting_error)?;
    let vars: Option<TaggedVars> = serde_yaml::from_str(&text).map_err(|e| yaml_error(path, &e))?;
    Ok(Level::read(vars.unwrap_or_default(), path))
}
