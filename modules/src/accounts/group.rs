//! `group`: a local group, present or absent.

use serde::{Deserialize, Serialize};

use crate::accounts::AccountChange;
use crate::accounts::AccountKey;
use crate::change::Change;
use crate::fact::{FactKey, FactStore};
use crate::{names, Module, ParamError, Plan, PlanError, Presence};

/// Parameters of the `group` module.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// Create it as a system group (only used when creating it).
    #[serde(default)]
    pub system: bool,
    #[serde(default)]
    pub state: Presence,
}

impl Module for Group {
    const NAME: &'static str = "group";

    fn validate(&self) -> Result<(), ParamError> {
        Ok(names::group(&self.name)?)
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        vec![FactKey::Accounts(AccountKey::Group(self.name.clone()))]
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let exists = facts.group(&self.name)?.is_some();
        let change = match (self.state, exists) {
            (Presence::Present, false) => Some(Change::Accounts(AccountChange::AddGroup {
                name: self.name.clone(),
                system: self.system,
            })),
            (Presence::Absent, true) => Some(Change::Accounts(AccountChange::RemoveGroup {
                name: self.name.clone(),
            })),
            _ => None,
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
}
