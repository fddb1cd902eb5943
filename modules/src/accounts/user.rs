//! `user`: a local user account, present (with shell, home, supplementary groups) or
//! absent.
//!
//! A new account gets a home directory and, as Debian's `useradd` does, a primary group
//! of the same name. `groups` is the exact list of supplementary groups (as Ansible's
//! `append: false`); leave it out to not manage them. Removing an account keeps its home.

use serde::Deserialize;

use crate::accounts::AccountChange;
use crate::accounts::AccountKey;
use crate::change::Attributes;
use crate::change::{Change, NewUser, UserEdit};
use crate::fact::{FactKey, FactStore, PathKind, UserInfo};
use crate::file::{new_file, update_file};
use crate::paths::{PathChange, PathKey};
use crate::{names, Module, ParamError, Plan, PlanError, Presence, CREATE_IT_FIRST};

/// Parameters of the `user` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// The user ID; `None`: the next free one for a new account, unchanged otherwise.
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    /// Create it as a system account (only used when creating it).
    #[serde(default)]
    pub system: bool,
    /// The password as a crypt hash (`$y$...`, `$6$...`), or `!`/`*` for none; a secret.
    #[serde(default)]
    pub password: Option<String>,
    /// The public keys that may log in as the user, one per line of
    /// `~/.ssh/authorized_keys`; `None`: the file is not managed.
    #[serde(default)]
    pub authorized_keys: Option<Vec<String>>,
    /// `true`: the file holds exactly `authorized_keys`; `false`: they are added to it.
    #[serde(default = "exclusive_by_default")]
    pub authorized_keys_exclusive: bool,
    /// Whether a new account gets its home directory (only used when creating it).
    #[serde(default = "create_home_by_default")]
    pub create_home: bool,
    #[serde(default)]
    pub state: Presence,
}

fn create_home_by_default() -> bool {
    true
}

fn exclusive_by_default() -> bool {
    true
}

impl User {
    fn sorted_groups(&self) -> Option<Vec<String>> {
        self.groups.as_ref().map(|groups| {
            let mut groups = groups.clone();
            groups.sort();
            groups.dedup();
            groups
        })
    }
}

impl Module for User {
    const NAME: &'static str = "user";
    const SECRET_PARAMS: &'static [&'static str] = &["password"];

    fn validate(&self) -> Result<(), ParamError> {
        names::user(&self.name)?;
        if let Some(shell) = &self.shell {
            names::passwd_path(shell)?;
        }
        if let Some(home) = &self.home {
            names::passwd_path(home)?;
        }
        for group in self.groups.iter().flatten() {
            names::group(group)?;
        }
        for key in self.authorized_keys.iter().flatten() {
            if key.trim().is_empty() || key.contains(['\n', '\r', '\0']) {
                return Err(ParamError::Invalid {
                    param: "authorized_keys",
                    reason: "entries must be one non-empty line each (a public key, as ssh-keygen writes it in a .pub file)".to_owned(),
                });
            }
        }
        if let Some(hash) = &self.password {
            // The value is never quoted: a mistyped hash may be a real password.
            let hash_like = hash.starts_with(['$', '!', '*'])
                && !hash.contains([':', '\n', '\r', '\0'])
                && !hash.is_empty();
            if !hash_like {
                return Err(ParamError::Invalid {
                    param: "password",
                    reason: "must be a crypt hash as in /etc/shadow (e.g. from `mkpasswd` or `openssl passwd -6`), or ! or * for no password; a clear-text password is refused".to_owned(),
                });
            }
        }
        if self.state == Presence::Absent {
            for (param, given) in [
                ("password", self.password.is_some()),
                ("uid", self.uid.is_some()),
                ("authorized_keys", self.authorized_keys.is_some()),
            ] {
                if given {
                    return Err(ParamError::Invalid {
                        param,
                        reason: "makes no sense with state: absent".to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    fn facts(&self, known: &FactStore) -> Vec<FactKey> {
        let mut keys = vec![FactKey::Accounts(AccountKey::User(self.name.clone()))];
        if let (Some(_), Ok(current)) = (&self.authorized_keys, known.user(&self.name)) {
            let (home, ssh, file) = self.key_paths(current.as_ref());
            keys.extend([
                PathKey::Path(home).into(),
                PathKey::Path(ssh).into(),
                PathKey::Path(file.clone()).into(),
                PathKey::Content(file).into(),
            ]);
        }
        if self.state == Presence::Present && self.password.is_some() {
            keys.push(AccountKey::Password(self.name.clone()).into());
        }
        if self.state == Presence::Present {
            keys.extend(
                self.groups
                    .iter()
                    .flatten()
                    .map(|group| FactKey::Accounts(AccountKey::Group(group.clone()))),
            );
        }
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let mut plan = self.plan_account(facts)?;
        if self.state == Presence::Absent {
            return Ok(plan);
        }
        if let Some(hash) = &self.password {
            if facts.password(&self.name)? != Some(hash.as_str()) {
                plan.changes
                    .push(Change::Accounts(AccountChange::SetPassword {
                        name: self.name.clone(),
                        hash: hash.clone(),
                    }));
            }
        }
        if let Some(keys) = &self.authorized_keys {
            plan.changes.extend(self.plan_keys(keys, facts)?);
        }
        Ok(plan)
    }
}

impl User {
    /// The home directory, `~/.ssh` and `~/.ssh/authorized_keys` of the account as this
    /// task leaves it (`current`: the account now, if it exists).
    fn key_paths(&self, current: Option<&UserInfo>) -> (String, String, String) {
        let home = self
            .home
            .clone()
            .or_else(|| current.map(|info| info.home.clone()))
            .unwrap_or_else(|| format!("/home/{}", self.name));
        let ssh = format!("{}/.ssh", home.trim_end_matches('/'));
        let file = format!("{ssh}/authorized_keys");
        (home, ssh, file)
    }

    /// `~/.ssh` (0700) and `~/.ssh/authorized_keys` (0600), the user's own, holding
    /// `keys`: exactly them, or, not exclusive, the lines already there plus those
    /// missing.
    fn plan_keys(&self, keys: &[String], facts: &FactStore) -> Result<Vec<Change>, PlanError> {
        let current = facts.user(&self.name)?.as_ref();
        let (home, ssh, file) = self.key_paths(current);
        let group = current.map_or_else(|| self.name.clone(), |info| info.primary_group.clone());
        let owned = |mode| Attributes {
            owner: Some(self.name.clone()),
            group: Some(group.clone()),
            mode: Some(mode),
        };
        let home_made = current.is_none() && self.create_home;
        if !home_made && facts.path(&home)?.kind != PathKind::Directory {
            return Err(PlanError::NoHome {
                user: self.name.clone(),
                home,
            });
        }
        let mut changes = Vec::new();
        let ssh_state = facts.path(&ssh)?;
        match ssh_state.kind {
            PathKind::Missing => changes.push(Change::Paths(PathChange::CreateDirectory {
                path: ssh,
                attributes: owned(0o700),
            })),
            PathKind::Directory => {
                if let Some(attributes) = owned(0o700).differing_from(ssh_state) {
                    changes.push(Change::Paths(PathChange::SetAttributes {
                        path: ssh,
                        attributes,
                    }));
                }
            }
            kind => {
                return Err(PlanError::WrongKind {
                    path: ssh,
                    kind,
                    expected: "directory",
                })
            }
        }
        let state = facts.path(&file)?;
        let before = facts.content(&file)?.as_deref();
        let mut content = Vec::new();
        if !self.authorized_keys_exclusive {
            if let Some(before) = before {
                content.extend_from_slice(before);
                if !before.is_empty() && !before.ends_with(b"\n") {
                    content.push(b'\n');
                }
            }
        }
        for key in keys {
            let present = !self.authorized_keys_exclusive
                && before.is_some_and(|before| {
                    before
                        .split(|&b| b == b'\n')
                        .any(|line| line.trim_ascii() == key.trim().as_bytes())
                });
            if !present {
                content.extend_from_slice(key.trim().as_bytes());
                content.push(b'\n');
            }
        }
        let plan = match state.kind {
            PathKind::Missing => new_file(&file, content, owned(0o600)),
            PathKind::File => update_file(&file, state, before, Some(&content), owned(0o600)),
            kind => {
                return Err(PlanError::WrongKind {
                    path: file,
                    kind,
                    expected: "regular file",
                })
            }
        };
        changes.extend(plan.changes);
        Ok(changes)
    }

    fn plan_account(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let current = facts.user(&self.name)?;
        if self.state == Presence::Absent {
            return Ok(Plan::of(
                current
                    .as_ref()
                    .map(|_| {
                        Change::Accounts(AccountChange::RemoveUser {
                            name: self.name.clone(),
                        })
                    })
                    .into_iter()
                    .collect(),
            ));
        }
        for group in self.groups.iter().flatten() {
            if facts.group(group)?.is_none() {
                return Err(PlanError::NoSuchGroup {
                    group: group.clone(),
                    hint: CREATE_IT_FIRST,
                });
            }
        }
        let groups = self.sorted_groups();
        let Some(current) = current else {
            return Ok(Plan::of(vec![Change::Accounts(AccountChange::AddUser(
                NewUser {
                    name: self.name.clone(),
                    system: self.system,
                    uid: self.uid,
                    create_home: self.create_home,
                    home: self.home.clone(),
                    shell: self.shell.clone(),
                    groups: groups.unwrap_or_default(),
                },
            ))]));
        };
        // `id` lists the primary group among the groups; so may the playbook. It is not
        // a supplementary group either way.
        let groups = groups.map(|groups| {
            groups
                .into_iter()
                .filter(|group| *group != current.primary_group)
                .collect::<Vec<_>>()
        });
        let edit = UserEdit {
            name: self.name.clone(),
            // An account only predicted (check mode) gets the ID it is created with.
            uid: self
                .uid
                .filter(|uid| current.uid.is_some_and(|current| current != *uid)),
            home: self.home.clone().filter(|home| *home != current.home),
            shell: self.shell.clone().filter(|shell| *shell != current.shell),
            groups: groups.filter(|groups| *groups != current.groups),
        };
        if edit.uid.is_none()
            && edit.home.is_none()
            && edit.shell.is_none()
            && edit.groups.is_none()
        {
            Ok(Plan::default())
        } else {
            Ok(Plan::of(vec![Change::Accounts(AccountChange::EditUser(
                edit,
            ))]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountFact;
    use crate::fact::{Fact, GroupInfo, UserInfo};

    fn deploy() -> User {
        User {
            name: "deploy".into(),
            uid: None,
            shell: Some("/bin/bash".into()),
            home: None,
            groups: Some(vec!["adm".into()]),
            system: false,
            password: None,
            authorized_keys: None,
            authorized_keys_exclusive: true,
            create_home: true,
            state: Presence::Present,
        }
    }

    fn store(user: Option<UserInfo>) -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(user)),
        );
        store.insert(
            FactKey::Accounts(AccountKey::Group("adm".into())),
            Fact::Accounts(AccountFact::Group(Some(GroupInfo { gid: Some(4) }))),
        );
        store
    }

    fn info(shell: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            uid: Some(1000),
            home: "/home/deploy".into(),
            shell: shell.into(),
            primary_group: "deploy".into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn missing_user_is_created() {
        let plan = deploy().plan(&store(None)).unwrap();
        assert_eq!(plan.changes[0].describe(), "create user deploy");
    }

    #[test]
    fn matching_user_is_ok() {
        assert!(deploy()
            .plan(&store(Some(info("/bin/bash", &["adm"]))))
            .unwrap()
            .changes
            .is_empty());
    }

    #[test]
    fn only_drifted_fields_are_edited() {
        let plan = deploy()
            .plan(&store(Some(info("/bin/sh", &["adm"]))))
            .unwrap();
        assert_eq!(
            plan.changes[0].describe(),
            "set shell /bin/bash for user deploy"
        );
    }

    #[test]
    fn primary_group_listed_in_groups_is_not_drift() {
        let mut user = deploy();
        user.groups = Some(vec!["adm".into(), "deploy".into()]);
        let mut facts = store(Some(info("/bin/bash", &["adm"])));
        facts.insert(
            FactKey::Accounts(AccountKey::Group("deploy".into())),
            Fact::Accounts(AccountFact::Group(Some(GroupInfo { gid: Some(1000) }))),
        );
        assert!(user.plan(&facts).unwrap().changes.is_empty());
    }

    #[test]
    fn missing_supplementary_group_is_a_clear_error() {
        let mut user = deploy();
        user.groups = Some(vec!["docker".into()]);
        let mut facts = store(None);
        facts.insert(
            FactKey::Accounts(AccountKey::Group("docker".into())),
            Fact::Accounts(AccountFact::Group(None)),
        );
        assert_eq!(
            user.plan(&facts).unwrap_err().to_string(),
            "group docker does not exist (create it, or install the package that adds it, in an earlier task)"
        );
    }

    #[test]
    fn uid_and_create_home_are_given_at_creation_and_uid_repaired_after() {
        let mut user = deploy();
        user.uid = Some(1500);
        user.create_home = false;
        let mut facts = store(None);
        let plan = user.plan(&facts).unwrap();
        assert_eq!(
            plan.changes[0].command().argv,
            [
                "useradd",
                "--no-create-home",
                "--uid",
                "1500",
                "--shell",
                "/bin/bash",
                "--groups",
                "adm",
                "--",
                "deploy"
            ]
        );
        plan.changes[0].predict(&mut facts);
        assert!(user.plan(&facts).unwrap().changes.is_empty());
        // No home directory is predicted.
        assert!(facts.path("/home/deploy").is_err());
        let plan = user
            .plan(&store(Some(info("/bin/bash", &["adm"]))))
            .unwrap();
        assert_eq!(plan.changes[0].describe(), "set uid 1500 for user deploy");
        assert_eq!(
            plan.changes[0].command().argv,
            ["usermod", "--uid", "1500", "--", "deploy"]
        );
    }

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx deploy@laptop";
    const OTHER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOt old@desktop";

    fn with_keys() -> User {
        User {
            authorized_keys: Some(vec![KEY.into()]),
            ..deploy()
        }
    }

    fn path(store: &mut FactStore, path: &str, kind: PathKind, mode: u32) {
        let state = if kind == PathKind::Missing {
            crate::fact::PathState::missing()
        } else {
            crate::fact::PathState {
                kind,
                owner: "deploy".into(),
                group: "deploy".into(),
                mode,
            }
        };
        store.insert(
            PathKey::Path(path.into()).into(),
            crate::paths::PathFact::Path(state).into(),
        );
    }

    /// An account whose `~/.ssh/authorized_keys` holds `content` (`None`: no `.ssh`).
    fn keyed(content: Option<&str>) -> FactStore {
        let mut store = store(Some(info("/bin/bash", &["adm"])));
        path(&mut store, "/home/deploy", PathKind::Directory, 0o755);
        let (ssh, file) = match content {
            Some(_) => (PathKind::Directory, PathKind::File),
            None => (PathKind::Missing, PathKind::Missing),
        };
        path(&mut store, "/home/deploy/.ssh", ssh, 0o700);
        path(&mut store, "/home/deploy/.ssh/authorized_keys", file, 0o600);
        store.insert(
            PathKey::Content("/home/deploy/.ssh/authorized_keys".into()).into(),
            crate::paths::PathFact::Content(content.map(|c| c.as_bytes().to_vec())).into(),
        );
        store
    }

    fn described(plan: &Plan) -> Vec<String> {
        plan.changes.iter().map(Change::describe).collect()
    }

    #[test]
    fn authorized_keys_are_the_user_s_own_file_in_a_private_ssh_directory() {
        let mut store = keyed(None);
        assert!(Module::facts(&with_keys(), &store)
            .contains(&PathKey::Content("/home/deploy/.ssh/authorized_keys".into()).into()));
        let plan = with_keys().plan(&store).unwrap();
        assert_eq!(
            described(&plan),
            [
                "create directory /home/deploy/.ssh",
                "create /home/deploy/.ssh/authorized_keys"
            ]
        );
        let Change::Paths(PathChange::WriteFile(write)) = &plan.changes[1] else {
            panic!("{plan:?}")
        };
        assert_eq!(write.content, format!("{KEY}\n").into_bytes());
        assert_eq!(
            (write.owner.as_deref(), write.group.as_deref(), write.mode),
            (Some("deploy"), Some("deploy"), 0o600)
        );
        for change in &plan.changes {
            change.predict(&mut store);
        }
        assert_eq!(with_keys().plan(&store).unwrap(), Plan::default());
    }

    #[test]
    fn authorized_keys_are_exclusive_unless_told_otherwise() {
        let both = format!("{OTHER}\n{KEY}\n");
        let plan = with_keys().plan(&keyed(Some(&both))).unwrap();
        assert_eq!(
            described(&plan),
            ["update /home/deploy/.ssh/authorized_keys"]
        );
        let adding = User {
            authorized_keys_exclusive: false,
            ..with_keys()
        };
        assert_eq!(adding.plan(&keyed(Some(&both))).unwrap(), Plan::default());
        let plan = adding.plan(&keyed(Some(OTHER))).unwrap();
        let Change::Paths(PathChange::WriteFile(write)) = &plan.changes[0] else {
            panic!("{plan:?}")
        };
        assert_eq!(write.content, both.into_bytes());
    }

    #[test]
    fn loose_ssh_directory_is_tightened_and_a_missing_home_is_refused() {
        let mut store = keyed(Some(&format!("{KEY}\n")));
        path(&mut store, "/home/deploy/.ssh", PathKind::Directory, 0o755);
        assert_eq!(
            described(&with_keys().plan(&store).unwrap()),
            ["set mode 0700 on /home/deploy/.ssh"]
        );
        path(&mut store, "/home/deploy", PathKind::Missing, 0);
        assert_eq!(
            with_keys().plan(&store).unwrap_err().to_string(),
            "the home directory /home/deploy of deploy does not exist, so its authorized_keys cannot be written (create_home: true creates it with a new account)"
        );
    }

    #[test]
    fn a_new_account_gets_its_keys_in_the_same_task() {
        let mut store = keyed(None);
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(None)),
        );
        path(&mut store, "/home/deploy", PathKind::Missing, 0);
        let plan = with_keys().plan(&store).unwrap();
        assert_eq!(
            described(&plan),
            [
                "create user deploy",
                "create directory /home/deploy/.ssh",
                "create /home/deploy/.ssh/authorized_keys"
            ]
        );
        for change in &plan.changes {
            change.predict(&mut store);
        }
        assert_eq!(with_keys().plan(&store).unwrap(), Plan::default());
        let bad = User {
            authorized_keys: Some(vec!["ssh-ed25519 AAAA\nssh-rsa BBBB".into()]),
            ..deploy()
        };
        assert!(bad.validate().is_err());
    }

    const HASH: &str = "$y$j9T$Wc2mPZt1sQ$0nZcRrqV3lYp9xyEJkY8i0bsvH0Kc0qoVqCk8lA7xQ8";

    #[test]
    fn a_password_hash_is_set_through_stdin_and_never_shown() {
        let user = User {
            password: Some(HASH.into()),
            ..deploy()
        };
        assert_eq!(User::SECRET_PARAMS, ["password"]);
        assert_eq!(crate::secret_params("user"), ["password"]);
        let mut facts = store(Some(info("/bin/bash", &["adm"])));
        assert!(
            Module::facts(&user, &facts).contains(&AccountKey::Password("deploy".into()).into())
        );
        let key = FactKey::from(AccountKey::Password("deploy".into()));
        assert!(key.domain().unwrap().output_is_secret());
        assert_eq!(
            key.domain()
                .unwrap()
                .parse(&format!("deploy:{HASH}:19700:0:99999:7:::\n")),
            Some(Fact::Accounts(AccountFact::Password(Some(HASH.into()))))
        );
        facts.insert(key.clone(), AccountFact::Password(Some("!".into())).into());
        let plan = user.plan(&facts).unwrap();
        assert_eq!(described(&plan), ["set password for user deploy"]);
        let command = plan.changes[0].command();
        assert_eq!(command.argv, ["chpasswd", "--encrypted"]);
        assert!(!format!("{:?}", plan.changes[0].describe()).contains(HASH));
        assert_eq!(command.stdin, format!("deploy:{HASH}\n").into_bytes());
        plan.changes[0].predict(&mut facts);
        assert_eq!(user.plan(&facts).unwrap(), Plan::default());
    }

    #[test]
    fn a_clear_text_password_is_refused_without_being_quoted() {
        let user = User {
            password: Some("hunter2".into()),
            ..deploy()
        };
        let error = user.validate().unwrap_err().to_string();
        assert!(
            error.starts_with("`password` must be a crypt hash"),
            "{error}"
        );
        assert!(!error.contains("hunter2"));
    }

    #[test]
    fn injection_in_name_is_rejected() {
        let mut user = deploy();
        user.name = "x; touch /tmp/pwned".into();
        assert!(user.validate().is_err());
    }
}
