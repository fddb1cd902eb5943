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
//!
//! # Layout
//!
//! This file holds the load API and the shared names; [`patterns`] selects hosts,
//! [`target`] turns a host's variables into connection settings, [`files`] reads files and
//! inventory directories with their `group_vars/` and `host_vars/`, [`builder`] resolves
//! the group graph, [`names`] checks names and expands host ranges, and [`yaml`] and
//! [`ini`] read the two file formats.

mod builder;
mod files;
mod ini;
mod names;
mod patterns;
mod tagged;
mod target;
#[cfg(test)]
mod tests;
mod yaml;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use builder::Builder;
use files::{read_directory, read_source, read_vars_dirs};
use names::parse_host_spec;

use tagged::Level;
pub use tagged::Templates;
pub(crate) use target::expand_tilde;

/// Variables by name, in the order they were written.
pub type Vars = IndexMap<String, serde_json::Value>;

const ALL: &str = "all";
const UNGROUPED: &str = "ungrouped";

/// Inventory files tried beside the playbook when no `-i` is given, in order.
pub const DEFAULT_FILES: [&str; 2] = ["inventory.yml", "inventory"];

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
    /// Which of `vars` are templates (tagged `!template` where they were set last), with
    /// the file each is written in; all the others are data.
    pub templates: Templates,
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
                builder.add_host(UNGROUPED, &name, &Level::data(vars.clone()));
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
        yaml::read_yaml(&mut builder, text, origin)?;
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
        ini::read_ini(&mut builder, text, origin)?;
        builder
            .finish()
            .map_err(|cycle| InventoryError::GroupCycle {
                file: origin.to_path_buf(),
                cycle,
            })
    }
}
