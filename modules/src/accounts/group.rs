//! `group`: a local group, present or absent.

use serde::Deserialize;

use crate::accounts::AccountChange;
use crate::accounts::AccountKey;
use crate::change::Change;
use crate::fact::{FactKey, FactStore};
use crate::{names, Module, ParamError, Plan, PlanError, Presence};

/// Parameters of the `group` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// Create it as a system group (only used when creating it).
    #[serde(default)]
    pub system: bool,
    /// The group ID; `None`: the next free one for a new group, unchanged otherwise.
    #[serde(default)]
    pub gid: Option<u32>,
    #[serde(default)]
    pub state: Presence,
}

impl Module for Group {
    const NAME: &'static str = "group";

    fn validate(&self) -> Result<(), ParamError> {
        names::group(&self.name)?;
        if self.gid.is_some() && self.state == Presence::Absent {
            return Err(ParamError::Invalid {
                param: "gid",
                reason: "makes no sense with state: absent".to_owned(),
            });
        }
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        vec![FactKey::Accounts(AccountKey::Group(self.name.clone()))]
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let current = facts.group(&self.name)?;
        let change = match (self.state, current) {
            (Presence::Present, None) => Some(Change::Accounts(AccountChange::AddGroup {
                name: self.name.clone(),
                system: self.system,
                gid: self.gid,
            })),
            (Presence::Present, Some(info)) => match self.gid {
                // A group only predicted (check mode) has the ID it will be given.
                Some(gid) if info.gid.is_some_and(|current| current != gid) => {
                    Some(Change::Accounts(AccountChange::SetGroupId {
                        name: self.name.clone(),
                        gid,
                    }))
                }
                _ => None,
            },
            (Presence::Absent, Some(_)) => Some(Change::Accounts(AccountChange::RemoveGroup {
                name: self.name.clone(),
            })),
            (Presence::Absent, None) => None,
        };
        Ok(Plan::of(change.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountFact;
    use crate::fact::{Fact, GroupInfo};

    #[test]
    fn group_is_added_once() {
        let group = Group {
            name: "deploy".into(),
            system: false,
            gid: None,
            state: Presence::Present,
        };
        let mut store = FactStore::default();
        store.insert(
            FactKey::Accounts(AccountKey::Group("deploy".into())),
            Fact::Accounts(AccountFact::Group(None)),
        );
        assert_eq!(group.plan(&store).unwrap().changes.len(), 1);
        store.insert(
            FactKey::Accounts(AccountKey::Group("deploy".into())),
            Fact::Accounts(AccountFact::Group(Some(GroupInfo { gid: Some(1001) }))),
        );
        assert!(group.plan(&store).unwrap().changes.is_empty());
    }

    #[test]
    fn gid_is_given_at_creation_and_repaired_after() {
        let group = Group {
            name: "app".into(),
            system: false,
            gid: Some(1500),
            state: Presence::Present,
        };
        let mut store = FactStore::default();
        store.insert(
            FactKey::Accounts(AccountKey::Group("app".into())),
            Fact::Accounts(AccountFact::Group(None)),
        );
        let plan = group.plan(&store).unwrap();
        assert_eq!(
            plan.changes[0].command().argv,
            ["groupadd", "--gid", "1500", "--", "app"]
        );
        plan.changes[0].predict(&mut store);
        assert!(group.plan(&store).unwrap().changes.is_empty());
        store.insert(
            FactKey::Accounts(AccountKey::Group("app".into())),
            Fact::Accounts(AccountFact::Group(Some(GroupInfo { gid: Some(1001) }))),
        );
        let plan = group.plan(&store).unwrap();
        assert_eq!(plan.changes[0].describe(), "set gid 1500 for group app");
        assert_eq!(
            plan.changes[0].command().argv,
            ["groupmod", "--gid", "1500", "--", "app"]
        );
        plan.changes[0].predict(&mut store);
        assert!(group.plan(&store).unwrap().changes.is_empty());
        let absent = Group {
            state: Presence::Absent,
            ..group
        };
        assert!(absent.validate().is_err());
    }
}
