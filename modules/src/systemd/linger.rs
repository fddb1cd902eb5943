//! `linger`: whether logind keeps a user's service manager running without a session.
//!
//! Without lingering, a user's systemd instance (and every user unit in it) is stopped
//! when the user's last session ends and is not started at boot.

use serde::Deserialize;

use crate::accounts::AccountKey;
use crate::change::Change;
use crate::fact::{Fact, FactKey, FactStore};
use crate::systemd::SystemdChange;
use crate::systemd::{SystemdFact, SystemdKey};
use crate::{names, Module, ParamError, Plan, PlanError};

/// Parameters of the `linger` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Linger {
    pub user: String,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

impl Module for Linger {
    const NAME: &'static str = "linger";

    fn validate(&self) -> Result<(), ParamError> {
        Ok(names::user(&self.user)?)
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        vec![
            FactKey::Accounts(AccountKey::User(self.user.clone())),
            FactKey::Systemd(SystemdKey::Linger(self.user.clone())),
        ]
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        if facts.user(&self.user)?.is_none() {
            return Err(PlanError::NoSuchUser {
                user: self.user.clone(),
                hint: crate::CREATE_IT_FIRST,
            });
        }
        let lingering = *facts.linger(&self.user)?;
        Ok(Plan::of(if lingering == self.enabled {
            vec![]
        } else {
            vec![Change::Systemd(SystemdChange::Linger {
                user: self.user.clone(),
                enabled: self.enabled,
            })]
        }))
    }

    fn promises(&self) -> Vec<(FactKey, Fact)> {
        if self.enabled {
            vec![(
                FactKey::Systemd(SystemdKey::Linger(self.user.clone())),
                Fact::Systemd(SystemdFact::Linger(true)),
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountFact;
    use crate::fact::UserInfo;

    fn store(lingering: bool) -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(Some(UserInfo {
                uid: Some(1000),
                home: "/home/deploy".into(),
                shell: "/bin/sh".into(),
                primary_group: "deploy".into(),
                groups: vec![],
            }))),
        );
        store.insert(
            FactKey::Systemd(SystemdKey::Linger("deploy".into())),
            Fact::Systemd(SystemdFact::Linger(lingering)),
        );
        store
    }

    #[test]
    fn linger_is_enabled_once() {
        let linger = Linger {
            user: "deploy".into(),
            enabled: true,
        };
        assert_eq!(
            linger.plan(&store(false)).unwrap().changes[0].describe(),
            "enable lingering for deploy"
        );
        assert!(linger.plan(&store(true)).unwrap().changes.is_empty());
    }
}
