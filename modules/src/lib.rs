//! converge's modules: what each playbook module means, independent of how a host is
//! reached.
//!
//! Every module works in three steps kept apart:
//! 1. [`Module::facts`] names the [facts](fact) its plan needs; the engine reads them
//!    (batched into one remote command) into a [`FactStore`].
//! 2. [`Module::plan`] is a pure function from the desired state (the module's
//!    parameters) and the facts to a [`Plan`]: a list of [`Change`]s. An empty plan
//!    means the host is already as desired.
//! 3. Each [`Change`] renders to one [`Cmd`]; the engine runs it, or in check mode only
//!    records its predicted effect, so check mode and apply can never disagree.
//!
//! This crate never talks to a host: it has no transport, only data in and data out.

#[macro_use]
mod registry;

pub mod change;
pub mod fact;
pub mod names;
pub mod sequence;
pub mod shell;

// One folder per domain: its facts, its changes and its modules together. Its line in
// `registry!` (see `registry.rs`) gives it one variant in `FactKey`, `Fact` and `Change`
// and lists its modules in `MODULE_NAMES` and `deserialize_params`, in this order. (The
// `pub mod` stays a plain item, outside the macro, so that rustfmt reaches the folder.)
pub mod accounts;
pub mod commands;
pub mod links;
pub mod packages;
pub mod paths;
pub mod sudo;
pub mod systemd;
pub mod waits;

registry! {
    Paths(paths) => [file::File, directory::Directory, copy::Copy, lineinfile::LineInFile, blockinfile::BlockInFile],
    Accounts(accounts) => [user::User, group::Group],
    Systemd(systemd) => [systemd_unit::SystemdUnit, systemd_dropin::SystemdDropin, service::Service, linger::Linger],
    Sudo(sudo) => [sudoers::Sudoers],
    Commands(commands) => [command::Command],
    Links(links) => [link::Link],
    Packages(packages) => [package::Package],
    Waits(waits) => [wait_for::WaitFor],
}

// The modules and helpers by their short names, as the rest of converge knows them.
pub use accounts::{group, user};
pub use commands::command;
pub use paths::{blockinfile, directory, file, lineinfile, safe_path};
pub use sudo::sudoers;
pub use systemd::{linger, service, settle, systemd_dropin, systemd_unit, unit_lint};

use crate::accounts::AccountKey;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use change::Cmd;
pub use fact::{FactStore, FactUnavailable, MachineInfo, Sudo, SystemInfo};

/// What a module plans to do on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Things the user should know even when nothing changes.
    pub warnings: Vec<String>,
    /// What the module checked and found right (e.g. sudo rules verified).
    pub notes: Vec<String>,
}

impl Plan {
    /// A plan with these changes and no warnings.
    pub fn of(changes: Vec<Change>) -> Self {
        Plan {
            changes,
            ..Plan::default()
        }
    }
}

/// Parameters that are wrong whatever the host looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error(transparent)]
    Name(#[from] names::InvalidName),
    #[error("give exactly one of {options}")]
    OneOf { options: &'static str },
    #[error("give at most one of {options}")]
    AtMostOne { options: &'static str },
    #[error("`{param}` is required {when}")]
    Required {
        param: &'static str,
        when: &'static str,
    },
    #[error("`{param}` {reason}")]
    Invalid { param: &'static str, reason: String },
}

/// The host is in a state the module cannot converge from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Fact(#[from] FactUnavailable),
    #[error("{path} is a {kind}; expected a {expected}")]
    WrongKind {
        path: String,
        kind: fact::PathKind,
        expected: &'static str,
    },
    #[error("{path} does not exist and no content was given")]
    NoContent { path: String },
    #[error("{path} does not exist (create: true creates it, or create it in an earlier task)")]
    NoFile { path: String },
    #[error("the home directory {home} of {user} does not exist, so its authorized_keys cannot be written (create_home: true creates it with a new account)")]
    NoHome { user: String, home: String },
    #[error("user {user} does not exist{hint}")]
    NoSuchUser { user: String, hint: &'static str },
    #[error("group {group} does not exist{hint}")]
    NoSuchGroup { group: String, hint: &'static str },
    #[error("unit {unit} does not exist on the host{hint}")]
    NoSuchUnit { unit: String, hint: &'static str },
    #[error("{user}'s user manager is not running (no login session, and lingering is off), so {unit} cannot be managed; enable lingering for {user} with the linger module in an earlier task")]
    ManagerDown { user: String, unit: String },
    #[error("sudo refuses to let {user} run `{command}` although {file} is in place: another sudoers rule overrides it")]
    SudoRefuses {
        user: String,
        command: String,
        file: String,
    },
    #[error("{unit} cannot be enabled: it has no [Install] section (systemctl reports it static); start it from a unit that is enabled, or add WantedBy= to it")]
    NotInstallable { unit: String },
    #[error("{missing} is not installed on this host (neither sudo nor sudo-rs provides it): install sudo or sudo-rs before a sudoers task")]
    NoSudo { missing: &'static str },
    #[error("cannot {action} {unit}: it is masked")]
    Masked { unit: String, action: &'static str },
    #[error("apt is not on this host ({found}): the package module installs with apt, on Debian and Ubuntu")]
    NoApt { found: String },
    #[error("package {package} {reason}")]
    NoCandidate { package: String, reason: String },
    #[error("{program}, which the unit runs, does not exist on the host")]
    NoProgram { program: String },
    #[error("refusing the new {path}; the current file is kept:{problems}")]
    UnitRefused { path: String, problems: String },
}

/// A file's content: text written in a playbook, or any bytes the engine read from a
/// file beside it (`src`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content(pub Vec<u8>);

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_bytes(&self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl serde::de::Visitor<'_> for ContentVisitor {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Content, E> {
                Ok(Content(value.as_bytes().to_vec()))
            }
            fn visit_bytes<E: serde::de::Error>(self, value: &[u8]) -> Result<Content, E> {
                Ok(Content(value.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, value: Vec<u8>) -> Result<Content, E> {
                Ok(Content(value))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

impl PlanError {
    /// What the host lacks, when that is all that stops the plan: a unit, an account,
    /// a file, a program, as (what, name).
    fn missing(&self) -> Option<(&'static str, &str)> {
        match self {
            PlanError::NoSuchUnit { unit, .. } => Some(("unit", unit)),
            PlanError::NoSuchUser { user, .. } => Some(("user", user)),
            PlanError::NoSuchGroup { group, .. } => Some(("group", group)),
            PlanError::NoFile { path } => Some(("file", path)),
            PlanError::NoHome { home, .. } => Some(("home directory", home)),
            PlanError::NoSudo { missing } => Some(("program", missing)),
            PlanError::NoProgram { program } => Some(("program", program)),
            _ => None,
        }
    }

    /// In check mode, why this error is not a failure but a task pending on an earlier
    /// planned change whose whole effect cannot be predicted (see
    /// [`FactStore::unsettled`]): `depends on package redis-server, not yet installed:
    /// unit redis-server.service does not exist yet`. The changes whose name shares a
    /// word with what is missing are named (user `redis` and package `redis-server`,
    /// `/usr/bin/sidekiq` and `ruby-sidekiq`); when none does, all of them. `None` when the error is of another kind, or nothing planned
    /// could provide what is missing.
    pub fn pending_on(&self, facts: &FactStore) -> Option<String> {
        let (what, name) = self.missing()?;
        let unsettled = facts.unsettled();
        if unsettled.is_empty() {
            return None;
        }
        let missing = name_words(name);
        let related = |change: &&fact::Unsettled| {
            name_words(&change.name)
                .iter()
                .any(|word| missing.contains(word))
        };
        let mut named: Vec<&fact::Unsettled> = unsettled.iter().filter(related).collect();
        if named.is_empty() {
            named = unsettled.iter().collect();
        }
        let on = named
            .iter()
            .map(|change| format!("{} {}, {}", change.kind, change.name, change.state))
            .collect::<Vec<_>>()
            .join("; ");
        Some(format!("depends on {on}: {what} {name} does not exist yet"))
    }
}

/// The distinctive words of a name, to tell which planned change a missing thing may
/// come from: split on anything but letters and digits, short words and the words
/// every path or unit has left out.
fn name_words(name: &str) -> Vec<&str> {
    const COMMON: &[&str] = &[
        "bin", "conf", "etc", "lib", "local", "opt", "sbin", "service", "share", "socket", "srv",
        "timer", "usr", "var",
    ];
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| word.len() >= 3 && !COMMON.contains(word))
        .collect()
}

/// File permission bits, written in playbooks as an octal string (`"0644"`).
///
/// A YAML integer such as `644` or `0o644` is refused rather than guessed at (Ansible's
/// classic trap: YAML 1.1 reads `0644` as 420, YAML 1.2 as 644). An unquoted `0644`
/// reaches us as the string "0644" and is read as octal, which is what it looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        impl serde::de::Visitor<'_> for ModeVisitor {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quoted octal mode such as \"0644\"")
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Mode, E> {
                let digits = value.strip_prefix("0o").unwrap_or(value);
                let valid = (3..=4).contains(&digits.len())
                    && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
                match u32::from_str_radix(digits, 8) {
                    Ok(bits) if valid => Ok(Mode(bits)),
                    _ => Err(E::custom(format_args!(
                        "invalid mode {value:?}: write 3 or 4 octal digits, e.g. \"0644\""
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Mode, E> {
                // 0o644 arrives as 420: only digits that read as octal may be echoed back.
                let digits = value.to_string();
                let example =
                    if digits.len() == 3 && digits.bytes().all(|b| b < b'8') && value != 420 {
                        format!("0{digits}")
                    } else {
                        "0644".to_owned()
                    };
                Err(E::custom(format_args!(
                    "mode {value} is a number; write it as a quoted octal string, e.g. mode: \"{example}\""
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Mode, E> {
                Err(E::custom(format_args!(
                    "mode {value} is a number; write it as a quoted octal string such as \"0644\""
                )))
            }
        }
        deserializer.deserialize_any(ModeVisitor)
    }
}

/// Whether something should exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    #[default]
    Present,
    Absent,
}

/// Systemd scope of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    System,
    User,
}

/// A playbook module: typed parameters plus the facts → plan function.
pub trait Module: DeserializeOwned + fmt::Debug + Send + Sync + 'static {
    /// The key that selects this module in a task.
    const NAME: &'static str;

    /// Parameters whose value is a secret: a task that gives one is handled as
    /// `no_log`, whatever it says.
    const SECRET_PARAMS: &'static [&'static str] = &[];

    /// Checks what can be checked without a host: names, paths, combinations.
    fn validate(&self) -> Result<(), ParamError>;

    /// Facts the plan reads. Called again with the facts known so far until it asks
    /// for nothing new, so a fact can depend on another (a user's home, then a file in it).
    fn facts(&self, known: &FactStore) -> Vec<FactKey>;

    /// The changes that bring the host from `facts` to the desired state.
    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError>;

    /// Facts this task will make true whatever the host looks like, recorded in the
    /// play's context before any task is planned, so other tasks of the play can count
    /// on them (see [`FactStore::promised`]): a user-scope unit planned before the
    /// task that turns its user's lingering on is not warned about, but lingers first.
    fn promises(&self) -> Vec<(FactKey, Fact)> {
        Vec::new()
    }

    /// The unit this task restarts whenever it runs (a `service` with `state:
    /// restarted`): the engine restarts a unit at most once per run, so a handler
    /// like this takes over the restart a unit file change would otherwise derive.
    fn restarts(&self) -> Option<fact::UnitRef> {
        None
    }
}

/// A [`Module`] behind a pointer, as the engine holds tasks.
pub trait DynModule: fmt::Debug + Send + Sync {
    /// The module's name (`file`, `systemd_unit`, ...).
    fn kind(&self) -> &'static str;
    /// See [`Module::validate`].
    fn validate(&self) -> Result<(), ParamError>;
    /// See [`Module::facts`].
    fn facts(&self, known: &FactStore) -> Vec<FactKey>;
    /// See [`Module::plan`].
    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError>;
    /// See [`Module::promises`].
    fn promises(&self) -> Vec<(FactKey, Fact)>;
    /// See [`Module::restarts`].
    fn restarts(&self) -> Option<fact::UnitRef>;
}

impl<M: Module> DynModule for M {
    fn kind(&self) -> &'static str {
        M::NAME
    }
    fn validate(&self) -> Result<(), ParamError> {
        Module::validate(self)
    }
    fn facts(&self, known: &FactStore) -> Vec<FactKey> {
        Module::facts(self, known)
    }
    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        Module::plan(self, facts)
    }
    fn promises(&self) -> Vec<(FactKey, Fact)> {
        Module::promises(self)
    }
    fn restarts(&self) -> Option<fact::UnitRef> {
        Module::restarts(self)
    }
}

/// Hint for a plan that needs an account an earlier task should have created.
pub(crate) const CREATE_IT_FIRST: &str =
    " (create it, or install the package that adds it, in an earlier task)";

/// Checks that the owner and group a path should have exist (or will, in check mode).
pub(crate) fn check_owner_group(
    facts: &FactStore,
    owner: Option<&String>,
    group: Option<&String>,
) -> Result<(), PlanError> {
    if let Some(owner) = owner {
        if facts.user(owner)?.is_none() {
            return Err(PlanError::NoSuchUser {
                user: owner.clone(),
                hint: CREATE_IT_FIRST,
            });
        }
    }
    if let Some(group) = group {
        if facts.group(group)?.is_none() {
            return Err(PlanError::NoSuchGroup {
                group: group.clone(),
                hint: CREATE_IT_FIRST,
            });
        }
    }
    Ok(())
}

/// Facts for [`check_owner_group`].
pub(crate) fn owner_group_facts(owner: Option<&String>, group: Option<&String>) -> Vec<FactKey> {
    owner
        .map(|owner| FactKey::Accounts(AccountKey::User(owner.clone())))
        .into_iter()
        .chain(group.map(|group| FactKey::Accounts(AccountKey::Group(group.clone()))))
        .collect()
}

/// Validates optional owner and group names.
pub(crate) fn validate_owner_group(
    owner: Option<&String>,
    group: Option<&String>,
) -> Result<(), ParamError> {
    if let Some(owner) = owner {
        names::user(owner)?;
    }
    if let Some(group) = group {
        names::group(group)?;
    }
    Ok(())
}

/// The one-of check for modules that take file content from `content`, `src` or `template`
/// (the engine turns `src` and `template` into `content` before planning).
pub(crate) fn content_sources(
    content: Option<&String>,
    src: Option<&String>,
    template: Option<&String>,
) -> usize {
    [content, src, template]
        .iter()
        .filter(|s| s.is_some())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_octal_strings_only() {
        let mode: Mode = serde_json::from_str("\"0644\"").unwrap();
        assert_eq!(mode, Mode(0o644));
        assert_eq!(
            serde_json::from_str::<Mode>("\"2775\"").unwrap(),
            Mode(0o2775)
        );
        assert_eq!(
            serde_json::from_str::<Mode>("644").unwrap_err().to_string(),
            "mode 644 is a number; write it as a quoted octal string, e.g. mode: \"0644\" at line 1 column 3"
        );
        assert!(serde_json::from_str::<Mode>("\"0999\"").is_err());
        assert!(serde_json::from_str::<Mode>("\"77777\"").is_err());
        assert_eq!(Mode(0o440).to_string(), "0440");
    }

    #[test]
    fn registry_lists_the_documented_modules_in_their_order() {
        // The table of modules in the docs is the order people read them in.
        let documented: Vec<&str> = include_str!("../../docs/modules/README.md")
            .lines()
            .filter_map(|line| Some(line.strip_prefix("| [`")?.split_once('`')?.0))
            .collect();
        assert_eq!(MODULE_NAMES, documented);
    }
}
