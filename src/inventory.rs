//! The inventory: which hosts exist, how they are grouped, what variables each one has,
//! and which of them a host pattern (`--limit`, a play's `hosts:`) selects.
//!
//! # Sources
//!
//! [`Inventory::load`] takes the `-i` argument. A value naming an existing file is read as
//! an inventory file; otherwise a value containing a comma is a host list
//! (`web1,web2:2222`, Ansible's rule, so a single host is written `web1,`). Without `-i`,
//! `inventory.yml` and then `inventory` beside the playbook are tried.
//!
//! A file is YAML when its extension is `.yml`, `.yaml` or `.json` (JSON is YAML).
//! Otherwise the first line that is neither blank nor a comment (`#`, `;`) decides: a
//! line starting with `[` is an INI section header, so the file is INI; a YAML document
//! marker (`---`, `%` directive) or flow mapping (`{`) means YAML; otherwise the file is
//! YAML only when the line's first word ends with `:` (a mapping key such as `all:`), so
//! INI host lines like `web1:2222` or `web1 motd="a: b"` still read as INI.
//!
//! The YAML layout is Ansible's (`all: {vars, hosts, children}`; other top-level groups
//! are children of `all`), and so is the INI one (`[group]`, `[group:vars]`,
//! `[group:children]`, hosts before any section are `ungrouped`). Host names may hold
//! ranges, `web[01:03]`, `db-[a:c]` or `n[0:10:2]`, which expand with their zero padding.
//!
//! # Guarantees
//!
//! - Hosts keep the order in which they first appear; every selection returns hosts in
//!   that order, each at most once.
//! - A host's variables merge, lowest precedence first: `all`, then the other groups it
//!   belongs to by depth below `all` (a child group overrides its parent; groups at the
//!   same depth apply in name order, as in Ansible), then the host's own variables. A
//!   later value replaces an earlier one whole; maps are not merged.
//! - The spellings of one connection setting (`port` and `ansible_port`, ...) are one
//!   variable: setting either replaces the other from a lower level or from earlier at
//!   the same level, so precedence works across spellings.
//! - Every host belongs to `all`; a host in no other group (besides `ungrouped`) belongs
//!   to `ungrouped`, and one in any other group does not, as in Ansible.
//! - Parse errors name the file and the line (and the column, for YAML); invalid
//!   connection settings name the host, the variable and the allowed values. Variables
//!   without a meaning here are kept as user variables, never rejected.
//! - No input makes this module panic.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::transport::{Connection, Explicit, HostKeyChecking, SshOptions, Target};

/// Variables by name, in the order they were written.
pub type Vars = IndexMap<String, serde_json::Value>;

const ALL: &str = "all";
const UNGROUPED: &str = "ungrouped";

/// Inventory files tried beside the playbook when no `-i` is given, in order.
pub const DEFAULT_FILES: [&str; 2] = ["inventory.yml", "inventory"];

/// Endings of file names that an inventory directory's reader skips (Ansible's default
/// `inventory_ignore_extensions`).
const IGNORED_IN_DIRECTORY: [&str; 13] = [
    "~", ".orig", ".bak", ".ini", ".cfg", ".retry", ".pyc", ".pyo", ".swp", ".rpm", ".md", ".txt",
    ".rst",
];

/// The spellings, in order, of a `group_vars`/`host_vars` entry for a name.
const VARS_EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

/// A range such as `web[0:99999999]` could otherwise exhaust memory before any other
/// check runs; no real inventory comes close to this many hosts from one name.
const MAX_RANGE_HOSTS: usize = 65_536;

/// The spellings of each connection setting, canonical name first.
const SETTINGS: [&[&str]; 6] = [
    &["host", "ansible_host"],
    &["port", "ansible_port"],
    &["user", "ansible_user"],
    &["identity_file", "ansible_ssh_private_key_file"],
    &["connection", "ansible_connection"],
    &["host_key_checking"],
];

/// Why an inventory could not be loaded, or a host's settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// An inventory file exists but cannot be read.
    #[error("cannot read inventory {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The `-i` value is neither an existing file nor a host list (it has no comma).
    #[error(
        "inventory {} does not exist (to target a single host, write `-i {},` with a trailing comma)",
        file.display(),
        file.display()
    )]
    NotFound { file: PathBuf },
    /// No `-i` was given and none of [`DEFAULT_FILES`] exists beside the playbook.
    #[error(
        "no inventory: pass -i, or create {} or {} in {}",
        DEFAULT_FILES[0],
        DEFAULT_FILES[1],
        shown_dir(dir)
    )]
    NoDefault { dir: PathBuf },
    /// Invalid YAML, or YAML not shaped like an inventory, at a known position.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Yaml {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Invalid YAML for which the parser knows no position (such as several documents).
    #[error("{}: {message}", file.display())]
    YamlDocument { file: PathBuf, message: String },
    /// Invalid INI syntax or names, at a line of the file.
    #[error("{}:{line}: {message}", file.display())]
    Ini {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// An invalid entry in a comma-separated host list.
    #[error("invalid host list `{list}`: {message}")]
    HostList { list: String, message: String },
    /// Groups that are, through `children`, their own descendants.
    #[error("{}: group children form a cycle: {}", file.display(), cycle.join(" -> "))]
    GroupCycle { file: PathBuf, cycle: Vec<String> },
    /// A connection setting with a value it cannot have; `value` is shown as JSON.
    #[error("host {host}: invalid {var} {value}: expected {expected}")]
    InvalidVar {
        host: String,
        var: String,
        value: String,
        expected: &'static str,
    },
    /// `--limit` selects no host at all.
    #[error("no inventory host matches --limit `{pattern}`")]
    NoHostsMatched { pattern: String },
}

fn shown_dir(dir: &Path) -> String {
    if dir.as_os_str().is_empty() {
        ".".to_string()
    } else {
        dir.display().to_string()
    }
}

/// A problem with a host or group name, reported with the position of whatever held it.
#[derive(Debug, thiserror::Error)]
enum NameError {
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
}

/// One host as the rest of converge sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryHost {
    /// The inventory name.
    pub name: String,
    /// Every group the host belongs to, directly or through `children`, including `all`;
    /// in precedence order (`all` first, deeper groups later).
    pub groups: Vec<String>,
    /// The host's variables, merged from all its groups and its own.
    pub vars: Vars,
}

/// A parsed inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    hosts: IndexMap<String, InventoryHost>,
}

impl Inventory {
    /// Loads from an -i argument (file path or comma host list), or the default files
    /// beside the playbook when `spec` is None. Relative file paths are relative to the
    /// current directory.
    pub fn load(spec: Option<&str>, playbook_dir: &Path) -> Result<Inventory, InventoryError> {
        if let Some(spec) = spec {
            let path = Path::new(spec);
            return if path.exists() {
                Self::from_file(path)
            } else if spec.contains(',') {
                Self::from_host_list(spec)
            } else {
                Err(InventoryError::NotFound {
                    file: path.to_path_buf(),
                })
            };
        }
        for name in DEFAULT_FILES {
            let path = playbook_dir.join(name);
            if path.exists() {
                return Self::from_file(&path);
            }
        }
        Err(InventoryError::NoDefault {
            dir: playbook_dir.to_path_buf(),
        })
    }

    /// Reads an inventory file (YAML or INI, as described in the module documentation)
    /// or directory, with the `group_vars/` and `host_vars/` directories beside it.
    pub fn from_file(path: &Path) -> Result<Inventory, InventoryError> {
        let mut builder = Builder::new();
        let vars_dir = if path.is_dir() {
            read_directory(&mut builder, path)?;
            path
        } else {
            read_source(&mut builder, path)?;
            path.parent().unwrap_or(Path::new(""))
        };
        read_vars_dirs(&mut builder, vars_dir)?;
        builder
            .finish()
            .map_err(|cycle| InventoryError::GroupCycle {
                file: path.to_path_buf(),
                cycle,
            })
    }

    /// Builds an inventory from a comma-separated list of `name[:port]` entries, all in
    /// `ungrouped`. Empty entries are skipped, so `web1,` is one host and `,` is none.
    pub fn from_host_list(list: &str) -> Result<Inventory, InventoryError> {
        let error = |message: String| InventoryError::HostList {
            list: list.to_string(),
            message,
        };
        let mut builder = Builder::new();
        for item in list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let (names, vars) = parse_host_spec(item).map_err(|e| error(e.to_string()))?;
            for name in names {
                builder.add_host(UNGROUPED, &name, &vars);
            }
        }
        builder
            .finish()
            .map_err(|cycle| error(format!("group cycle {}", cycle.join(" -> "))))
    }

    /// Parses a YAML inventory; `origin` names the file in error messages.
    #[cfg(test)]
    pub fn parse_yaml(text: &str, origin: &Path) -> Result<Inventory, InventoryError> {
        let mut builder = Builder::new();
        read_yaml(&mut builder, text, origin)?;
        builder
            .finish()
            .map_err(|cycle| InventoryError::GroupCycle {
                file: origin.to_path_buf(),
                cycle,
            })
    }

    /// Parses an INI inventory; `origin` names the file in error messages.
    #[cfg(test)]
    pub fn parse_ini(text: &str, origin: &Path) -> Result<Inventory, InventoryError> {
        let mut builder = Builder::new();
        read_ini(&mut builder, text, origin)?;
        builder
            .finish()
            .map_err(|cycle| InventoryError::GroupCycle {
                file: origin.to_path_buf(),
                cycle,
            })
    }

    /// All hosts, in inventory order.
    pub fn hosts(&self) -> impl Iterator<Item = &InventoryHost> {
        self.hosts.values()
    }

    /// The host with this inventory name.
    // Kept for callers that look a host up by name even while the binary has none.
    #[allow(dead_code)]
    pub fn host(&self, name: &str) -> Option<&InventoryHost> {
        self.hosts.get(name)
    }

    /// Hosts matching an Ansible host pattern, inventory order.
    ///
    /// Terms are separated by `:` or `,`. A term is `all`, a host or group name, or a glob
    /// with `*` and `?` matched against host and group names. The result is the union of
    /// the plain terms, narrowed by every `&term` and then stripped of every `!term`; a
    /// pattern made only of `&` and `!` terms starts from `all`, and a pattern with no
    /// terms at all matches nothing.
    pub fn select(&self, pattern: &str) -> Vec<&InventoryHost> {
        self.hosts
            .values()
            .zip(self.selection_mask(pattern))
            .filter_map(|(host, selected)| selected.then_some(host))
            .collect()
    }

    /// Applies --limit: the subset matching `pattern`; error when none match.
    pub fn limit(&mut self, pattern: &str) -> Result<(), InventoryError> {
        let selected = self.selection_mask(pattern);
        if !selected.contains(&true) {
            return Err(InventoryError::NoHostsMatched {
                pattern: pattern.to_string(),
            });
        }
        let mut keep = selected.into_iter();
        self.hosts.retain(|_, _| keep.next().unwrap_or(false));
        Ok(())
    }

    /// For each host in inventory order, whether `pattern` selects it.
    fn selection_mask(&self, pattern: &str) -> Vec<bool> {
        let mut union = Vec::new();
        let mut intersections = Vec::new();
        let mut exclusions = Vec::new();
        for term in pattern.split([':', ',']).map(str::trim) {
            let (terms, term) = if let Some(term) = term.strip_prefix('!') {
                (&mut exclusions, term.trim_start())
            } else if let Some(term) = term.strip_prefix('&') {
                (&mut intersections, term.trim_start())
            } else {
                (&mut union, term)
            };
            if !term.is_empty() {
                terms.push(term);
            }
        }
        if union.is_empty() && intersections.is_empty() && exclusions.is_empty() {
            return vec![false; self.hosts.len()];
        }
        if union.is_empty() {
            union.push(ALL);
        }
        self.hosts
            .values()
            .map(|host| {
                union.iter().any(|term| host.matches(term))
                    && intersections.iter().all(|term| host.matches(term))
                    && !exclusions.iter().any(|term| host.matches(term))
            })
            .collect()
    }
}

// What a connection setting's value was checked against, for error messages.
const EXPECT_TEXT: &str = "a non-empty string";
const EXPECT_PORT: &str = "an integer from 1 to 65535";
const EXPECT_CONNECTION: &str = "one of ssh, local";
const EXPECT_HOST_KEY_CHECKING: &str = "one of strict, accept-new, off";

impl InventoryHost {
    /// Connection settings from the merged vars (aliases applied).
    ///
    /// A setting whose value is null counts as unset. Defaults: the inventory name as
    /// address, port 22, the local `$USER` (or `root`) as user, no identity file, SSH,
    /// strict host key checking. A leading `~` in `identity_file` is the local `$HOME`.
    /// The target records which settings were given ([`Explicit`]), so that
    /// `~/.ssh/config` fills in only the others.
    pub fn target(&self) -> Result<Target, InventoryError> {
        let user = std::env::var("USER")
            .ok()
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "root".to_string());
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from);
        self.target_with(&user, home.as_deref())
    }

    fn target_with(
        &self,
        default_user: &str,
        home: Option<&Path>,
    ) -> Result<Target, InventoryError> {
        let [host, port, user, identity_file, connection, host_key_checking] = SETTINGS;
        let explicit = Explicit {
            port: self.setting(port).is_some(),
            user: self.setting(user).is_some(),
            host_key_checking: self.setting(host_key_checking).is_some(),
        };
        let address = match self.setting(host) {
            Some((var, value)) => self.text(var, value)?,
            None => self.name.clone(),
        };
        let port = match self.setting(port) {
            Some((var, value)) => {
                let number = match value {
                    Value::Number(number) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
                    Value::String(text) => text.trim().parse::<u16>().ok(),
                    _ => None,
                };
                match number {
                    Some(number) if number != 0 => number,
                    _ => return Err(self.invalid(var, value, EXPECT_PORT)),
                }
            }
            None => 22,
        };
        let user = match self.setting(user) {
            Some((var, value)) => self.text(var, value)?,
            None => default_user.to_string(),
        };
        let identity_file = match self.setting(identity_file) {
            Some((var, value)) => Some(expand_tilde(&self.text(var, value)?, home)),
            None => None,
        };
        let connection = match self.setting(connection) {
            Some((var, value)) => match value.as_str() {
                Some("ssh") => Connection::Ssh,
                Some("local") => Connection::Local,
                _ => return Err(self.invalid(var, value, EXPECT_CONNECTION)),
            },
            None => Connection::Ssh,
        };
        let host_key_checking = match self.setting(host_key_checking) {
            Some((var, value)) => match value.as_str() {
                Some("strict") => HostKeyChecking::Strict,
                Some("accept-new") => HostKeyChecking::AcceptNew,
                Some("off") => HostKeyChecking::Off,
                _ => return Err(self.invalid(var, value, EXPECT_HOST_KEY_CHECKING)),
            },
            None => HostKeyChecking::Strict,
        };
        Ok(Target {
            name: self.name.clone(),
            address,
            port,
            user,
            identity_file,
            connection,
            host_key_checking,
            ssh: SshOptions {
                explicit,
                ..SshOptions::default()
            },
        })
    }

    /// The first non-null spelling of a setting.
    fn setting(&self, spellings: &[&'static str]) -> Option<(&'static str, &Value)> {
        spellings.iter().find_map(|&var| {
            self.vars
                .get(var)
                .filter(|value| !value.is_null())
                .map(|value| (var, value))
        })
    }

    fn text(&self, var: &str, value: &Value) -> Result<String, InventoryError> {
        match value {
            Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            _ => Err(self.invalid(var, value, EXPECT_TEXT)),
        }
    }

    fn invalid(&self, var: &str, value: &Value, expected: &'static str) -> InventoryError {
        InventoryError::InvalidVar {
            host: self.name.clone(),
            var: var.to_string(),
            value: value.to_string(),
            expected,
        }
    }

    /// Whether one pattern term (without `!`/`&`) names this host or one of its groups.
    fn matches(&self, term: &str) -> bool {
        if term.contains(['*', '?']) {
            crate::glob::matches(term, &self.name)
                || self
                    .groups
                    .iter()
                    .any(|group| crate::glob::matches(term, group))
        } else {
            self.name == term || self.groups.iter().any(|group| group == term)
        }
    }
}

/// `~` and `~/...` under `home`; anything else as it is.
pub(crate) fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (home, path.strip_prefix('~')) {
        (Some(home), Some("")) => home.to_path_buf(),
        (Some(home), Some(rest)) if rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

fn is_yaml(path: &Path, text: &str) -> bool {
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

/// Reads an INI inventory into `builder`; `origin` names the file in error messages.
fn read_ini(builder: &mut Builder, text: &str, origin: &Path) -> Result<(), InventoryError> {
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

/// Reads a YAML inventory into `builder`; `origin` names the file in error messages.
fn read_yaml(builder: &mut Builder, text: &str, origin: &Path) -> Result<(), InventoryError> {
    crate::yaml::check_nesting(text, origin).map_err(nesting_error)?;
    let document: Option<Entries<GroupKey, Option<YamlGroup>>> =
        serde_yaml::from_str(text).map_err(|e| yaml_error(origin, &e))?;
    for (GroupKey(name), group) in document.map(|entries| entries.0).unwrap_or_default() {
        builder.group(&name);
        if let Some(group) = group {
            add_yaml_group(builder, &name, group);
        }
    }
    Ok(())
}

/// Reads one inventory file into `builder`, YAML or INI.
fn read_source(builder: &mut Builder, path: &Path) -> Result<(), InventoryError> {
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
fn read_directory(builder: &mut Builder, dir: &Path) -> Result<(), InventoryError> {
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
fn read_vars_dirs(builder: &mut Builder, dir: &Path) -> Result<(), InventoryError> {
    let groups: Vec<String> = builder.groups.keys().cloned().collect();
    let hosts: Vec<String> = builder.hosts.keys().cloned().collect();
    for (kind, names) in [("group_vars", groups), ("host_vars", hosts)] {
        let base = dir.join(kind);
        if !base.is_dir() {
            continue;
        }
        for name in names {
            let mut vars = Vars::new();
            for file in vars_files(&base, &name) {
                merge_vars(&mut vars, &read_vars_file(&file)?);
            }
            if vars.is_empty() {
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
fn read_vars_file(path: &Path) -> Result<Vars, InventoryError> {
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
    let vars: Option<Vars> = serde_yaml::from_str(&text).map_err(|e| yaml_error(path, &e))?;
    Ok(vars.unwrap_or_default())
}

// ---------------------------------------------------------------------------------------
// Building: groups and hosts as written, resolved into `Inventory` at the end.

#[derive(Debug, Default)]
struct GroupDef {
    vars: Vars,
    children: IndexSet<String>,
    parents: IndexSet<String>,
}

#[derive(Debug, Default)]
struct HostDef {
    vars: Vars,
    /// Groups that list the host directly.
    groups: IndexSet<String>,
}

#[derive(Debug)]
struct Builder {
    groups: IndexMap<String, GroupDef>,
    hosts: IndexMap<String, HostDef>,
    /// Variables from `group_vars/` and `host_vars/`, by group and host name.
    dir_group_vars: IndexMap<String, Vars>,
    dir_host_vars: IndexMap<String, Vars>,
}

impl Builder {
    fn new() -> Self {
        let mut builder = Builder {
            groups: IndexMap::new(),
            hosts: IndexMap::new(),
            dir_group_vars: IndexMap::new(),
            dir_host_vars: IndexMap::new(),
        };
        builder.add_child(ALL, UNGROUPED);
        builder
    }

    fn group(&mut self, name: &str) -> &mut GroupDef {
        self.groups.entry(name.to_string()).or_default()
    }

    fn add_child(&mut self, parent: &str, child: &str) {
        self.group(parent).children.insert(child.to_string());
        self.group(child).parents.insert(parent.to_string());
    }

    fn add_group_vars(&mut self, group: &str, vars: &Vars) {
        merge_vars(&mut self.group(group).vars, vars);
    }

    fn add_host(&mut self, group: &str, name: &str, vars: &Vars) {
        self.group(group);
        let host = self.hosts.entry(name.to_string()).or_default();
        host.groups.insert(group.to_string());
        merge_vars(&mut host.vars, vars);
    }

    /// Resolves group depths, memberships and variables; fails with the groups of a
    /// `children` cycle, in parent-to-child order with the first repeated at the end.
    fn finish(mut self) -> Result<Inventory, Vec<String>> {
        let orphans: Vec<String> = self
            .groups
            .iter()
            .filter(|(name, group)| name.as_str() != ALL && group.parents.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for orphan in orphans {
            self.add_child(ALL, &orphan);
        }
        let depths = self.depths()?;
        let Builder {
            groups,
            hosts,
            dir_group_vars,
            dir_host_vars,
        } = self;

        let mut resolved = IndexMap::with_capacity(hosts.len());
        for (name, mut host) in hosts {
            if host
                .groups
                .iter()
                .any(|group| group != ALL && group != UNGROUPED)
            {
                host.groups.shift_remove(UNGROUPED);
            } else {
                host.groups.insert(UNGROUPED.to_string());
            }
            let mut member: IndexSet<usize> = host
                .groups
                .iter()
                .filter_map(|group| groups.get_index_of(group))
                .collect();
            let mut next = 0;
            while let Some(&index) = member.get_index(next) {
                next += 1;
                let parents = groups.get_index(index).map(|(_, group)| &group.parents);
                for parent in parents.into_iter().flatten() {
                    if let Some(parent) = groups.get_index_of(parent) {
                        member.insert(parent);
                    }
                }
            }
            let mut member: Vec<(usize, &str)> = member
                .into_iter()
                .filter_map(|index| {
                    groups
                        .get_index(index)
                        .map(|(name, _)| (index, name.as_str()))
                })
                .collect();
            member.sort_by(|(a, a_name), (b, b_name)| {
                depths[*a].cmp(&depths[*b]).then_with(|| a_name.cmp(b_name))
            });
            // Ansible's order: the inventory's own group variables (all, then groups by
            // depth), then group_vars/all, group_vars/GROUP by depth, then the
            // inventory's host variables, then host_vars/HOST.
            let mut vars = Vars::new();
            for &(index, _) in &member {
                if let Some((_, group)) = groups.get_index(index) {
                    merge_vars(&mut vars, &group.vars);
                }
            }
            for &(_, group) in &member {
                if let Some(found) = dir_group_vars.get(group) {
                    merge_vars(&mut vars, found);
                }
            }
            merge_vars(&mut vars, &host.vars);
            if let Some(found) = dir_host_vars.get(&name) {
                merge_vars(&mut vars, found);
            }
            let groups = member
                .into_iter()
                .map(|(_, name)| name.to_string())
                .collect();
            resolved.insert(name.clone(), InventoryHost { name, groups, vars });
        }
        Ok(Inventory { hosts: resolved })
    }

    /// Each group's depth (longest `children` path from `all`), by group index.
    fn depths(&self) -> Result<Vec<usize>, Vec<String>> {
        let count = self.groups.len();
        let index_of = |name: &String| self.groups.get_index_of(name);
        let mut waiting: Vec<usize> = self.groups.values().map(|g| g.parents.len()).collect();
        let mut depth = vec![0; count];
        let mut done = vec![false; count];
        // Kahn's topological order: a group is placed once all its parents are, so its
        // depth is final by then, and groups never placed lie on or below a cycle.
        let mut queue: VecDeque<usize> = (0..count).filter(|&i| waiting[i] == 0).collect();
        while let Some(index) = queue.pop_front() {
            done[index] = true;
            let Some((_, group)) = self.groups.get_index(index) else {
                continue;
            };
            for child in group.children.iter().filter_map(index_of) {
                depth[child] = depth[child].max(depth[index] + 1);
                waiting[child] -= 1;
                if waiting[child] == 0 {
                    queue.push_back(child);
                }
            }
        }
        let Some(start) = done.iter().position(|&placed| !placed) else {
            return Ok(depth);
        };
        // Every unplaced group has an unplaced parent, so walking up through them must
        // come back to a group already seen: that stretch of the walk is a cycle.
        let mut walk = vec![start];
        let mut current = start;
        loop {
            let parent = self.groups.get_index(current).and_then(|(_, group)| {
                group
                    .parents
                    .iter()
                    .filter_map(index_of)
                    .find(|&parent| !done[parent])
            });
            let Some(parent) = parent else {
                break;
            };
            if let Some(position) = walk.iter().position(|&seen| seen == parent) {
                walk.drain(..position);
                walk.push(parent);
                break;
            }
            walk.push(parent);
            current = parent;
        }
        walk.reverse();
        Err(walk
            .into_iter()
            .filter_map(|index| self.groups.get_index(index).map(|(name, _)| name.clone()))
            .collect())
    }
}

/// Sets `name` in `vars`, dropping the other spellings of the same connection setting.
fn set_var(vars: &mut Vars, name: &str, value: Value) {
    if let Some(spellings) = SETTINGS.iter().find(|spellings| spellings.contains(&name)) {
        for other in spellings.iter().filter(|&&other| other != name) {
            vars.shift_remove(*other);
        }
    }
    vars.insert(name.to_string(), value);
}

/// Applies `level` over `vars`, entry by entry.
fn merge_vars(vars: &mut Vars, level: &Vars) {
    for (name, value) in level {
        set_var(vars, name, value.clone());
    }
}

// ---------------------------------------------------------------------------------------
// Names and ranges.

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn check_group_name(name: &str) -> Result<String, NameError> {
    if is_name(name) {
        Ok(name.to_string())
    } else {
        Err(NameError::Group {
            name: name.to_string(),
        })
    }
}

/// Expands the ranges in a host name and checks every resulting name.
fn expand_hosts(pattern: &str) -> Result<Vec<String>, NameError> {
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
fn parse_host_spec(spec: &str) -> Result<(Vec<String>, Vars), NameError> {
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

// ---------------------------------------------------------------------------------------
// YAML.

/// A mapping read as its list of entries, so a key written twice is merged (as Ansible
/// does) rather than silently replaced.
struct Entries<K, V>(Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A host key, with its ranges expanded. Names are checked inside `visit_str` so that the
/// YAML parser attaches the key's own position to the error.
struct HostKey(Vec<String>);

impl<'de> Deserialize<'de> for HostKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HostKeyVisitor;
        impl Visitor<'_> for HostKeyVisitor {
            type Value = HostKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a host name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<HostKey, E> {
                expand_hosts(name).map(HostKey).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(HostKeyVisitor)
    }
}

/// A group key, checked like [`HostKey`].
struct GroupKey(String);

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GroupKeyVisitor;
        impl Visitor<'_> for GroupKeyVisitor {
            type Value = GroupKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a group name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<GroupKey, E> {
                check_group_name(name).map(GroupKey).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(GroupKeyVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlGroup {
    #[serde(default)]
    hosts: Option<Entries<HostKey, Option<Vars>>>,
    #[serde(default)]
    vars: Option<Vars>,
    #[serde(default)]
    children: Option<Entries<GroupKey, Option<YamlGroup>>>,
}

/// Recursion follows the YAML nesting, which the parser already limits.
fn add_yaml_group(builder: &mut Builder, name: &str, group: YamlGroup) {
    if let Some(vars) = group.vars {
        builder.add_group_vars(name, &vars);
    }
    for (HostKey(hosts), vars) in group.hosts.map(|entries| entries.0).unwrap_or_default() {
        let vars = vars.unwrap_or_default();
        for host in hosts {
            builder.add_host(name, &host, &vars);
        }
    }
    for (GroupKey(child), sub) in group.children.map(|entries| entries.0).unwrap_or_default() {
        builder.add_child(name, &child);
        if let Some(sub) = sub {
            add_yaml_group(builder, &child, sub);
        }
    }
}

fn nesting_error(error: crate::yaml::YamlError) -> InventoryError {
    InventoryError::Yaml {
        file: error.file,
        line: error.line,
        column: error.column,
        message: error.message,
    }
}

fn yaml_error(file: &Path, error: &serde_yaml::Error) -> InventoryError {
    let text = error.to_string();
    match error.location() {
        Some(location) => {
            // The position is reported separately, so drop the parser's own mention of it.
            let position = format!(" at line {} column {}", location.line(), location.column());
            InventoryError::Yaml {
                file: file.to_path_buf(),
                line: location.line(),
                column: location.column(),
                message: text.replacen(&position, "", 1),
            }
        }
        None => InventoryError::YamlDocument {
            file: file.to_path_buf(),
            message: text,
        },
    }
}

// ---------------------------------------------------------------------------------------
// INI.

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
                set_var(&mut vars, name, ini_value(value)?);
            }
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
            let value = ini_value(strip_comment(value)?.trim())?;
            let mut vars = Vars::new();
            vars.insert(name.to_string(), value);
            builder.add_group_vars(group, &vars);
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

/// Splits a host line at whitespace outside quotes, keeping the quotes; a `#` starting a
/// token begins a comment.
fn split_tokens(line: &str) -> Result<Vec<&str>, LineError> {
    let mut tokens = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut escaped = false;
    for (index, c) in line.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if open == '"' && c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
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
        if c == '"' || c == '\'' {
            quote = Some(c);
        }
    }
    if quote.is_some() {
        return Err(LineError::Quote);
    }
    if let Some(begin) = start {
        tokens.push(&line[begin..]);
    }
    Ok(tokens)
}

/// Cuts a `#` comment (at the start or after whitespace, outside quotes) off a value.
fn strip_comment(text: &str) -> Result<&str, LineError> {
    let mut quote = None;
    let mut escaped = false;
    let mut after_space = true;
    for (index, c) in text.char_indices() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if open == '"' && c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
        } else if c == '#' && after_space {
            return Ok(&text[..index]);
        } else if c == '"' || c == '\'' {
            quote = Some(c);
        }
        after_space = c.is_whitespace();
    }
    if quote.is_some() {
        return Err(LineError::Quote);
    }
    Ok(text)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn yaml(text: &str) -> Inventory {
        Inventory::parse_yaml(text, Path::new("inv.yml")).expect("valid YAML inventory")
    }

    fn ini(text: &str) -> Inventory {
        Inventory::parse_ini(text, Path::new("hosts.ini")).expect("valid INI inventory")
    }

    fn yaml_err(text: &str) -> String {
        Inventory::parse_yaml(text, Path::new("inv.yml"))
            .expect_err("invalid YAML inventory")
            .to_string()
    }

    fn ini_err(text: &str) -> String {
        Inventory::parse_ini(text, Path::new("hosts.ini"))
            .expect_err("invalid INI inventory")
            .to_string()
    }

    fn names(hosts: &[&InventoryHost]) -> Vec<String> {
        hosts.iter().map(|host| host.name.clone()).collect()
    }

    fn all_names(inventory: &Inventory) -> Vec<String> {
        inventory.hosts().map(|host| host.name.clone()).collect()
    }

    fn target(host: &InventoryHost) -> Result<Target, InventoryError> {
        host.target_with("alice", Some(Path::new("/home/alice")))
    }

    const SITE: &str = "
all:
  vars:
    tier: base
    ntp: pool.ntp.org
  hosts:
    bastion:
      ansible_host: 203.0.113.1
  children:
    app:
      vars:
        tier: app
        port: 2200
      hosts:
        app1:
        app2:
          tier: special
        app3:
      children:
        app_eu:
          vars:
            tier: eu
          hosts:
            app2:
            app4:
    db:
      hosts:
        db1:
          port: 5022
staging:
  hosts:
    app3:
    db1:
";

    #[test]
    fn yaml_hosts_keep_first_appearance_order() {
        let inventory = yaml(SITE);
        assert_eq!(
            all_names(&inventory),
            ["bastion", "app1", "app2", "app3", "app4", "db1"]
        );
    }

    #[test]
    fn yaml_groups_include_parents_all_and_ungrouped() {
        let inventory = yaml(SITE);
        let groups = |name: &str| inventory.host(name).expect("host").groups.clone();
        assert_eq!(groups("bastion"), ["all", "ungrouped"]);
        assert_eq!(groups("app1"), ["all", "app"]);
        assert_eq!(groups("app2"), ["all", "app", "app_eu"]);
        assert_eq!(groups("app3"), ["all", "app", "staging"]);
        assert_eq!(groups("app4"), ["all", "app", "app_eu"]);
        assert_eq!(groups("db1"), ["all", "db", "staging"]);
    }

    #[test]
    fn yaml_vars_precedence_all_then_parent_then_child_then_host() {
        let inventory = yaml(SITE);
        let var = |host: &str, name: &str| inventory.host(host).expect("host").vars[name].clone();
        assert_eq!(var("bastion", "tier"), json!("base"));
        assert_eq!(var("app1", "tier"), json!("app"));
        assert_eq!(var("app4", "tier"), json!("eu"));
        // Host vars beat the deeper group's.
        assert_eq!(var("app2", "tier"), json!("special"));
        assert_eq!(var("app2", "port"), json!(2200));
        assert_eq!(var("db1", "ntp"), json!("pool.ntp.org"));
        assert_eq!(var("db1", "port"), json!(5022));
    }

    #[test]
    fn yaml_targets_use_aliases_and_defaults() {
        let inventory = yaml(SITE);
        let bastion = target(inventory.host("bastion").expect("host")).expect("target");
        assert_eq!(
            bastion,
            Target {
                name: "bastion".into(),
                address: "203.0.113.1".into(),
                port: 22,
                user: "alice".into(),
                identity_file: None,
                connection: Connection::Ssh,
                host_key_checking: HostKeyChecking::Strict,
                ssh: SshOptions::default(),
            }
        );
        let app1 = target(inventory.host("app1").expect("host")).expect("target");
        assert_eq!((app1.address.as_str(), app1.port), ("app1", 2200));
    }

    #[test]
    fn yaml_same_depth_groups_apply_in_name_order() {
        let inventory = yaml(
            "
zeta:
  vars: {color: zeta}
  hosts: {h1: }
alpha:
  vars: {color: alpha, size: 1}
  hosts: {h1: }
",
        );
        let host = inventory.host("h1").expect("host");
        assert_eq!(host.groups, ["all", "alpha", "zeta"]);
        assert_eq!(host.vars["color"], json!("zeta"));
        assert_eq!(host.vars["size"], json!(1));
    }

    #[test]
    fn yaml_depth_is_the_longest_path_from_all() {
        // `deep` is both a direct child of `all` and a grandchild through `mid`, so it
        // sits below `mid` and overrides it.
        let inventory = yaml(
            "
all:
  children:
    deep:
      vars: {v: deep}
    mid:
      vars: {v: mid}
      children:
        deep:
          hosts: {h: }
",
        );
        let host = inventory.host("h").expect("host");
        assert_eq!(host.groups, ["all", "mid", "deep"]);
        assert_eq!(host.vars["v"], json!("deep"));
    }

    #[test]
    fn yaml_repeated_group_and_host_definitions_merge() {
        let inventory = yaml(
            "
web:
  vars: {a: 1}
  hosts:
    w1: {x: 1, y: 1}
db:
  hosts:
    w1: {y: 2}
web:
  vars: {b: 2}
",
        );
        let host = inventory.host("w1").expect("host");
        assert_eq!(host.groups, ["all", "db", "web"]);
        assert_eq!(host.vars["a"], json!(1));
        assert_eq!(host.vars["b"], json!(2));
        assert_eq!(host.vars["x"], json!(1));
        assert_eq!(host.vars["y"], json!(2));
    }

    #[test]
    fn yaml_ranges_expand_with_padding() {
        let inventory = yaml(
            "
web:
  hosts:
    web[08:11]:
      role: web
    db-[a:c].example.com:
    n[0:6:3]:
",
        );
        assert_eq!(
            all_names(&inventory),
            [
                "web08",
                "web09",
                "web10",
                "web11",
                "db-a.example.com",
                "db-b.example.com",
                "db-c.example.com",
                "n0",
                "n3",
                "n6"
            ]
        );
        assert_eq!(
            inventory.host("web10").expect("host").vars["role"],
            json!("web")
        );
    }

    #[test]
    fn yaml_values_keep_their_types() {
        let inventory = yaml(
            "
all:
  hosts:
    h:
      list: [1, two]
      map: {k: v}
      flag: true
      ratio: 0.5
      nothing: ~
      1: numeric key
",
        );
        let vars = &inventory.host("h").expect("host").vars;
        assert_eq!(vars["list"], json!([1, "two"]));
        assert_eq!(vars["map"], json!({"k": "v"}));
        assert_eq!(vars["flag"], json!(true));
        assert_eq!(vars["ratio"], json!(0.5));
        assert_eq!(vars["nothing"], Value::Null);
        assert_eq!(vars["1"], json!("numeric key"));
    }

    #[test]
    fn yaml_empty_documents_give_an_empty_inventory() {
        assert!(yaml("").hosts().next().is_none());
        assert!(yaml("# nothing yet\n").hosts().next().is_none());
        assert!(yaml("all:\n").hosts().next().is_none());
        assert!(yaml("---\nall:\n  hosts:\n").hosts().next().is_none());
    }

    #[test]
    fn yaml_numeric_host_names_are_names() {
        let inventory = yaml("all:\n  hosts:\n    10.0.0.1:\n    42:\n");
        assert_eq!(all_names(&inventory), ["10.0.0.1", "42"]);
    }

    #[test]
    fn yaml_errors_name_file_line_and_column() {
        assert_eq!(
            yaml_err("all:\n  hosts:\n    web1:\n  web:\n    hosts: {}\n"),
            "inv.yml:4:3: all: unknown field `web`, expected one of `hosts`, `vars`, `children`"
        );
        assert_eq!(
            yaml_err("all:\n  hosts:\n    web 1:\n"),
            "inv.yml:3:5: all.hosts: invalid host name \"web 1\": only letters, digits, '.', '-' and '_' \
             are allowed"
        );
        assert_eq!(
            yaml_err("all:\n  children:\n    web/servers:\n"),
            "inv.yml:3:5: all.children: invalid group name \"web/servers\": only letters, digits, '.', '-' \
             and '_' are allowed"
        );
        assert_eq!(
            yaml_err("all:\n  hosts:\n    web[3:1]:\n"),
            "inv.yml:3:5: all.hosts: invalid host range in \"web[3:1]\": the start is after the end"
        );
        assert_eq!(
            yaml_err("all:\n  hosts:\n    - web1\n"),
            "inv.yml:3:5: all.hosts: invalid type: sequence, expected a map"
        );
        assert_eq!(
            yaml_err("all:\n  hosts:\n    web1: web2\n"),
            "inv.yml:3:11: all.hosts.web1: invalid type: string \"web2\", expected a map"
        );
        assert_eq!(
            yaml_err("all:\n  hosts:\n   web1:\n  - x\n"),
            "inv.yml:4:3: did not find expected key, while parsing a block mapping at line 2 \
             column 3"
        );
        assert_eq!(
            yaml_err("all:\n\thosts:\n"),
            "inv.yml:2:1: found character that cannot start any token, while scanning for the \
             next token"
        );
        assert_eq!(
            yaml_err("- web1\n"),
            "inv.yml:1:1: invalid type: sequence, expected a map"
        );
        assert_eq!(
            yaml_err("all: {}\n---\nweb: {}\n"),
            "inv.yml: deserializing from YAML containing more than one document is not supported"
        );
    }

    #[test]
    fn yaml_error_location_is_exposed() {
        let error =
            Inventory::parse_yaml("all:\n  hostz:\n", Path::new("i.yml")).expect_err("unknown key");
        let InventoryError::Yaml { line, column, .. } = error else {
            panic!("expected a YAML error, got {error:?}");
        };
        assert_eq!((line, column), (2, 3));
    }

    #[test]
    fn children_cycles_are_errors() {
        assert_eq!(
            yaml_err("a:\n  children:\n    b:\n      children:\n        a:\n"),
            "inv.yml: group children form a cycle: a -> b -> a"
        );
        assert_eq!(
            yaml_err("web:\n  children:\n    all:\n"),
            "inv.yml: group children form a cycle: all -> web -> all"
        );
        assert_eq!(
            ini_err("[a:children]\na\n"),
            "hosts.ini: group children form a cycle: a -> a"
        );
    }

    const INI: &str = r#"
# Ansible-style inventory
bastion ansible_host=203.0.113.1

[web]
web[01:03] role=frontend
web04:2222 ansible_user=deploy   # trailing comment
web05 motd="hello world" mode=0755 count=-3 big=99999999999999999999 empty=

[db]
db-[a:b] ansible_port=5432 primary=false
; a comment
[prod:children]
web
db

[prod:vars]
env = production  # inline comment
tier=prod

[all:vars]
ansible_user=admin
tier = base
quoted = "a # b"
enabled=True

[web:vars]
tier=web
"#;

    #[test]
    fn ini_hosts_groups_and_order() {
        let inventory = ini(INI);
        assert_eq!(
            all_names(&inventory),
            ["bastion", "web01", "web02", "web03", "web04", "web05", "db-a", "db-b"]
        );
        let groups = |name: &str| inventory.host(name).expect("host").groups.clone();
        assert_eq!(groups("bastion"), ["all", "ungrouped"]);
        assert_eq!(groups("web02"), ["all", "prod", "web"]);
        assert_eq!(groups("db-b"), ["all", "prod", "db"]);
    }

    #[test]
    fn ini_values_are_typed_unless_quoted() {
        let inventory = ini(INI);
        let web05 = &inventory.host("web05").expect("host").vars;
        assert_eq!(web05["motd"], json!("hello world"));
        assert_eq!(web05["mode"], json!("0755"));
        assert_eq!(web05["count"], json!(-3));
        assert_eq!(web05["big"], json!("99999999999999999999"));
        assert_eq!(web05["empty"], json!(""));
        assert_eq!(web05["quoted"], json!("a # b"));
        assert_eq!(web05["enabled"], json!(true));
        assert_eq!(web05["env"], json!("production"));
        let db = &inventory.host("db-a").expect("host").vars;
        assert_eq!(db["primary"], json!(false));
        assert_eq!(db["ansible_port"], json!(5432));
    }

    #[test]
    fn ini_vars_precedence() {
        let inventory = ini(INI);
        let var = |host: &str| inventory.host(host).expect("host").vars["tier"].clone();
        assert_eq!(var("bastion"), json!("base"));
        assert_eq!(var("db-a"), json!("prod"));
        assert_eq!(var("web01"), json!("web"));
        assert_eq!(
            inventory.host("web01").expect("host").vars["role"],
            json!("frontend")
        );
    }

    #[test]
    fn ini_targets() {
        let inventory = ini(INI);
        let web04 = target(inventory.host("web04").expect("host")).expect("target");
        assert_eq!((web04.port, web04.user.as_str()), (2222, "deploy"));
        let web01 = target(inventory.host("web01").expect("host")).expect("target");
        assert_eq!(
            (web01.address.as_str(), web01.port, web01.user.as_str()),
            ("web01", 22, "admin")
        );
        let db = target(inventory.host("db-b").expect("host")).expect("target");
        assert_eq!(db.port, 5432);
        let bastion = target(inventory.host("bastion").expect("host")).expect("target");
        assert_eq!(bastion.address, "203.0.113.1");
    }

    #[test]
    fn ini_quotes_and_escapes() {
        let inventory = ini(
            r#"h1 a='single "q"' b="double \"q\" \\ \n" c=x"y z"w d="true" e="42"
"#,
        );
        let vars = &inventory.host("h1").expect("host").vars;
        assert_eq!(vars["a"], json!("single \"q\""));
        assert_eq!(vars["b"], json!("double \"q\" \\ \\n"));
        assert_eq!(vars["c"], json!("xy zw"));
        assert_eq!(vars["d"], json!("true"));
        assert_eq!(vars["e"], json!("42"));
    }

    #[test]
    fn ini_vars_before_group_definition_and_bom() {
        let inventory = ini("\u{feff}[late:vars]\nx=1\n\n[late]\nh1\n");
        assert_eq!(inventory.host("h1").expect("host").vars["x"], json!(1));
    }

    #[test]
    fn ini_children_defines_the_child_group() {
        let inventory = ini("[parent:children]\nkid\n\n[kid:vars]\nx=1\n[kid]\nh1\n");
        let host = inventory.host("h1").expect("host");
        assert_eq!(host.groups, ["all", "parent", "kid"]);
        assert_eq!(host.vars["x"], json!(1));
        assert!(ini("[parent:children]\nkid\n\n[kid:vars]\nx=1\n")
            .hosts()
            .next()
            .is_none());
    }

    #[test]
    fn ini_host_in_a_group_leaves_ungrouped() {
        let inventory = ini("h1\n[ungrouped:vars]\nu=1\n[web]\nh1\nh2\n[all]\nh3\n");
        let h1 = inventory.host("h1").expect("host");
        assert_eq!(h1.groups, ["all", "web"]);
        assert!(!h1.vars.contains_key("u"));
        let h3 = inventory.host("h3").expect("host");
        assert_eq!(h3.groups, ["all", "ungrouped"]);
        assert_eq!(h3.vars["u"], json!(1));
    }

    #[test]
    fn ini_errors_name_file_and_line() {
        assert_eq!(
            ini_err("[web\nh1\n"),
            "hosts.ini:1: malformed section header `[web`: expected [group], [group:vars] or \
             [group:children]"
        );
        assert_eq!(
            ini_err("h0\n\n[web:hosts]\nh1\n"),
            "hosts.ini:3: unknown section type `hosts` in `[web:hosts]`: expected vars or children"
        );
        assert_eq!(
            ini_err("[web]\nh1 role\n"),
            "hosts.ini:2: expected key=value after the host name, found `role`"
        );
        assert_eq!(
            ini_err("[web]\nh1 motd=\"unfinished\n"),
            "hosts.ini:2: unterminated quote"
        );
        assert_eq!(
            ini_err("[web]\nh1\n[web:vars]\njust_a_word\n"),
            "hosts.ini:4: expected key=value in [web:vars], found `just_a_word`"
        );
        assert_eq!(
            ini_err("[web]\nh1\n[all:children]\nweb db\n"),
            "hosts.ini:4: expected a single group name in [all:children], found `web db`"
        );
        assert_eq!(
            ini_err("[web]\nweb/1\n"),
            "hosts.ini:2: invalid host name \"web/1\": only letters, digits, '.', '-' and '_' \
             are allowed"
        );
        assert_eq!(
            ini_err("[web servers]\n"),
            "hosts.ini:1: invalid group name \"web servers\": only letters, digits, '.', '-' \
             and '_' are allowed"
        );
        assert_eq!(
            ini_err("[web]\nh1:99999\n"),
            "hosts.ini:2: invalid port in \"h1:99999\": expected an integer from 1 to 65535"
        );
        assert_eq!(
            ini_err("[web]\nh1\n\n[wbe:vars]\nx=1\n"),
            "hosts.ini:4: [wbe:vars] is for group wbe, which this inventory never defines"
        );
    }

    #[test]
    fn range_errors() {
        let message = |pattern: &str| expand_hosts(pattern).expect_err(pattern).to_string();
        assert_eq!(
            message("web[1:3"),
            "invalid host range in \"web[1:3\": missing `]`"
        );
        assert_eq!(
            message("web[01:3]"),
            "invalid host range in \"web[01:3]\": a zero-padded range needs start and end of \
             the same width"
        );
        assert_eq!(
            message("web[a:3]"),
            "invalid host range in \"web[a:3]\": bounds must be two integers or two letters of \
             the same case"
        );
        assert_eq!(
            message("web[1]"),
            "invalid host range in \"web[1]\": expected [start:end] or [start:end:step]"
        );
        assert_eq!(
            message("web[1:3:0]"),
            "invalid host range in \"web[1:3:0]\": the step must be a positive integer"
        );
        assert_eq!(
            message("web[0:99999999]"),
            "invalid host range in \"web[0:99999999]\": expands to too many hosts"
        );
        assert_eq!(
            message("a[0:999]b[0:999]"),
            "invalid host range in \"a[0:999]b[0:999]\": expands to too many hosts"
        );
        assert_eq!(
            message("web[0:99999999999999999999999]"),
            "invalid host range in \"web[0:99999999999999999999999]\": range bounds are too large"
        );
    }

    #[test]
    fn huge_range_bounds_do_not_overflow() {
        let pattern = format!("h[0:{}]", u64::MAX);
        assert!(matches!(
            expand_hosts(&pattern),
            Err(NameError::Range {
                reason: "expands to too many hosts",
                ..
            })
        ));
        assert_eq!(
            expand_hosts(&format!("h[{}:{}]", u64::MAX, u64::MAX)).expect("one host"),
            [format!("h{}", u64::MAX)]
        );
    }

    #[test]
    fn deeply_nested_yaml_is_an_error_not_a_crash() {
        use std::fmt::Write as _;
        let mut text = String::new();
        for depth in 0..300 {
            let indent = "  ".repeat(depth * 2);
            writeln!(text, "{indent}g{depth}:\n{indent}  children:").expect("write to String");
        }
        let error = Inventory::parse_yaml(&text, Path::new("deep.yml")).expect_err("too deep");
        assert!(matches!(error, InventoryError::Yaml { .. }), "{error}");
        assert!(
            error.to_string().contains("recursion limit exceeded"),
            "{error}"
        );
    }

    #[test]
    fn ranges_combine_and_default_their_start() {
        assert_eq!(
            expand_hosts("r[1:2]-[a:b]").expect("valid"),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
        assert_eq!(expand_hosts("n[:2]").expect("valid"), ["n0", "n1", "n2"]);
        assert_eq!(expand_hosts("[A:C]x").expect("valid"), ["Ax", "Bx", "Cx"]);
        assert_eq!(expand_hosts("v[a:e:2]").expect("valid"), ["va", "vc", "ve"]);
    }

    #[test]
    fn host_list_with_ports() {
        let inventory = Inventory::from_host_list("web1, web2:2222,db[1:2]:2200,").expect("valid");
        assert_eq!(all_names(&inventory), ["web1", "web2", "db1", "db2"]);
        let port = |name: &str| {
            target(inventory.host(name).expect("host"))
                .expect("target")
                .port
        };
        assert_eq!(port("web1"), 22);
        assert_eq!(port("web2"), 2222);
        assert_eq!(port("db2"), 2200);
        assert_eq!(
            inventory.host("web1").expect("host").groups,
            ["all", "ungrouped"]
        );
        assert!(Inventory::from_host_list(",")
            .expect("valid")
            .hosts()
            .next()
            .is_none());
    }

    #[test]
    fn host_list_errors() {
        let message = |list: &str| Inventory::from_host_list(list).expect_err(list).to_string();
        assert_eq!(
            message("web1,web2:ssh"),
            "invalid host list `web1,web2:ssh`: invalid port in \"web2:ssh\": expected an \
             integer from 1 to 65535"
        );
        assert_eq!(
            message("web1,web2:0"),
            "invalid host list `web1,web2:0`: invalid port in \"web2:0\": expected an integer \
             from 1 to 65535"
        );
        assert_eq!(
            message("user@web1,"),
            "invalid host list `user@web1,`: invalid host name \"user@web1\": only letters, \
             digits, '.', '-' and '_' are allowed"
        );
    }

    const PATTERNS: &str = "
all:
  hosts:
    lone:
  children:
    app:
      hosts: {app1: , app2: , app3: }
    db:
      hosts: {db1: , db2: }
    staging:
      hosts: {app2: , db2: }
    web:
      hosts: {web1: , web2: , web10: }
";

    fn select(pattern: &str) -> Vec<String> {
        names(&yaml(PATTERNS).select(pattern))
    }

    #[test]
    fn pattern_all_and_star() {
        let everyone = [
            "lone", "app1", "app2", "app3", "db1", "db2", "web1", "web2", "web10",
        ];
        assert_eq!(select("all"), everyone);
        assert_eq!(select("*"), everyone);
    }

    #[test]
    fn pattern_names() {
        assert_eq!(select("app"), ["app1", "app2", "app3"]);
        assert_eq!(select("db1"), ["db1"]);
        assert_eq!(select("ungrouped"), ["lone"]);
        assert_eq!(select("nothing"), Vec::<String>::new());
        assert_eq!(select("App"), Vec::<String>::new());
    }

    #[test]
    fn pattern_globs() {
        assert_eq!(select("web*"), ["web1", "web2", "web10"]);
        assert_eq!(select("web?"), ["web1", "web2"]);
        assert_eq!(select("*1"), ["app1", "db1", "web1"]);
        assert_eq!(select("st*ing"), ["app2", "db2"]);
        assert_eq!(select("*a*p*"), ["app1", "app2", "app3"]);
        assert_eq!(select("w?b*0"), ["web10"]);
    }

    #[test]
    fn pattern_union_keeps_inventory_order_without_duplicates() {
        assert_eq!(select("db:app"), ["app1", "app2", "app3", "db1", "db2"]);
        assert_eq!(select("staging,app"), ["app1", "app2", "app3", "db2"]);
        assert_eq!(select("db1 , db1:db"), ["db1", "db2"]);
    }

    #[test]
    fn pattern_exclusion() {
        assert_eq!(select("app:!app3"), ["app1", "app2"]);
        assert_eq!(select("app:!staging"), ["app1", "app3"]);
        assert_eq!(select("!app3:app"), ["app1", "app2"]);
        assert_eq!(
            select("!web*"),
            ["lone", "app1", "app2", "app3", "db1", "db2"]
        );
    }

    #[test]
    fn pattern_intersection() {
        assert_eq!(select("app:&staging"), ["app2"]);
        assert_eq!(select("app:db:&staging"), ["app2", "db2"]);
        assert_eq!(select("&staging"), ["app2", "db2"]);
        assert_eq!(select("app:db:&staging:!db2"), ["app2"]);
        assert_eq!(select("web:&staging"), Vec::<String>::new());
    }

    #[test]
    fn pattern_without_terms_matches_nothing() {
        assert_eq!(select(""), Vec::<String>::new());
        assert_eq!(select(" : , "), Vec::<String>::new());
        assert_eq!(select("!:&"), Vec::<String>::new());
    }

    #[test]
    fn glob_matching() {
        assert!(crate::glob::matches("*", ""));
        assert!(crate::glob::matches("a*b*c", "aXbYbZc"));
        assert!(crate::glob::matches("**x", "x"));
        assert!(!crate::glob::matches("a*b", "acbd"));
        assert!(!crate::glob::matches("?", ""));
        assert!(crate::glob::matches("?é", "xé"));
    }

    #[test]
    fn limit_narrows_the_inventory() {
        let mut inventory = yaml(PATTERNS);
        inventory.limit("app:db:!db1").expect("matches");
        assert_eq!(all_names(&inventory), ["app1", "app2", "app3", "db2"]);
        assert_eq!(
            names(&inventory.select("all")),
            ["app1", "app2", "app3", "db2"]
        );
        assert_eq!(names(&inventory.select("staging")), ["app2", "db2"]);
        inventory.limit("web*:app1").expect("matches");
        assert_eq!(all_names(&inventory), ["app1"]);
    }

    #[test]
    fn limit_matching_nothing_is_an_error() {
        let mut inventory = yaml(PATTERNS);
        let error = inventory.limit("web:&db").expect_err("no match");
        assert!(
            matches!(&error, InventoryError::NoHostsMatched { pattern } if pattern == "web:&db")
        );
        assert_eq!(
            error.to_string(),
            "no inventory host matches --limit `web:&db`"
        );
        // The inventory is untouched.
        assert_eq!(inventory.hosts().count(), 9);
        assert!(inventory.limit("").is_err());
    }

    fn host_with(vars: Value) -> InventoryHost {
        let Value::Object(map) = vars else {
            panic!("vars must be an object");
        };
        InventoryHost {
            name: "web1".into(),
            groups: vec!["all".into()],
            vars: map.into_iter().collect(),
        }
    }

    #[test]
    fn target_reads_canonical_settings() {
        let host = host_with(json!({
            "host": "10.0.0.5",
            "port": "2222",
            "user": "deploy",
            "identity_file": "~/.ssh/deploy",
            "connection": "ssh",
            "host_key_checking": "accept-new",
        }));
        assert_eq!(
            target(&host).expect("valid"),
            Target {
                name: "web1".into(),
                address: "10.0.0.5".into(),
                port: 2222,
                user: "deploy".into(),
                identity_file: Some(PathBuf::from("/home/alice/.ssh/deploy")),
                connection: Connection::Ssh,
                host_key_checking: HostKeyChecking::AcceptNew,
                ssh: SshOptions {
                    explicit: Explicit {
                        port: true,
                        user: true,
                        host_key_checking: true
                    },
                    ..SshOptions::default()
                },
            }
        );
    }

    #[test]
    fn target_reads_ansible_aliases() {
        let host = host_with(json!({
            "ansible_host": "web1.example.com",
            "ansible_port": 2022,
            "ansible_user": "ops",
            "ansible_ssh_private_key_file": "/keys/id",
            "ansible_connection": "local",
            "host_key_checking": "off",
        }));
        assert_eq!(
            target(&host).expect("valid"),
            Target {
                name: "web1".into(),
                address: "web1.example.com".into(),
                port: 2022,
                user: "ops".into(),
                identity_file: Some(PathBuf::from("/keys/id")),
                connection: Connection::Local,
                host_key_checking: HostKeyChecking::Off,
                ssh: SshOptions {
                    explicit: Explicit {
                        port: true,
                        user: true,
                        host_key_checking: true
                    },
                    ..SshOptions::default()
                },
            }
        );
    }

    #[test]
    fn target_null_is_unset() {
        let host = host_with(json!({"port": null, "user": null}));
        let target = target(&host).expect("valid");
        assert_eq!((target.port, target.user.as_str()), (22, "alice"));
        assert_eq!(target.ssh.explicit, Explicit::default());
    }

    #[test]
    fn localhost_still_uses_ssh_unless_told() {
        let inventory = ini("localhost\nlocal2 connection=local\n");
        let ssh = target(inventory.host("localhost").expect("host")).expect("valid");
        assert_eq!(
            (ssh.connection, ssh.address.as_str()),
            (Connection::Ssh, "localhost")
        );
        let local = target(inventory.host("local2").expect("host")).expect("valid");
        assert_eq!(local.connection, Connection::Local);
    }

    #[test]
    fn alias_and_canonical_spellings_override_each_other_by_precedence() {
        let inventory = yaml(
            "
all:
  vars:
    port: 1000
    ansible_user: group-user
  children:
    web:
      vars:
        ansible_port: 2000
      hosts:
        w1:
          user: host-user
        w2:
          port: 3000
          ansible_port: 3001
",
        );
        let w1 = target(inventory.host("w1").expect("host")).expect("valid");
        assert_eq!((w1.port, w1.user.as_str()), (2000, "host-user"));
        assert!(!inventory
            .host("w1")
            .expect("host")
            .vars
            .contains_key("port"));
        // Within one level the later spelling wins.
        let w2 = target(inventory.host("w2").expect("host")).expect("valid");
        assert_eq!(w2.port, 3001);
    }

    #[test]
    fn tilde_expansion() {
        let home = Some(Path::new("/home/u"));
        assert_eq!(expand_tilde("~", home), PathBuf::from("/home/u"));
        assert_eq!(expand_tilde("~/k", home), PathBuf::from("/home/u/k"));
        assert_eq!(expand_tilde("~bob/k", home), PathBuf::from("~bob/k"));
        assert_eq!(expand_tilde("k~", home), PathBuf::from("k~"));
        assert_eq!(expand_tilde("~/k", None), PathBuf::from("~/k"));
    }

    #[test]
    fn invalid_settings_name_host_variable_and_allowed_values() {
        let message = |vars: Value| target(&host_with(vars)).expect_err("invalid").to_string();
        assert_eq!(
            message(json!({"port": "abc"})),
            "host web1: invalid port \"abc\": expected an integer from 1 to 65535"
        );
        assert_eq!(
            message(json!({"ansible_port": 70000})),
            "host web1: invalid ansible_port 70000: expected an integer from 1 to 65535"
        );
        assert_eq!(
            message(json!({"port": 0})),
            "host web1: invalid port 0: expected an integer from 1 to 65535"
        );
        assert_eq!(
            message(json!({"port": 22.5})),
            "host web1: invalid port 22.5: expected an integer from 1 to 65535"
        );
        assert_eq!(
            message(json!({"host_key_checking": "maybe"})),
            "host web1: invalid host_key_checking \"maybe\": expected one of strict, \
             accept-new, off"
        );
        assert_eq!(
            message(json!({"host_key_checking": false})),
            "host web1: invalid host_key_checking false: expected one of strict, accept-new, off"
        );
        assert_eq!(
            message(json!({"connection": "winrm"})),
            "host web1: invalid connection \"winrm\": expected one of ssh, local"
        );
        assert_eq!(
            message(json!({"ansible_connection": "paramiko"})),
            "host web1: invalid ansible_connection \"paramiko\": expected one of ssh, local"
        );
        assert_eq!(
            message(json!({"user": ["a"]})),
            "host web1: invalid user [\"a\"]: expected a non-empty string"
        );
        assert_eq!(
            message(json!({"ansible_host": ""})),
            "host web1: invalid ansible_host \"\": expected a non-empty string"
        );
        assert_eq!(
            message(json!({"identity_file": true})),
            "host web1: invalid identity_file true: expected a non-empty string"
        );
    }

    #[test]
    fn target_errors_through_a_yaml_inventory() {
        let inventory = yaml("all:\n  hosts:\n    db1:\n      port: abc\n");
        let error = inventory
            .host("db1")
            .expect("host")
            .target()
            .expect_err("invalid port");
        assert!(matches!(
            &error,
            InventoryError::InvalidVar { host, var, .. } if host == "db1" && var == "port"
        ));
    }

    #[test]
    fn target_defaults_come_from_the_environment() {
        let target = Inventory::from_host_list("h1,")
            .expect("valid")
            .host("h1")
            .expect("host")
            .target()
            .expect("valid");
        let expected = std::env::var("USER")
            .ok()
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "root".into());
        assert_eq!(target.user, expected);
    }

    #[test]
    fn unknown_variables_are_kept() {
        let inventory = ini("h1 app_version=1.2.3 ansible_become=true\n");
        let vars = &inventory.host("h1").expect("host").vars;
        assert_eq!(vars["app_version"], json!("1.2.3"));
        assert_eq!(vars["ansible_become"], json!(true));
        assert!(target(inventory.host("h1").expect("host")).is_ok());
    }

    #[test]
    fn format_detection() {
        let yaml_file = |name: &str, text: &str| is_yaml(Path::new(name), text);
        assert!(yaml_file("hosts.yml", "[web]\n"));
        assert!(yaml_file("hosts.YAML", ""));
        assert!(yaml_file("hosts.json", "{\"all\": {}}"));
        assert!(yaml_file("inventory", "# c\n\nall:\n  hosts:\n"));
        assert!(yaml_file("inventory", "---\nall:\n"));
        assert!(yaml_file("inventory", "{\n\"all\": {}}\n"));
        assert!(yaml_file("inventory", "all: {hosts: {h: }}\n"));
        assert!(!yaml_file("inventory", "; c\n[web]\nh1\n"));
        assert!(!yaml_file("inventory", "h1\n"));
        assert!(!yaml_file("inventory", "h1:2222 user=x\n"));
        assert!(!yaml_file("inventory", "h1 ansible_host=10.0.0.1\n"));
        assert!(!yaml_file("inventory", "h1 motd=\"note: hi\"\n"));
        assert!(!yaml_file("inventory.ini", ""));
    }

    #[test]
    fn load_from_files_host_lists_and_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let playbook_dir = dir.path();

        let error = Inventory::load(None, playbook_dir).expect_err("no inventory");
        assert_eq!(
            error.to_string(),
            format!(
                "no inventory: pass -i, or create inventory.yml or inventory in {}",
                playbook_dir.display()
            )
        );
        assert_eq!(
            InventoryError::NoDefault {
                dir: PathBuf::new()
            }
            .to_string(),
            "no inventory: pass -i, or create inventory.yml or inventory in ."
        );

        std::fs::write(playbook_dir.join("inventory"), "[web]\nini1\n").expect("write");
        let inventory = Inventory::load(None, playbook_dir).expect("INI default");
        assert_eq!(all_names(&inventory), ["ini1"]);

        std::fs::write(
            playbook_dir.join("inventory.yml"),
            "web:\n  hosts:\n    yml1:\n",
        )
        .expect("write");
        let inventory = Inventory::load(None, playbook_dir).expect("YAML default");
        assert_eq!(all_names(&inventory), ["yml1"]);

        let explicit = playbook_dir.join("other");
        std::fs::write(&explicit, "all:\n  hosts:\n    o1:\n").expect("write");
        let spec = explicit.to_str().expect("UTF-8 path");
        let inventory = Inventory::load(Some(spec), Path::new("/nonexistent")).expect("file");
        assert_eq!(all_names(&inventory), ["o1"]);

        let inventory = Inventory::load(Some("a1,a2:2022"), playbook_dir).expect("host list");
        assert_eq!(all_names(&inventory), ["a1", "a2"]);

        let missing = playbook_dir.join("missing");
        let spec = missing.to_str().expect("UTF-8 path");
        assert_eq!(
            Inventory::load(Some(spec), playbook_dir)
                .expect_err("missing")
                .to_string(),
            format!(
                "inventory {spec} does not exist (to target a single host, write `-i {spec},` \
                 with a trailing comma)"
            )
        );

        // A directory is every inventory file in it, in name order.
        let inventory = Inventory::load(Some(playbook_dir.to_str().expect("UTF-8")), playbook_dir)
            .expect("a directory");
        assert_eq!(all_names(&inventory), ["ini1", "yml1", "o1"]);

        let bad = playbook_dir.join("bad.yaml");
        std::fs::write(&bad, "all:\n  hostz:\n").expect("write");
        assert_eq!(
            Inventory::from_file(&bad).expect_err("bad").to_string(),
            format!(
                "{}:2:3: all: unknown field `hostz`, expected one of `hosts`, `vars`, `children`",
                bad.display()
            )
        );
    }

    /// Writes `files` (path relative to `dir`, content) into `dir`.
    fn write_tree(dir: &Path, files: &[(&str, &str)]) {
        for (path, content) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
    }

    const PRODUCTION: &str = "\
# production, as an Ansible user keeps it
bastion ansible_host=203.0.113.10

[web]
web[01:03]

[db]
db1 ansible_host=10.0.0.9 role=ini-host

[prod:children]
web
db

[web:vars]
tier=web-ini
color=ini

[prod:vars]
env=prod-ini
ntp=ini

[all:vars]
color=all-ini
ansible_user=deploy
";

    #[test]
    fn group_and_host_vars_directories_follow_ansible_precedence() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_tree(
            dir.path(),
            &[
                ("production", PRODUCTION),
                (
                    "group_vars/all.yml",
                    "color: all-dir\nntp: all-dir\nenv: all-dir\n",
                ),
                ("group_vars/prod/10-main.yml", "env: prod-dir\n"),
                ("group_vars/prod/20-more.yaml", "ntp: prod-dir\n"),
                ("group_vars/prod/notes.md", "not: [vars"),
                ("group_vars/prod/.hidden.yml", "env: hidden\n"),
                ("group_vars/prod/old.yml~", "env: backup\n"),
                ("group_vars/web", "---\ntier: web-dir\n"),
                ("group_vars/staging.yml", "env: staging\n"),
                (
                    "host_vars/web02.yml",
                    "tier: host-dir\nansible_port: 2202\n",
                ),
                ("host_vars/db1.json", "{\"role\": \"dir-host\"}"),
                ("host_vars/bastion.yml", ""),
            ],
        );
        let inventory = Inventory::from_file(&dir.path().join("production")).expect("valid");
        assert_eq!(
            all_names(&inventory),
            ["bastion", "web01", "web02", "web03", "db1"]
        );
        let vars = |host: &str| inventory.host(host).expect("host").vars.clone();
        let web01 = vars("web01");
        // group_vars/ outrank every group variable written in the inventory file,
        // group_vars/all included: Ansible's order, surprising as it is.
        assert_eq!(web01["color"], json!("all-dir"));
        assert_eq!(web01["tier"], json!("web-dir"));
        assert_eq!(web01["env"], json!("prod-dir"));
        assert_eq!(web01["ntp"], json!("prod-dir"));
        assert_eq!(web01["ansible_user"], json!("deploy"));
        let web02 = vars("web02");
        assert_eq!(web02["tier"], json!("host-dir"));
        let target = inventory
            .host("web02")
            .expect("host")
            .target()
            .expect("valid");
        assert_eq!((target.port, target.user.as_str()), (2202, "deploy"));
        // host_vars/ outrank the inventory file's host variables.
        assert_eq!(vars("db1")["role"], json!("dir-host"));
        assert_eq!(vars("db1")["env"], json!("prod-dir"));
        // A group defined nowhere in the inventory is never applied.
        assert!(inventory
            .hosts()
            .all(|host| host.vars["env"] != json!("staging")));
        assert_eq!(vars("bastion")["env"], json!("all-dir"));
    }

    #[test]
    fn vars_files_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_tree(
            dir.path(),
            &[
                ("hosts", "[web]\nweb1\n"),
                ("group_vars/web.yml", "- a\n- b\n"),
            ],
        );
        let error = Inventory::from_file(&dir.path().join("hosts"))
            .expect_err("a list is not variables")
            .to_string();
        let file = dir.path().join("group_vars/web.yml");
        assert_eq!(
            error,
            format!(
                "{}:1:1: invalid type: sequence, expected a map",
                file.display()
            )
        );
        write_tree(
            dir.path(),
            &[("group_vars/web.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n")],
        );
        let error = Inventory::from_file(&dir.path().join("hosts"))
            .expect_err("vault")
            .to_string();
        assert_eq!(
            error,
            format!(
                "{}: the file is encrypted with ansible-vault, which converge cannot read",
                file.display()
            )
        );
    }

    #[test]
    fn inventory_directories_read_every_source_and_their_vars() {
        let dir = tempfile::tempdir().expect("temp dir");
        write_tree(
            dir.path(),
            &[
                ("inventory/01-hosts", "[app]\napp[1:2]\n"),
                ("inventory/02-more.yml", "app:\n  hosts:\n    app3:\n"),
                ("inventory/03-vars", "[app:vars]\nport=2222\n"),
                ("inventory/README.md", "# not an inventory [at all"),
                ("inventory/ansible.ini", "[ignored]\nnope\n"),
                ("inventory/group_vars/app.yml", "user: ops\n"),
            ],
        );
        let inventory = Inventory::load(None, dir.path()).expect("default directory");
        assert_eq!(all_names(&inventory), ["app1", "app2", "app3"]);
        let target = inventory
            .host("app3")
            .expect("host")
            .target()
            .expect("valid");
        assert_eq!((target.port, target.user.as_str()), (2222, "ops"));
    }
}
