//! `user`: a local user account, present (with shell, home, supplementary groups) or
//! absent.
//!
//! A new account gets a home directory and, as Debian's `useradd` does, a primary group
//! of the same name. `groups` is the exact list of supplementary groups (as Ansible's
//! `append: false`); leave it out to not manage them. Removing an account keeps its home.

use serde::{Deserialize, Serialize};

use crate::accounts::AccountChange;
use crate::accounts::AccountKey;
use crate::change::{Change, NewUser, UserEdit};
use crate::fact::{FactKey, FactStore};
use crate::{names, Module, ParamError, Plan, PlanError, Presence, CREATE_IT_FIRST};

/// Parameters of the `user` module.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Create it as a system account (only used when creating it).
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub state: Presence,
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
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        let mut keys = vec![FactKey::Accounts(AccountKey::User(self.name.clone()))];
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
            home: self.home.clone().filter(|home| *home != current.home),
            shell: self.shell.clone().filter(|shell| *shell != current.shell),
            groups: groups.filter(|groups| *groups != current.groups),
        };
        if edit.home.is_none() && edit.shell.is_none() && edit.groups.is_none() {
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
            shell: Some("/bin/bash".into()),
            home: None,
            groups: Some(vec!["adm".into()]),
            system: false,
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
            "group docker does not exist (create it in an earlier task)"
        );
    }

    #[test]
    fn injection_in_name_is_rejected() {
        let mut user = deploy();
        user.name = "x; touch /tmp/pwned".into();
        assert!(user.validate().is_err());
    }
}
