//! `directory`: a directory with owner, group and mode, or its (recursive) absence.
//!
//! Missing parents are created like `mkdir -p`; owner, group and mode apply to the
//! directory itself. Attributes not given are left as they are.

use serde::Deserialize;

use crate::change::{Attributes, Change};
use crate::fact::{FactKey, FactStore, PathKind};
use crate::paths::PathChange;
use crate::paths::PathKey;
use crate::{
    check_owner_group, names, owner_group_facts, validate_owner_group, Mode, Module, ParamError,
    Plan, PlanError, Presence,
};

/// Parameters of the `directory` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub path: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub state: Presence,
}

impl Module for Directory {
    const NAME: &'static str = "directory";

    fn validate(&self) -> Result<(), ParamError> {
        names::path(&self.path)?;
        validate_owner_group(self.owner.as_ref(), self.group.as_ref())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        let mut keys = vec![FactKey::Paths(PathKey::Path(self.path.clone()))];
        if self.state == Presence::Present {
            keys.extend(owner_group_facts(self.owner.as_ref(), self.group.as_ref()));
        }
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let state = facts.path(&self.path)?;
        let wrong_kind = || PlanError::WrongKind {
            path: self.path.clone(),
            kind: state.kind,
            expected: "directory",
        };
        if self.state == Presence::Absent {
            return match state.kind {
                PathKind::Missing => Ok(Plan::default()),
                PathKind::Directory => Ok(Plan::of(vec![Change::Paths(PathChange::Remove {
                    path: self.path.clone(),
                    kind: state.kind,
                })])),
                _ => Err(wrong_kind()),
            };
        }
        check_owner_group(facts, self.owner.as_ref(), self.group.as_ref())?;
        let wanted = Attributes {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode.map(|mode| mode.0),
        };
        match state.kind {
            PathKind::Missing => Ok(Plan::of(vec![Change::Paths(PathChange::CreateDirectory {
                path: self.path.clone(),
                attributes: wanted,
            })])),
            PathKind::Directory => Ok(Plan::of(
                wanted
                    .differing_from(state)
                    .map(|attributes| {
                        Change::Paths(PathChange::SetAttributes {
                            path: self.path.clone(),
                            attributes,
                        })
                    })
                    .into_iter()
                    .collect(),
            )),
            _ => Err(wrong_kind()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::{Fact, PathState};
    use crate::paths::PathFact;

    fn directory(mode: Option<u32>) -> Directory {
        Directory {
            path: "/opt/app/current".into(),
            owner: None,
            group: None,
            mode: mode.map(Mode),
            state: Presence::Present,
        }
    }

    fn facts(state: PathState) -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Paths(PathKey::Path("/opt/app/current".into())),
            Fact::Paths(PathFact::Path(state)),
        );
        store
    }

    #[test]
    fn missing_directory_is_created() {
        let plan = directory(Some(0o2775))
            .plan(&facts(PathState::missing()))
            .unwrap();
        assert_eq!(
            plan.changes[0].describe(),
            "create directory /opt/app/current"
        );
    }

    #[test]
    fn existing_directory_with_right_mode_is_ok() {
        let state = PathState {
            kind: PathKind::Directory,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o755,
        };
        assert!(directory(Some(0o755))
            .plan(&facts(state.clone()))
            .unwrap()
            .changes
            .is_empty());
        assert_eq!(
            directory(Some(0o750)).plan(&facts(state)).unwrap().changes[0].describe(),
            "set mode 0750 on /opt/app/current"
        );
    }

    #[test]
    fn file_in_the_way_is_an_error() {
        let state = PathState {
            kind: PathKind::File,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
        };
        assert!(directory(None).plan(&facts(state)).is_err());
    }
}
