//! Changes: the typed actions a plan is made of.
//!
//! Each [`Change`] knows how to describe itself to a person, which command carries it
//! out ([`Change::command`]: a constant script plus quoted arguments, never a string
//! built by formatting), which facts it makes stale ([`Change::touches`], used after a
//! real change) and what it would leave behind ([`Change::predict`], used by check mode
//! so later tasks are planned against the state earlier ones would create).
//!
//! The variants are listed here so a plan can hold any of them; what each one does
//! lives with its domain (`paths::changes`, `accounts::changes`, `systemd::changes`,
//! `sudo::changes`, `commands::changes`), and the arms below only hand over to it.

use crate::accounts::changes as accounts;
use crate::fact::{FactKey, FactStore, Manager, PathKind, Touch, UnitRef};
use crate::links::changes as links;
use crate::paths::changes as paths;
use crate::systemd::changes as systemd;
use crate::systemd::settle::Verify;

pub use crate::accounts::changes::{NewUser, UserEdit};
pub use crate::commands::changes::RunCommand;
pub use crate::links::changes::NewLink;
pub use crate::paths::changes::{Attributes, FileWrite, Validator};
pub use crate::systemd::changes::UnitAction;

/// A command to run on a host: an argv (quoted when rendered) and bytes for its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub argv: Vec<String>,
    pub stdin: Vec<u8>,
}

impl Cmd {
    /// A plain argv.
    pub fn argv<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: Vec::new(),
        }
    }

    /// A constant `sh` script receiving `args` as `$1`, `$2`, ...
    pub fn script<S: Into<String>>(script: &str, args: impl IntoIterator<Item = S>) -> Self {
        let mut argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            script.to_owned(),
            "converge".to_owned(),
        ];
        argv.extend(args.into_iter().map(Into::into));
        Cmd {
            argv,
            stdin: Vec::new(),
        }
    }

    pub(crate) fn with_stdin(mut self, stdin: Vec<u8>) -> Self {
        self.stdin = stdin;
        self
    }
}

/// One action on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    WriteFile(FileWrite),
    SetAttributes {
        path: String,
        attributes: Attributes,
    },
    CreateDirectory {
        path: String,
        attributes: Attributes,
    },
    Remove {
        path: String,
        kind: PathKind,
    },
    AddGroup {
        name: String,
        system: bool,
    },
    RemoveGroup {
        name: String,
    },
    AddUser(NewUser),
    EditUser(UserEdit),
    RemoveUser {
        name: String,
    },
    /// Makes a manager reread unit files; `unit` is the unit whose file changed.
    DaemonReload {
        manager: Manager,
        unit: Option<String>,
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
    Run {
        command: RunCommand,
    },
    /// Proves with `sudo -l -U` that the user may run each command, right after the
    /// sudoers file at `path` was written. When sudo refuses one, the file that was
    /// there before (`before`, byte for byte) is put back, or the new one removed when
    /// there was none, and the failure says what sudo grants.
    VerifySudo {
        user: String,
        runas: String,
        commands: Vec<String>,
        path: String,
        before: Option<Vec<u8>>,
    },
    /// Makes or re-points a symbolic link in one rename.
    Link(NewLink),
}

/// A file's content before and after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentChange<'a> {
    pub path: &'a str,
    /// `None`: the file is new.
    pub before: Option<&'a [u8]>,
    pub after: &'a [u8],
}

impl Change {
    /// One line for people: what this change does.
    pub fn describe(&self) -> String {
        match self {
            Change::WriteFile(write) => paths::describe_write(write),
            Change::SetAttributes { path, attributes } => {
                format!("set {} on {path}", attributes.describe())
            }
            Change::CreateDirectory { path, .. } => format!("create directory {path}"),
            Change::Remove { path, kind } => format!("remove {kind} {path}"),
            Change::AddGroup { name, .. } => format!("create group {name}"),
            Change::RemoveGroup { name } => format!("remove group {name}"),
            Change::AddUser(user) => format!("create user {}", user.name),
            Change::EditUser(edit) => accounts::describe_edit(edit),
            Change::RemoveUser { name } => format!("remove user {name}"),
            Change::DaemonReload { manager, .. } => format!("daemon-reload ({manager})"),
            Change::Unit { unit, action, .. } => format!("{} {unit}", action.verb()),
            Change::Signal { unit, signal } => format!("send {signal} to {unit}"),
            Change::Linger { user, enabled } => {
                let verb = if *enabled { "enable" } else { "disable" };
                format!("{verb} lingering for {user}")
            }
            Change::AwaitUserManager { user } => format!("wait for {user}'s user manager"),
            Change::Run { command } => format!("run: {command}"),
            Change::Link(link) => links::describe(link),
            Change::VerifySudo { user, commands, .. } => format!(
                "verify with sudo -l that {user} may run the {} commands",
                commands.len()
            ),
        }
    }

    /// The old and new content of a file write, for diffs; `None` for other changes
    /// and for secret content.
    pub fn file_contents(&self) -> Option<ContentChange<'_>> {
        match self {
            Change::WriteFile(write) if !write.secret => Some(ContentChange {
                path: &write.path,
                before: write.before.as_deref(),
                after: &write.content,
            }),
            _ => None,
        }
    }

    /// The command that carries this change out.
    pub fn command(&self) -> Cmd {
        match self {
            Change::WriteFile(write) => paths::write_command(write),
            Change::SetAttributes { path, attributes } => {
                paths::set_attributes_command(path, attributes)
            }
            Change::CreateDirectory { path, attributes } => {
                paths::create_directory_command(path, attributes)
            }
            Change::Remove { path, kind } => paths::remove_command(path, *kind),
            Change::AddGroup { name, system } => accounts::add_group_command(name, *system),
            Change::RemoveGroup { name } => Cmd::argv(["groupdel", "--", name.as_str()]),
            Change::AddUser(user) => accounts::add_user_command(user),
            Change::EditUser(edit) => accounts::edit_user_command(edit),
            Change::RemoveUser { name } => Cmd::argv(["userdel", "--", name.as_str()]),
            Change::DaemonReload { manager, .. } => systemd::daemon_reload_command(manager),
            Change::Unit {
                unit,
                action,
                reload_follows,
                verify,
            } => systemd::unit_command(unit, *action, *reload_follows, verify.as_ref()),
            Change::Signal { unit, signal } => systemd::signal_command(unit, signal),
            Change::Linger { user, enabled } => systemd::linger_command(user, *enabled),
            Change::AwaitUserManager { user } => systemd::await_user_manager_command(user),
            Change::Run { command } => command.command(),
            Change::Link(link) => links::command(link),
            Change::VerifySudo {
                user,
                runas,
                commands,
                path,
                before,
            } => crate::sudo::changes::verify_command(user, runas, commands, path, before.as_ref()),
        }
    }

    /// Facts this change makes stale once it has really run.
    pub fn touches(&self) -> Vec<Touch> {
        match self {
            Change::WriteFile(FileWrite { path, .. })
            | Change::SetAttributes { path, .. }
            // A refused sudoers file was put back or removed.
            | Change::VerifySudo { path, .. } => paths::touches_file(path),
            Change::CreateDirectory { path, .. } | Change::Remove { path, .. } => {
                vec![Touch::Tree(path.clone())]
            }
            Change::AddGroup { name, .. } | Change::RemoveGroup { name } => {
                vec![Touch::Key(FactKey::Group(name.clone()))]
            }
            // Accounts own files, groups and home directories: too much to list.
            Change::AddUser(_) | Change::EditUser(_) | Change::RemoveUser { .. } => {
                vec![Touch::Everything]
            }
            Change::DaemonReload { manager, .. } => vec![Touch::Units(manager.clone())],
            Change::Unit { unit, .. } | Change::Signal { unit, .. } => {
                vec![Touch::Key(FactKey::Unit(unit.clone()))]
            }
            Change::Linger { user, .. } | Change::AwaitUserManager { user } => {
                systemd::touches_user_manager(user)
            }
            Change::Run { .. } => vec![Touch::Everything],
            Change::Link(link) => links::touches(link),
        }
    }

    /// Records in `store` the state this change would leave (check mode).
    pub fn predict(&self, store: &mut FactStore) {
        match self {
            Change::WriteFile(write) => paths::predict_write(store, write),
            Change::SetAttributes { path, attributes } => {
                paths::predict_set_attributes(store, path, attributes);
            }
            Change::CreateDirectory { path, attributes } => {
                paths::predict_create_directory(store, path, attributes);
            }
            Change::Remove { path, .. } => paths::predict_remove(store, path),
            Change::AddGroup { name, .. } => accounts::predict_group(store, name, true),
            Change::RemoveGroup { name } => accounts::predict_group(store, name, false),
            Change::AddUser(user) => accounts::predict_new_user(store, user),
            Change::EditUser(edit) => accounts::predict_edit(store, edit),
            Change::RemoveUser { name } => accounts::predict_removed_user(store, name),
            Change::DaemonReload { manager, unit } => {
                systemd::predict_daemon_reload(store, manager, unit.as_ref());
            }
            Change::Unit { unit, action, .. } => systemd::predict_unit(store, unit, *action),
            Change::Linger { user, enabled } => systemd::predict_linger(store, user, *enabled),
            Change::AwaitUserManager { user } => systemd::predict_manager_start(store, user),
            Change::Link(link) => links::predict(store, link),
            // A signal leaves no state behind, and what an arbitrary command does cannot
            // be known.
            Change::Signal { .. } | Change::Run { .. } | Change::VerifySudo { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests;
