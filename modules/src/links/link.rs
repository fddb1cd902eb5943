//! `link`: a symbolic link at `path` pointing at `target`, or no link there.
//!
//! A link is made or re-pointed atomically (see [`changes`](super::changes)): a
//! `current -> releases/2` switch never leaves `current` missing. A regular file or a
//! directory in the link's place is replaced only with `force: true`; `state: absent`
//! removes a link and nothing else. As for every path, no symbolic link is followed
//! on the way to `path`, and the link itself is never followed.

use serde::Deserialize;

use super::changes::NewLink;
use crate::change::Change;
use crate::fact::{FactKey, FactStore, PathKind};
use crate::links::LinkKey;
use crate::paths::PathChange;
use crate::paths::PathKey;
use crate::{
    check_owner_group, names, owner_group_facts, validate_owner_group, Module, ParamError, Plan,
    PlanError, Presence,
};

/// Parameters of the `link` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub path: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub state: Presence,
    /// Replace a regular file or a directory (with everything in it) found at `path`.
    #[serde(default)]
    pub force: bool,
}

impl Module for Link {
    const NAME: &'static str = "link";

    fn validate(&self) -> Result<(), ParamError> {
        names::file_path(&self.path)?;
        validate_owner_group(self.owner.as_ref(), self.group.as_ref())?;
        match (&self.target, self.state) {
            (None, Presence::Present) => Err(ParamError::Required {
                param: "target",
                when: "when state is present",
            }),
            (Some(_), Presence::Absent) => Err(ParamError::Invalid {
                param: "state",
                reason: "is absent, so target makes no sense".to_owned(),
            }),
            (Some(target), _) if target.is_empty() => Err(ParamError::Invalid {
                param: "target",
                reason: "is empty".to_owned(),
            }),
            (Some(target), _) if target.contains(['\0', '\n']) => Err(ParamError::Invalid {
                param: "target",
                reason: "contains a NUL or newline character".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        let mut keys = vec![
            FactKey::Paths(PathKey::Path(self.path.clone())),
            FactKey::Links(LinkKey::Link(self.path.clone())),
        ];
        if self.state == Presence::Present {
            keys.extend(owner_group_facts(self.owner.as_ref(), self.group.as_ref()));
        }
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let state = facts.path(&self.path)?;
        let remove = Change::Paths(PathChange::Remove {
            path: self.path.clone(),
            kind: state.kind,
        });
        let Some(target) = &self.target else {
            // Absent: a link goes, anything else is not this module's to remove.
            return Ok(match state.kind {
                PathKind::Symlink => Plan::of(vec![remove]),
                PathKind::Missing => Plan::default(),
                kind => Plan {
                    warnings: vec![format!(
                        "{} is a {kind}, not a symbolic link: left in place",
                        self.path
                    )],
                    ..Plan::default()
                },
            });
        };
        check_owner_group(facts, self.owner.as_ref(), self.group.as_ref())?;
        let link = Change::Links(NewLink {
            path: self.path.clone(),
            target: target.clone(),
            owner: self.owner.clone(),
            group: self.group.clone(),
        });
        let refused = || PlanError::WrongKind {
            path: self.path.clone(),
            kind: state.kind,
            expected: "symbolic link (force: true replaces it)",
        };
        Ok(Plan::of(match state.kind {
            PathKind::Missing => vec![link],
            PathKind::Symlink => {
                let owned = |wanted: &Option<String>, actual: &String| {
                    wanted.as_ref().is_none_or(|wanted| wanted == actual)
                };
                let right = facts.link(&self.path)? == Some(target.as_str())
                    && owned(&self.owner, &state.owner)
                    && owned(&self.group, &state.group);
                if right {
                    vec![]
                } else {
                    vec![link]
                }
            }
            // `mv -T` renames a link over a file in one step, not over a directory.
            PathKind::File | PathKind::Other if self.force => vec![link],
            PathKind::Directory if self.force => vec![remove, link],
            PathKind::File | PathKind::Other | PathKind::Directory => return Err(refused()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountFact, AccountKey};
    use crate::fact::{Fact, PathState};
    use crate::links::LinkFact;
    use crate::paths::PathFact;

    fn link(target: &str) -> Link {
        Link {
            path: "/srv/app/current".into(),
            target: Some(target.into()),
            owner: None,
            group: None,
            state: Presence::Present,
            force: false,
        }
    }

    fn facts(kind: PathKind, points_to: Option<&str>) -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Paths(PathKey::Path("/srv/app/current".into())),
            Fact::Paths(PathFact::Path(PathState {
                kind,
                owner: "root".into(),
                group: "root".into(),
                mode: if kind == PathKind::Missing { 0 } else { 0o777 },
            })),
        );
        store.insert(
            FactKey::Links(LinkKey::Link("/srv/app/current".into())),
            Fact::Links(LinkFact::Link(points_to.map(str::to_owned))),
        );
        store
    }

    fn made(target: &str) -> Change {
        Change::Links(NewLink {
            path: "/srv/app/current".into(),
            target: target.into(),
            owner: None,
            group: None,
        })
    }

    #[test]
    fn a_missing_link_is_made() {
        let plan = link("releases/2")
            .plan(&facts(PathKind::Missing, None))
            .unwrap();
        assert_eq!(plan.changes, vec![made("releases/2")]);
        assert_eq!(
            plan.changes[0].describe(),
            "link /srv/app/current -> releases/2"
        );
    }

    #[test]
    fn a_link_to_the_target_is_ok() {
        let store = facts(PathKind::Symlink, Some("releases/2"));
        assert_eq!(link("releases/2").plan(&store).unwrap(), Plan::default());
    }

    #[test]
    fn a_link_elsewhere_is_re_pointed_in_one_change() {
        let store = facts(PathKind::Symlink, Some("releases/1"));
        let plan = link("releases/2").plan(&store).unwrap();
        assert_eq!(plan.changes, vec![made("releases/2")]);
    }

    #[test]
    fn a_link_owned_by_someone_else_is_made_again_with_its_owner() {
        let mut store = facts(PathKind::Symlink, Some("releases/2"));
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(None)),
        );
        let mut wanted = link("releases/2");
        wanted.owner = Some("deploy".into());
        assert_eq!(
            wanted.plan(&store).unwrap_err().to_string(),
            "user deploy does not exist (create it, or install the package that adds it, in an earlier task)"
        );
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(Some(crate::fact::UserInfo {
                uid: Some(1000),
                home: "/home/deploy".into(),
                shell: "/bin/sh".into(),
                primary_group: "deploy".into(),
                groups: vec![],
            }))),
        );
        let plan = wanted.plan(&store).unwrap();
        let Change::Links(new) = &plan.changes[0] else {
            panic!("{plan:?}");
        };
        assert_eq!(new.owner.as_deref(), Some("deploy"));
    }

    #[test]
    fn a_real_directory_is_refused_without_force() {
        let store = facts(PathKind::Directory, None);
        assert_eq!(
            link("releases/2").plan(&store).unwrap_err().to_string(),
            "/srv/app/current is a directory; expected a symbolic link (force: true replaces it)"
        );
        let mut forced = link("releases/2");
        forced.force = true;
        assert_eq!(
            forced.plan(&store).unwrap().changes,
            vec![
                Change::Paths(PathChange::Remove {
                    path: "/srv/app/current".into(),
                    kind: PathKind::Directory,
                }),
                made("releases/2"),
            ]
        );
    }

    #[test]
    fn a_regular_file_is_replaced_in_one_rename_with_force() {
        let store = facts(PathKind::File, None);
        assert!(link("releases/2").plan(&store).is_err());
        let mut forced = link("releases/2");
        forced.force = true;
        assert_eq!(
            forced.plan(&store).unwrap().changes,
            vec![made("releases/2")]
        );
    }

    #[test]
    fn absent_removes_only_a_link() {
        let absent = Link {
            target: None,
            state: Presence::Absent,
            ..link("x")
        };
        assert_eq!(
            absent
                .plan(&facts(PathKind::Symlink, Some("releases/1")))
                .unwrap()
                .changes,
            vec![Change::Paths(PathChange::Remove {
                path: "/srv/app/current".into(),
                kind: PathKind::Symlink,
            })]
        );
        assert_eq!(
            absent.plan(&facts(PathKind::Missing, None)).unwrap(),
            Plan::default()
        );
        let kept = absent.plan(&facts(PathKind::Directory, None)).unwrap();
        assert!(kept.changes.is_empty());
        assert_eq!(
            kept.warnings,
            ["/srv/app/current is a directory, not a symbolic link: left in place"]
        );
    }

    #[test]
    fn check_mode_sees_the_link_a_plan_makes() {
        let mut store = facts(PathKind::Symlink, Some("releases/1"));
        made("releases/2").predict(&mut store);
        assert_eq!(link("releases/2").plan(&store).unwrap(), Plan::default());
    }

    #[test]
    fn parameters_are_checked_before_any_host() {
        let mut no_target = link("x");
        no_target.target = None;
        assert_eq!(
            no_target.validate().unwrap_err().to_string(),
            "`target` is required when state is present"
        );
        assert!(link("bad\nname").validate().is_err());
        let mut relative = link("x");
        relative.path = "srv/current".into();
        assert!(relative.validate().is_err());
    }
}
