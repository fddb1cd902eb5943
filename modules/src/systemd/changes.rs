//! Changes through systemd: daemon-reloads, unit actions and signals in the right
//! manager, lingering, and waiting for a user's manager to come up.

use serde::Serialize;

use crate::change::{Change, Cmd, DomainChange};
use crate::fact::{Fact, FactKey, FactStore, Manager, ManagerState, Touch, UnitRef, UnitState};
use crate::systemd::facts::{started_with_manager, USER_SYSTEMCTL};
use crate::systemd::settle::{self, Verify};
use crate::systemd::{SystemdFact, SystemdKey};

/// Something done to a unit through its manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitAction {
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Reload,
}

impl UnitAction {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            UnitAction::Enable => "enable",
            UnitAction::Disable => "disable",
            UnitAction::Start => "start",
            UnitAction::Stop => "stop",
            UnitAction::Restart => "restart",
            UnitAction::Reload => "reload",
        }
    }
}

/// Starts the user's manager and waits until it has started up (30 s at most).
const AWAIT_USER_MANAGER: &str = r#"user=$1
uid=$(id -u -- "$user") || exit 1
# logind starts the manager of a lingering user by itself, but that start can be lost
# when it races the teardown of the user's previous manager. Asking for the unit is
# what logind does, and returns once the manager has reported ready.
systemctl start -- "user@$uid.service" || exit 1
# `--wait` follows the manager's startup on its bus rather than asking again and again
# (a `runuser` and a `systemctl` each time); it returns at once while that bus is not up
# yet, hence the loop.
start=$(date +%s)
left=30
while [ "$left" -gt 0 ]; do
  state=$(XDG_RUNTIME_DIR="/run/user/$uid" timeout "$left" runuser -u "$user" -- systemctl --user is-system-running --wait 2>/dev/null) || true
  case $state in running|degraded) exit 0 ;; esac
  sleep 0.2
  left=$((30 - ($(date +%s) - start)))
done
echo "the user manager of $user did not come up within 30 seconds" >&2
exit 1"#;

fn systemctl(manager: &Manager, args: &[&str]) -> Cmd {
    match manager {
        Manager::System => {
            let mut argv = vec!["systemctl"];
            argv.extend_from_slice(args);
            Cmd::argv(argv)
        }
        Manager::User(user) => {
            let mut script_args = vec![user.as_str()];
            script_args.extend_from_slice(args);
            Cmd::script(USER_SYSTEMCTL, script_args)
        }
    }
}

/// A start or restart proven as `verify` says (see [`settle`]), or a plain `systemctl`
/// verb; `--no-reload` when a daemon-reload of the same manager follows anyway.
pub(crate) fn unit_command(
    unit: &UnitRef,
    action: UnitAction,
    reload_follows: bool,
    verify: Option<&Verify>,
) -> Cmd {
    if let (UnitAction::Start | UnitAction::Restart, Some(verify)) = (action, verify) {
        return settle::command(unit, action.verb(), verify);
    }
    let mut args = vec![action.verb()];
    if reload_follows {
        args.push("--no-reload");
    }
    args.extend(["--", unit.name.as_str()]);
    systemctl(&unit.manager, &args)
}

pub(crate) fn daemon_reload_command(manager: &Manager) -> Cmd {
    systemctl(manager, &["daemon-reload"])
}

pub(crate) fn signal_command(unit: &UnitRef, signal: &str) -> Cmd {
    systemctl(
        &unit.manager,
        &[
            "kill",
            "--kill-who=main",
            "-s",
            signal,
            "--",
            unit.name.as_str(),
        ],
    )
}

pub(crate) fn linger_command(user: &str, enabled: bool) -> Cmd {
    if enabled {
        Cmd::script(
            &format!("loginctl enable-linger -- \"$1\" || exit 1\n{AWAIT_USER_MANAGER}"),
            [user],
        )
    } else {
        Cmd::argv(["loginctl", "disable-linger", "--", user])
    }
}

pub(crate) fn await_user_manager_command(user: &str) -> Cmd {
    Cmd::script(AWAIT_USER_MANAGER, [user])
}

/// What lingering and a user's manager coming up make stale.
pub(crate) fn touches_user_manager(user: &str) -> Vec<Touch> {
    vec![
        Touch::Key(FactKey::Systemd(SystemdKey::Linger(user.to_owned()))),
        Touch::Units(Manager::User(user.to_owned())),
    ]
}

/// After a daemon-reload, the unit whose file changed is loaded, or, its file removed,
/// gone (as far as converge's file was the unit's).
pub(crate) fn predict_daemon_reload(
    store: &mut FactStore,
    manager: &Manager,
    unit: Option<&String>,
    removed: bool,
) {
    let Some(name) = unit else {
        return;
    };
    let unit = UnitRef {
        manager: manager.clone(),
        name: name.clone(),
    };
    let state = predicted_unit(store, &unit);
    if removed {
        store.insert(
            FactKey::Systemd(SystemdKey::Unit(unit)),
            Fact::Systemd(SystemdFact::Unit(UnitState {
                load: "not-found".to_owned(),
                active: "inactive".to_owned(),
                unit_file: String::new(),
                need_daemon_reload: false,
                ..state
            })),
        );
        return;
    }
    store.insert(
        FactKey::Systemd(SystemdKey::Unit(unit)),
        Fact::Systemd(SystemdFact::Unit(UnitState {
            load: "loaded".to_owned(),
            need_daemon_reload: false,
            unit_file: if state.unit_file.is_empty() {
                "disabled".to_owned()
            } else {
                state.unit_file
            },
            active: if state.active.is_empty() {
                "inactive".to_owned()
            } else {
                state.active
            },
            ..state
        })),
    );
}

pub(crate) fn predict_unit(store: &mut FactStore, unit: &UnitRef, action: UnitAction) {
    let mut state = predicted_unit(store, unit);
    match action {
        UnitAction::Enable => "enabled".clone_into(&mut state.unit_file),
        UnitAction::Disable => "disabled".clone_into(&mut state.unit_file),
        UnitAction::Start | UnitAction::Restart | UnitAction::Reload => {
            "active".clone_into(&mut state.active);
        }
        UnitAction::Stop => "inactive".clone_into(&mut state.active),
    }
    store.insert(
        FactKey::Systemd(SystemdKey::Unit(unit.clone())),
        Fact::Systemd(SystemdFact::Unit(state)),
    );
}

pub(crate) fn predict_linger(store: &mut FactStore, user: &str, enabled: bool) {
    store.insert(
        FactKey::Systemd(SystemdKey::Linger(user.to_owned())),
        Fact::Systemd(SystemdFact::Linger(enabled)),
    );
    if enabled {
        predict_manager_start(store, user);
    } else {
        // logind stops the manager of a user without sessions at once.
        for unit in store.units_of(&Manager::User(user.to_owned())) {
            if let Some(state) = store.unit_mut(&unit) {
                state.manager = ManagerState::Down;
                "inactive".clone_into(&mut state.active);
            }
        }
    }
}

/// A user manager that starts brings up every unit enabled in its files.
pub(crate) fn predict_manager_start(store: &mut FactStore, user: &str) {
    for unit in store.units_of(&Manager::User(user.to_owned())) {
        if let Some(state) = store.unit_mut(&unit) {
            *state = started_with_manager(state);
        }
    }
}

fn predicted_unit(store: &FactStore, unit: &UnitRef) -> UnitState {
    store.unit(unit).cloned().unwrap_or(UnitState {
        manager: ManagerState::Running,
        load: "not-found".to_owned(),
        active: "inactive".to_owned(),
        unit_file: String::new(),
        need_daemon_reload: false,
    })
}

/// Which daemon-reloads of `changes` (run in this order, as one script) another one
/// makes unnecessary: for each change, the index of the last daemon-reload of the same
/// manager that follows it with nothing between them that needs that manager to have
/// reread its unit files ([`Change::needs_reloaded`]). Unit files written by several
/// tasks are then loaded by one reload, before the first change that needs it.
pub fn reloads_joined_later(changes: &[Change]) -> Vec<Option<usize>> {
    let mut joined = vec![None; changes.len()];
    // Read from the end: per manager, the reload an earlier one of it may be joined to,
    // for as long as nothing met on the way needs that manager reloaded.
    let mut covers: Vec<(&Manager, usize)> = Vec::new();
    for (index, change) in changes.iter().enumerate().rev() {
        if let Change::Systemd(SystemdChange::DaemonReload { manager, .. }) = change {
            match covers.iter().find(|(other, _)| *other == manager) {
                Some(&(_, cover)) => joined[index] = Some(cover),
                None => covers.push((manager, index)),
            }
        } else {
            covers.retain(|(manager, _)| !change.needs_reloaded(manager));
        }
    }
    joined
}

/// The reloads a script that failed at change `failed` still owes: those before it
/// that were joined (`joined`, from [`reloads_joined_later`]) to one after it, one per
/// manager.
pub fn reloads_owed(changes: &[Change], joined: &[Option<usize>], failed: usize) -> Vec<Change> {
    let mut owed: Vec<Change> = Vec::new();
    for (change, cover) in changes.iter().zip(joined).take(failed) {
        let Change::Systemd(SystemdChange::DaemonReload { manager, .. }) = change else {
            continue;
        };
        let counted = owed.iter().any(|other| {
            matches!(other, Change::Systemd(SystemdChange::DaemonReload { manager: m, .. }) if m == manager)
        });
        if cover.is_some_and(|cover| cover > failed) && !counted {
            owed.push(change.clone());
        }
    }
    owed
}

/// The changes made through systemd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemdChange {
    /// Makes a manager reread unit files; `unit` is the unit whose file changed, and
    /// `removed` says that file was removed (check mode then predicts the unit gone).
    DaemonReload {
        manager: Manager,
        unit: Option<String>,
        removed: bool,
    },
    Unit {
        unit: UnitRef,
        action: UnitAction,
        /// An enable or disable that skips the manager's implicit reload, because a
        /// daemon-reload of the same manager follows in the plan: one reload, not two.
        reload_follows: bool,
        /// For a start or restart: how it is proven (see [`crate::settle`]).
        verify: Option<Verify>,
    },
    /// Sends a signal to the unit's main process (as Sidekiq expects TSTP), not to
    /// every process in its control group.
    Signal {
        unit: UnitRef,
        signal: String,
    },
    Linger {
        user: String,
        enabled: bool,
    },
    /// Waits (bounded) until a user's manager accepts commands.
    AwaitUserManager {
        user: String,
    },
}

impl DomainChange for SystemdChange {
    fn needs_reloaded(&self, manager: &Manager) -> bool {
        match self {
            SystemdChange::DaemonReload { manager: other, .. } => other == manager,
            // `enable --no-reload` and `disable --no-reload` only edit links.
            SystemdChange::Unit {
                reload_follows: true,
                ..
            } => false,
            SystemdChange::Unit { unit, .. } | SystemdChange::Signal { unit, .. } => {
                unit.manager == *manager
            }
            SystemdChange::Linger { user, .. } | SystemdChange::AwaitUserManager { user } => {
                matches!(manager, Manager::User(owner) if owner == user)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            SystemdChange::DaemonReload { manager, .. } => format!("daemon-reload ({manager})"),
            SystemdChange::Unit { unit, action, .. } => format!("{} {unit}", action.verb()),
            SystemdChange::Signal { unit, signal } => format!("send {signal} to {unit}"),
            SystemdChange::Linger { user, enabled } => {
                let verb = if *enabled { "enable" } else { "disable" };
                format!("{verb} lingering for {user}")
            }
            SystemdChange::AwaitUserManager { user } => format!("wait for {user}'s user manager"),
        }
    }

    fn command(&self) -> Cmd {
        match self {
            SystemdChange::DaemonReload { manager, .. } => daemon_reload_command(manager),
            SystemdChange::Unit {
                unit,
                action,
                reload_follows,
                verify,
            } => unit_command(unit, *action, *reload_follows, verify.as_ref()),
            SystemdChange::Signal { unit, signal } => signal_command(unit, signal),
            SystemdChange::Linger { user, enabled } => linger_command(user, *enabled),
            SystemdChange::AwaitUserManager { user } => await_user_manager_command(user),
        }
    }

    fn touches(&self) -> Vec<Touch> {
        match self {
            SystemdChange::DaemonReload { manager, .. } => vec![Touch::Units(manager.clone())],
            SystemdChange::Unit { unit, .. } | SystemdChange::Signal { unit, .. } => {
                vec![Touch::Key(SystemdKey::Unit(unit.clone()).into())]
            }
            SystemdChange::Linger { user, .. } | SystemdChange::AwaitUserManager { user } => {
                touches_user_manager(user)
            }
        }
    }

    fn predict(&self, store: &mut FactStore) {
        match self {
            SystemdChange::DaemonReload {
                manager,
                unit,
                removed,
            } => predict_daemon_reload(store, manager, unit.as_ref(), *removed),
            SystemdChange::Unit { unit, action, .. } => predict_unit(store, unit, *action),
            SystemdChange::Linger { user, enabled } => predict_linger(store, user, *enabled),
            SystemdChange::AwaitUserManager { user } => predict_manager_start(store, user),
            // A signal leaves no state behind.
            SystemdChange::Signal { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::changes::{CommandChange, RunCommand};
    use crate::fact::PathKind;
    use crate::paths::changes::PathChange;

    fn reload(manager: &Manager, unit: &str) -> Change {
        Change::Systemd(SystemdChange::DaemonReload {
            manager: manager.clone(),
            unit: Some(unit.to_owned()),
            removed: false,
        })
    }

    fn unit(manager: &Manager, name: &str, action: UnitAction, reload_follows: bool) -> Change {
        Change::Systemd(SystemdChange::Unit {
            unit: UnitRef {
                manager: manager.clone(),
                name: name.to_owned(),
            },
            action,
            reload_follows,
            verify: None,
        })
    }

    fn file(path: &str) -> Change {
        Change::Paths(PathChange::Remove {
            path: path.to_owned(),
            kind: PathKind::File,
        })
    }

    #[test]
    fn unit_files_written_before_any_start_are_loaded_by_the_last_reload() {
        let system = Manager::System;
        let changes = [
            file("/etc/systemd/system/a.service"),
            unit(&system, "a.service", UnitAction::Enable, true),
            reload(&system, "a.service"),
            file("/etc/systemd/system/b.service"),
            unit(&system, "b.service", UnitAction::Enable, true),
            reload(&system, "b.service"),
            file("/etc/systemd/system/c.service"),
            reload(&system, "c.service"),
            unit(&system, "a.service", UnitAction::Start, false),
            unit(&system, "b.service", UnitAction::Start, false),
        ];
        let joined = reloads_joined_later(&changes);
        let expected = [
            None,
            None,
            Some(7),
            None,
            None,
            Some(7),
            None,
            None,
            None,
            None,
        ];
        assert_eq!(joined, expected);
        // A failure between the first reload and the last owes the first's manager one.
        assert_eq!(reloads_owed(&changes, &joined, 4), vec![changes[2].clone()]);
        assert_eq!(reloads_owed(&changes, &joined, 6), vec![changes[2].clone()]);
        assert_eq!(reloads_owed(&changes, &joined, 7), Vec::<Change>::new());
        assert_eq!(reloads_owed(&changes, &joined, 2), Vec::<Change>::new());
    }

    #[test]
    fn a_reload_is_not_joined_past_what_needs_it() {
        let system = Manager::System;
        let deploy = Manager::User("deploy".to_owned());
        let command = Change::Commands(CommandChange::Run {
            command: RunCommand::Shell("systemctl start a.service".to_owned()),
        });
        let started_between = [
            reload(&system, "a.service"),
            unit(&system, "a.service", UnitAction::Start, false),
            reload(&system, "b.service"),
        ];
        let command_between = [
            reload(&system, "a.service"),
            command,
            reload(&system, "b.service"),
        ];
        let lingering_between = [
            reload(&deploy, "a.service"),
            Change::Systemd(SystemdChange::Linger {
                user: "deploy".to_owned(),
                enabled: true,
            }),
            reload(&deploy, "b.service"),
        ];
        for changes in [&started_between, &command_between, &lingering_between] {
            assert_eq!(
                reloads_joined_later(changes),
                [None, None, None],
                "{changes:?}"
            );
        }
        // Other managers go their own way: a start in one does not hold the other back.
        let two_managers = [
            reload(&system, "a.service"),
            reload(&deploy, "a.service"),
            unit(&deploy, "a.service", UnitAction::Start, false),
            reload(&system, "b.service"),
            reload(&deploy, "b.service"),
        ];
        assert_eq!(
            reloads_joined_later(&two_managers),
            [Some(3), None, None, None, None]
        );
    }
}
