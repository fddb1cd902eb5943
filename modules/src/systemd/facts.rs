//! Facts about systemd: which manager a unit belongs to, a unit's state in it, and
//! whether a user lingers.

use std::fmt;

use serde::Serialize;

use crate::fact::{DomainKey, Fact};
use crate::shell::quote;
use crate::systemd::unit_lint::{self, Candidate, Verdict};

/// Which systemd instance manages a unit: the system manager, or one user's manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Manager {
    System,
    User(String),
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manager::System => f.write_str("system manager"),
            Manager::User(user) => write!(f, "{user}'s user manager"),
        }
    }
}

/// A unit in a given manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UnitRef {
    pub manager: Manager,
    /// Full unit name, e.g. `sidekiq.service`.
    pub name: String,
}

impl fmt::Display for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manager {
            Manager::System => f.write_str(&self.name),
            Manager::User(user) => write!(f, "{} (user {user})", self.name),
        }
    }
}

/// Whether a unit's manager can be talked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ManagerState {
    Running,
    /// The user's manager is not running (no session and no lingering).
    Down,
    /// The user of a user-scope unit does not exist.
    NoSuchUser,
}

/// A unit's state as `systemctl show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub manager: ManagerState,
    /// `LoadState`: `loaded`, `not-found`, `masked`, ...
    pub load: String,
    /// `ActiveState`: `active`, `inactive`, `failed`, `activating`, ...
    pub active: String,
    /// `UnitFileState`: `enabled`, `disabled`, `static`, ... (empty when unknown)
    pub unit_file: String,
    /// `NeedDaemonReload`: the file on disk differs from what the manager loaded.
    pub need_daemon_reload: bool,
}

impl UnitState {
    /// Whether the unit is enabled in any form systemd counts as enabled.
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.unit_file.as_str(),
            "enabled" | "enabled-runtime" | "alias"
        )
    }

    /// Whether the unit is running or about to be.
    pub fn is_active(&self) -> bool {
        matches!(self.active.as_str(), "active" | "activating" | "reloading")
    }

    /// Whether the manager knows the unit.
    pub fn exists(&self) -> bool {
        self.load != "not-found" && !self.load.is_empty()
    }
}

/// Runs `systemctl --user` in `user`'s manager as that user, through the manager's
/// private socket, so it works on hosts without a user D-Bus (`dbus-user-session`).
pub(crate) const USER_SYSTEMCTL: &str = r#"user=$1; shift
uid=$(id -u -- "$user") || exit 1
export XDG_RUNTIME_DIR="/run/user/$uid"
exec runuser -u "$user" -- systemctl --user "$@""#;

const UNIT_PROPERTIES: &str = "-p LoadState -p ActiveState -p UnitFileState -p NeedDaemonReload";

/// Whether a unit name is a template (`getty@.service`), not a unit or an instance.
pub fn is_template(name: &str) -> bool {
    name.contains("@.")
}

pub(crate) fn parse_unit(manager: &Manager, output: &str) -> Option<UnitState> {
    let mut state = UnitState {
        manager: ManagerState::Running,
        load: String::new(),
        active: String::new(),
        unit_file: String::new(),
        need_daemon_reload: false,
    };
    let mut seen_load = false;
    for line in output.lines() {
        let (name, value) = line.split_once('=')?;
        match name {
            "manager" if matches!(manager, Manager::User(_)) => {
                state.manager = match value {
                    "running" => ManagerState::Running,
                    "down" => ManagerState::Down,
                    "no-such-user" => ManagerState::NoSuchUser,
                    _ => return None,
                };
            }
            "LoadState" => {
                seen_load = true;
                value.clone_into(&mut state.load);
            }
            "ActiveState" => value.clone_into(&mut state.active),
            "UnitFileState" => value.clone_into(&mut state.unit_file),
            // Seen only while the user's manager is down: the unit file exists on disk.
            "UnitFile" if state.unit_file.is_empty() => "disabled".clone_into(&mut state.unit_file),
            "NeedDaemonReload" => state.need_daemon_reload = value == "yes",
            _ => {}
        }
    }
    (seen_load || state.manager != ManagerState::Running).then_some(state)
}

/// The `sh` snippet that prints a unit's state for [`parse_unit`].
pub(crate) fn unit_probe(unit: &UnitRef) -> String {
    match unit {
        // A template (`name@.service`) is never loaded as such: there is nothing to
        // show, and it can only be written and reloaded.
        UnitRef { name, .. } if is_template(name) => "echo LoadState=template".to_owned(),
        UnitRef {
            manager: Manager::System,
            name,
        } => format!("systemctl show {UNIT_PROPERTIES} -- {}", quote(name)),
        UnitRef {
            manager: Manager::User(user),
            name,
        } => format!(
            // A manager that is starting or stopping counts as down, also when
            // its socket is still there but it no longer answers (lingering was
            // just turned off): the plan then waits for it, or says it is down,
            // instead of failing on half an answer.
            //
            // This is `USER_SYSTEMCTL` inline, with the uid already at hand: no
            // second shell (`runuser` without `-l` passes XDG_RUNTIME_DIR on, as
            // `USER_SYSTEMCTL` relies on too). The home directory is cut out of
            // the passwd line by parameter expansion, as no passwd field holds a
            // `:`, to spare a `cut`.
            concat!(
                "if ! uid=$(id -u -- {u} 2>/dev/null); then echo manager=no-such-user; ",
                "elif [ \"$(systemctl is-active \"user@$uid.service\" 2>/dev/null)\" = active ] ",
                "&& out=$(XDG_RUNTIME_DIR=\"/run/user/$uid\" runuser -u {u} -- systemctl --user show {props} -- {n} 2>/dev/null); then ",
                "echo manager=running; printf '%s\\n' \"$out\"; ",
                "else echo manager=down; home=$(getent passwd {u}); home=${{home#*:*:*:*:*:}}; home=${{home%%:*}}; ",
                "for link in \"$home\"/.config/systemd/user/*.wants/{n}; do ",
                "if [ -L \"$link\" ]; then echo UnitFileState=enabled; break; fi; done; ",
                "if [ -f \"$home/.config/systemd/user/\"{n} ]; then echo UnitFile=present; fi; fi"
            ),
            u = quote(user),
            n = quote(name),
            props = UNIT_PROPERTIES,
        ),    }
}

pub(crate) fn linger_probe(user: &str) -> String {
    format!(
        "if [ -e /var/lib/systemd/linger/{} ]; then echo yes; else echo no; fi",
        quote(user)
    )
}

pub(crate) fn parse_linger(output: &str) -> Option<Fact> {
    match output.trim_end() {
        "yes" => Some(Fact::Systemd(SystemdFact::Linger(true))),
        "no" => Some(Fact::Systemd(SystemdFact::Linger(false))),
        _ => None,
    }
}

/// The state of a user unit, read while its manager was down, once the manager has
/// started: it loads the unit if its file exists, and starts it if it is enabled. Plans
/// are made against this, not against the down manager, so that an enabled unit is not
/// also "started" by hand after the manager started it.
pub(crate) fn started_with_manager(state: &UnitState) -> UnitState {
    let mut state = state.clone();
    if state.manager != ManagerState::Down {
        return state;
    }
    state.manager = ManagerState::Running;
    if state.load.is_empty() {
        let has_file = !state.unit_file.is_empty();
        (if has_file { "loaded" } else { "not-found" }).clone_into(&mut state.load);
    }
    if state.is_enabled() {
        "active".clone_into(&mut state.active);
    } else if state.active.is_empty() {
        "inactive".clone_into(&mut state.active);
    }
    state
}

/// Whether a task of the play being run turns lingering on for `user`.
pub(crate) fn lingering_promised(facts: &crate::fact::FactStore, user: &str) -> bool {
    facts.promised(&SystemdKey::Linger(user.to_owned()).into())
        == Some(&Fact::Systemd(SystemdFact::Linger(true)))
}

/// The facts about systemd.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum SystemdKey {
    /// Load, active and enablement state of a unit.
    Unit(UnitRef),
    /// Whether logind lingering is on for a user.
    Linger(String),
    /// `systemd-analyze verify` of a unit file before it is installed.
    UnitVerify(Candidate),
}

/// The values of [`SystemdKey`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SystemdFact {
    Unit(UnitState),
    Linger(bool),
    UnitVerify(Verdict),
}

impl fmt::Display for SystemdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemdKey::Unit(unit) => write!(f, "unit {unit}"),
            SystemdKey::Linger(user) => write!(f, "linger for {user}"),
            SystemdKey::UnitVerify(candidate) => write!(f, "{candidate}"),
        }
    }
}

impl DomainKey for SystemdKey {
    fn probe(&self) -> String {
        match self {
            SystemdKey::Unit(unit) => unit_probe(unit),
            SystemdKey::Linger(user) => linger_probe(user),
            SystemdKey::UnitVerify(candidate) => unit_lint::probe(candidate),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            SystemdKey::Unit(unit) => {
                parse_unit(&unit.manager, output).map(|state| SystemdFact::Unit(state).into())
            }
            SystemdKey::Linger(_) => parse_linger(output),
            SystemdKey::UnitVerify(candidate) => unit_lint::parse(candidate, output)
                .map(|verdict| SystemdFact::UnitVerify(verdict).into()),
        }
    }
}
