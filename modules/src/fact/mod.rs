//! Facts: typed, read-only knowledge about a host, each read by a shell probe and
//! parsed by a pure function.
//!
//! A [`FactKey`] names one fact (`Path("/etc/x")`, `Unit(..)`, `User("deploy")`...). Its
//! [`probe`](FactKey::probe) is a POSIX `sh` snippet whose output [`parse`] turns into a
//! [`Fact`]. Many probes are joined by [`batch_script`] into one remote command whose
//! output [`split_batch`] cuts apart again, so reading every fact a play needs costs one
//! round trip. The [`FactStore`] holds what is known about one host.
//!
//! The keys and values are listed here, in one place, so the store and the batch can
//! hold any of them; what each one means (its types, probe and parser) lives with its
//! domain (`paths`, `accounts`, `systemd`, `sudo`, `commands`), and every arm below
//! only hands over to it.

mod batch;
mod store;
mod system;

use std::fmt;

use serde::Serialize;

use crate::{accounts, commands, links, paths, sudo, systemd};

pub use crate::accounts::facts::{GroupInfo, UserInfo};
pub use crate::paths::facts::{PathKind, PathState, CONTENT_LIMIT};
pub use crate::systemd::facts::{is_template, Manager, ManagerState, UnitRef, UnitState};
pub use batch::{batch_script, split_batch};
pub use store::{FactStore, FactUnavailable, Touch};
pub use system::{Sudo, SystemInfo};

/// The name of one fact about a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FactKey {
    /// Host name and operating system.
    System,
    /// Type, owner, group and mode of a path (not following symlinks).
    Path(String),
    /// Bytes of a regular file.
    Content(String),
    /// A user account.
    User(String),
    /// A group.
    Group(String),
    /// Load, active and enablement state of a unit.
    Unit(UnitRef),
    /// Whether logind lingering is on for a user.
    Linger(String),
    /// Exit status of a shell command run for its answer (e.g. `command`'s `unless`).
    Probe(String),
    /// The first of these commands sudo would refuse to run for `user` as `runas`
    /// (`sudo -l -U USER -u RUNAS`).
    SudoRefused {
        user: String,
        runas: String,
        commands: Vec<String>,
    },
    /// `systemd-analyze verify` of a unit file before it is installed.
    UnitVerify(crate::systemd::unit_lint::Candidate),
    /// Where a symbolic link points.
    Link(String),
}

impl fmt::Display for FactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactKey::System => f.write_str("system"),
            FactKey::Path(path) => write!(f, "path {path}"),
            FactKey::Content(path) => write!(f, "content of {path}"),
            FactKey::User(name) => write!(f, "user {name}"),
            FactKey::Group(name) => write!(f, "group {name}"),
            FactKey::Unit(unit) => write!(f, "unit {unit}"),
            FactKey::Linger(user) => write!(f, "linger for {user}"),
            FactKey::Probe(command) => write!(f, "result of `{command}`"),
            FactKey::UnitVerify(candidate) => write!(f, "{candidate}"),
            FactKey::Link(path) => write!(f, "link {path}"),
            FactKey::SudoRefused {
                user,
                runas,
                commands,
            } => {
                write!(
                    f,
                    "sudo rules for {user} as {runas} ({} commands)",
                    commands.len()
                )
            }
        }
    }
}

/// The value of one fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Fact {
    System(SystemInfo),
    Path(PathState),
    /// `None` when the path is not a regular file.
    Content(Option<Vec<u8>>),
    User(Option<UserInfo>),
    Group(Option<GroupInfo>),
    Unit(UnitState),
    Linger(bool),
    Probe(i32),
    /// `None`: sudo allows every command.
    SudoRefused(Option<String>),
    UnitVerify(crate::systemd::unit_lint::Verdict),
    /// `None` when the path is not a symbolic link.
    Link(Option<String>),
    /// converge must not read or act on this: the reason says why (a symbolic link or
    /// an unsafe ownership transition on the way, a file too large to read).
    Refused(String),
}

/// A probe's output could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    #[error("cannot read {key}: unexpected output {output:?}")]
    Unparsable { key: String, output: String },
    #[error("the fact-reading command was cut off before {key} (output ended early)")]
    Truncated { key: String },
}

fn unparsable(key: &FactKey, output: &str) -> FactError {
    FactError::Unparsable {
        key: key.to_string(),
        // A file's content may be a `no_log` secret: it is never quoted.
        output: if matches!(key, FactKey::Content(_)) {
            "(file content not shown)".to_owned()
        } else {
            output.chars().take(300).collect()
        },
    }
}

impl FactKey {
    /// The path this fact is about, if it is about one: forgotten with everything below
    /// a path a change removed or created, and named when reading it was refused.
    pub fn path(&self) -> Option<&str> {
        match self {
            FactKey::Path(path) | FactKey::Content(path) | FactKey::Link(path) => Some(path),
            _ => None,
        }
    }

    /// The `sh` snippet that prints this fact for [`parse`].
    pub fn probe(&self) -> String {
        match self {
            FactKey::System => system::SYSTEM_PROBE.to_owned(),
            FactKey::Path(path) => paths::facts::path_probe(path),
            FactKey::Content(path) => paths::facts::content_probe(path),
            FactKey::User(name) => accounts::facts::user_probe(name),
            FactKey::Group(name) => accounts::facts::group_probe(name),
            FactKey::Unit(unit) => systemd::facts::unit_probe(unit),
            FactKey::Linger(user) => systemd::facts::linger_probe(user),
            FactKey::Probe(command) => commands::facts::probe(command),
            FactKey::UnitVerify(candidate) => systemd::unit_lint::probe(candidate),
            FactKey::Link(path) => links::facts::probe(path),
            FactKey::SudoRefused {
                user,
                runas,
                commands,
            } => sudo::facts::refused_probe(user, runas, commands),
        }
    }
}

/// Parses a probe's output into the fact it describes.
pub fn parse(key: &FactKey, output: &str) -> Result<Fact, FactError> {
    let fact = match key {
        FactKey::System => system::parse_system(output).map(Fact::System),
        FactKey::Path(path) => paths::facts::parse_path_with_ancestors(path, output),
        FactKey::Content(path) => paths::facts::parse_content(path, output),
        FactKey::User(_) => accounts::facts::parse_user(output),
        FactKey::Group(_) => accounts::facts::parse_group(output),
        FactKey::Unit(unit) => systemd::facts::parse_unit(&unit.manager, output).map(Fact::Unit),
        FactKey::Linger(_) => systemd::facts::parse_linger(output),
        FactKey::Probe(_) => commands::facts::parse(output),
        FactKey::UnitVerify(candidate) => {
            systemd::unit_lint::parse(candidate, output).map(Fact::UnitVerify)
        }
        FactKey::SudoRefused { .. } => sudo::facts::parse_refused(output),
        FactKey::Link(path) => links::facts::parse(path, output),
    };
    fact.ok_or_else(|| unparsable(key, output))
}

#[cfg(test)]
mod tests;
