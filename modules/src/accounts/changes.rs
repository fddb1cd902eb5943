//! Changes to accounts: `groupadd`, `useradd`, `usermod` and their removals, as argv.

use crate::accounts::{AccountFact, AccountKey};
use crate::change::{Cmd, DomainChange};
use crate::fact::{
    Fact, FactKey, FactStore, GroupInfo, Manager, PathKind, PathState, Touch, UserInfo,
};
use crate::paths::{PathFact, PathKey};

/// A new user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub system: bool,
    /// The user ID; `None`: the next free one.
    pub uid: Option<u32>,
    /// Whether `useradd` creates the home directory.
    pub create_home: bool,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub groups: Vec<String>,
}

/// Changes to an existing user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEdit {
    pub name: String,
    pub uid: Option<u32>,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub groups: Option<Vec<String>>,
}

pub(crate) fn describe_edit(edit: &UserEdit) -> String {
    let mut parts = Vec::new();
    if let Some(uid) = edit.uid {
        parts.push(format!("uid {uid}"));
    }
    if let Some(home) = &edit.home {
        parts.push(format!("home {home}"));
    }
    if let Some(shell) = &edit.shell {
        parts.push(format!("shell {shell}"));
    }
    if let Some(groups) = &edit.groups {
        parts.push(format!("groups [{}]", groups.join(", ")));
    }
    format!("set {} for user {}", parts.join(", "), edit.name)
}

pub(crate) fn add_group_command(name: &str, system: bool, gid: Option<u32>) -> Cmd {
    let mut argv = vec!["groupadd".to_owned()];
    if system {
        argv.push("--system".to_owned());
    }
    if let Some(gid) = gid {
        argv.extend(["--gid".to_owned(), gid.to_string()]);
    }
    argv.extend(["--".to_owned(), name.to_owned()]);
    Cmd::argv(argv)
}

pub(crate) fn add_user_command(user: &NewUser) -> Cmd {
    let home = if user.create_home {
        "--create-home"
    } else {
        "--no-create-home"
    };
    let mut argv = vec!["useradd".to_owned(), home.to_owned()];
    if user.system {
        argv.push("--system".to_owned());
    }
    if let Some(uid) = user.uid {
        argv.extend(["--uid".to_owned(), uid.to_string()]);
    }
    if let Some(home) = &user.home {
        argv.extend(["--home-dir".to_owned(), home.clone()]);
    }
    if let Some(shell) = &user.shell {
        argv.extend(["--shell".to_owned(), shell.clone()]);
    }
    if !user.groups.is_empty() {
        argv.extend(["--groups".to_owned(), user.groups.join(",")]);
    }
    argv.extend(["--".to_owned(), user.name.clone()]);
    Cmd::argv(argv)
}

pub(crate) fn edit_user_command(edit: &UserEdit) -> Cmd {
    let mut argv = vec!["usermod".to_owned()];
    if let Some(uid) = edit.uid {
        argv.extend(["--uid".to_owned(), uid.to_string()]);
    }
    if let Some(home) = &edit.home {
        argv.extend(["--home".to_owned(), home.clone()]);
    }
    if let Some(shell) = &edit.shell {
        argv.extend(["--shell".to_owned(), shell.clone()]);
    }
    if let Some(groups) = &edit.groups {
        argv.extend(["--groups".to_owned(), groups.join(",")]);
    }
    argv.extend(["--".to_owned(), edit.name.clone()]);
    Cmd::argv(argv)
}

pub(crate) fn predict_group(store: &mut FactStore, name: &str, exists: bool, gid: Option<u32>) {
    let info = exists.then_some(GroupInfo { gid });
    store.insert(
        FactKey::Accounts(AccountKey::Group(name.to_owned())),
        Fact::Accounts(AccountFact::Group(info)),
    );
}

pub(crate) fn predict_edit(store: &mut FactStore, edit: &UserEdit) {
    if let Ok(Some(info)) = store.user(&edit.name) {
        let mut info = info.clone();
        if edit.uid.is_some() {
            info.uid = edit.uid;
        }
        if let Some(home) = &edit.home {
            info.home.clone_from(home);
        }
        if let Some(shell) = &edit.shell {
            info.shell.clone_from(shell);
        }
        if let Some(groups) = &edit.groups {
            info.groups.clone_from(groups);
        }
        store.insert(
            FactKey::Accounts(AccountKey::User(edit.name.clone())),
            Fact::Accounts(AccountFact::User(Some(info))),
        );
    }
}

pub(crate) fn predict_new_user(store: &mut FactStore, user: &NewUser) {
    let home = user
        .home
        .clone()
        .unwrap_or_else(|| format!("/home/{}", user.name));
    store.insert(
        FactKey::Accounts(AccountKey::User(user.name.clone())),
        Fact::Accounts(AccountFact::User(Some(UserInfo {
            uid: user.uid,
            home: home.clone(),
            shell: user.shell.clone().unwrap_or_else(|| "/bin/sh".to_owned()),
            primary_group: user.name.clone(),
            groups: user.groups.clone(),
        }))),
    );
    // Debian's useradd creates a group named after the user and, with --create-home,
    // the home directory owned by the user.
    store.insert(
        FactKey::Accounts(AccountKey::Group(user.name.clone())),
        Fact::Accounts(AccountFact::Group(Some(GroupInfo { gid: None }))),
    );
    if !user.create_home {
        return;
    }
    store.insert(
        FactKey::Paths(PathKey::Path(home)),
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::Directory,
            owner: user.name.clone(),
            group: user.name.clone(),
            mode: 0o755,
        })),
    );
}

pub(crate) fn predict_removed_user(store: &mut FactStore, name: &str) {
    store.insert(
        FactKey::Accounts(AccountKey::User(name.to_owned())),
        Fact::Accounts(AccountFact::User(None)),
    );
}

/// The changes to accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    AddGroup {
        name: String,
        system: bool,
        gid: Option<u32>,
    },
    /// `groupmod --gid`: files keep the old group ID.
    SetGroupId {
        name: String,
        gid: u32,
    },
    RemoveGroup {
        name: String,
    },
    AddUser(NewUser),
    EditUser(UserEdit),
    /// `chpasswd --encrypted`, the hash on stdin: never on a command line, never
    /// described.
    SetPassword {
        name: String,
        hash: String,
    },
    RemoveUser {
        name: String,
    },
}

impl DomainChange for AccountChange {
    /// Users and groups are made without asking a systemd manager.
    fn needs_reloaded(&self, _manager: &Manager) -> bool {
        false
    }

    fn describe(&self) -> String {
        match self {
            AccountChange::AddGroup { name, .. } => format!("create group {name}"),
            AccountChange::SetGroupId { name, gid } => format!("set gid {gid} for group {name}"),
            AccountChange::RemoveGroup { name } => format!("remove group {name}"),
            AccountChange::AddUser(user) => format!("create user {}", user.name),
            AccountChange::EditUser(edit) => describe_edit(edit),
            AccountChange::SetPassword { name, .. } => format!("set password for user {name}"),
            AccountChange::RemoveUser { name } => format!("remove user {name}"),
        }
    }

    fn command(&self) -> Cmd {
        match self {
            AccountChange::AddGroup { name, system, gid } => add_group_command(name, *system, *gid),
            AccountChange::SetGroupId { name, gid } => Cmd::argv([
                "groupmod".to_owned(),
                "--gid".to_owned(),
                gid.to_string(),
                "--".to_owned(),
                name.clone(),
            ]),
            AccountChange::RemoveGroup { name } => Cmd::argv(["groupdel", "--", name.as_str()]),
            AccountChange::AddUser(user) => add_user_command(user),
            AccountChange::EditUser(edit) => edit_user_command(edit),
            AccountChange::SetPassword { name, hash } => Cmd {
                argv: vec!["chpasswd".to_owned(), "--encrypted".to_owned()],
                stdin: format!("{name}:{hash}\n").into_bytes(),
            },
            AccountChange::RemoveUser { name } => Cmd::argv(["userdel", "--", name.as_str()]),
        }
    }

    fn touches(&self) -> Vec<Touch> {
        match self {
            AccountChange::AddGroup { name, .. }
            | AccountChange::SetGroupId { name, .. }
            | AccountChange::RemoveGroup { name } => {
                vec![Touch::Key(AccountKey::Group(name.clone()).into())]
            }
            AccountChange::SetPassword { name, .. } => {
                vec![Touch::Key(AccountKey::Password(name.clone()).into())]
            }
            // Accounts own files, groups and home directories: too much to list.
            AccountChange::AddUser(_)
            | AccountChange::EditUser(_)
            | AccountChange::RemoveUser { .. } => vec![Touch::Everything],
        }
    }

    fn predict(&self, store: &mut FactStore) {
        match self {
            AccountChange::AddGroup { name, gid, .. } => predict_group(store, name, true, *gid),
            AccountChange::SetGroupId { name, gid } => {
                predict_group(store, name, true, Some(*gid));
            }
            AccountChange::RemoveGroup { name } => predict_group(store, name, false, None),
            AccountChange::AddUser(user) => predict_new_user(store, user),
            AccountChange::EditUser(edit) => predict_edit(store, edit),
            AccountChange::SetPassword { name, hash } => store.insert(
                FactKey::Accounts(AccountKey::Password(name.clone())),
                Fact::Accounts(AccountFact::Password(Some(hash.clone()))),
            ),
            AccountChange::RemoveUser { name } => predict_removed_user(store, name),
        }
    }
}
