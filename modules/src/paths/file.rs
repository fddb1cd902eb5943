//! `file`: a regular file's content, owner, group and mode, or its absence.
//!
//! Content comes from `content`, `src` (a file beside the playbook, any bytes) or
//! `template` (rendered); the engine resolves the last two into `content` before
//! planning. A new file without `mode` gets 0644; an existing file keeps the
//! attributes not given.

use serde::Deserialize;

use crate::change::{Attributes, Change, FileWrite};
use crate::fact::{FactKey, FactStore, PathKind, PathState};
use crate::paths::PathChange;
use crate::paths::PathKey;
use crate::{
    check_owner_group, content_sources, names, owner_group_facts, validate_owner_group, Content,
    Mode, Module, ParamError, Plan, PlanError, Presence,
};

/// Parameters of the `file` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub src: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub state: Presence,
}

impl Module for File {
    const NAME: &'static str = "file";

    fn validate(&self) -> Result<(), ParamError> {
        names::file_path(&self.path)?;
        validate_owner_group(self.owner.as_ref(), self.group.as_ref())?;
        let sources = content_sources(
            self.content.as_ref().map(|_| &self.path),
            self.src.as_ref(),
            self.template.as_ref(),
        );
        if sources > 1 {
            return Err(ParamError::AtMostOne {
                options: "content, src, template",
            });
        }
        if self.state == Presence::Absent && sources > 0 {
            return Err(ParamError::Invalid {
                param: "state",
                reason: "is absent, so content, src and template make no sense".to_owned(),
            });
        }
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        let mut keys = vec![FactKey::Paths(PathKey::Path(self.path.clone()))];
        if self.state == Presence::Present {
            if self.content.is_some() {
                keys.push(FactKey::Paths(PathKey::Content(self.path.clone())));
            }
            keys.extend(owner_group_facts(self.owner.as_ref(), self.group.as_ref()));
        }
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let state = facts.path(&self.path)?;
        let wrong_kind = || PlanError::WrongKind {
            path: self.path.clone(),
            kind: state.kind,
            expected: "regular file",
        };
        if self.state == Presence::Absent {
            return match state.kind {
                PathKind::Missing => Ok(Plan::default()),
                PathKind::File | PathKind::Symlink => {
                    Ok(Plan::of(vec![Change::Paths(PathChange::Remove {
                        path: self.path.clone(),
                        kind: state.kind,
                    })]))
                }
                PathKind::Directory | PathKind::Other => Err(wrong_kind()),
            };
        }
        check_owner_group(facts, self.owner.as_ref(), self.group.as_ref())?;
        let wanted = Attributes {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode.map(|mode| mode.0),
        };
        match state.kind {
            PathKind::Missing => {
                let Some(content) = &self.content else {
                    return Err(PlanError::NoContent {
                        path: self.path.clone(),
                    });
                };
                Ok(new_file(&self.path, content.0.clone(), wanted))
            }
            PathKind::File => {
                // Without content only the attributes are managed: the bytes are not read.
                let current = match &self.content {
                    Some(_) => facts.content(&self.path)?.as_deref(),
                    None => None,
                };
                Ok(update_file(
                    &self.path,
                    state,
                    current,
                    self.content.as_ref().map(|content| content.0.as_slice()),
                    wanted,
                ))
            }
            PathKind::Directory | PathKind::Symlink | PathKind::Other => Err(wrong_kind()),
        }
    }
}

/// The plan that creates `path` with `content` and the `wanted` attributes (mode 0644
/// when none is given).
pub(crate) fn new_file(path: &str, content: Vec<u8>, wanted: Attributes) -> Plan {
    Plan::of(vec![Change::Paths(PathChange::WriteFile(FileWrite {
        path: path.to_owned(),
        content,
        before: None,
        owner: wanted.owner,
        group: wanted.group,
        mode: wanted.mode.unwrap_or(0o644),
        validator: None,
        secret: false,
    }))])
}

/// The plan that brings the existing regular file `path` (in `state`, holding
/// `current`) to `content` (`None`: whatever it holds) and the `wanted` attributes: one
/// atomic write that keeps the attributes not given when the content differs, otherwise
/// only the attributes that differ.
pub(crate) fn update_file(
    path: &str,
    state: &PathState,
    current: Option<&[u8]>,
    content: Option<&[u8]>,
    wanted: Attributes,
) -> Plan {
    match content {
        Some(content) if current != Some(content) => {
            Plan::of(vec![Change::Paths(PathChange::WriteFile(FileWrite {
                path: path.to_owned(),
                content: content.to_vec(),
                before: current.map(<[u8]>::to_vec),
                owner: Some(wanted.owner.unwrap_or_else(|| state.owner.clone())),
                group: Some(wanted.group.unwrap_or_else(|| state.group.clone())),
                mode: wanted.mode.unwrap_or(state.mode),
                validator: None,
                secret: false,
            }))])
        }
        _ => Plan::of(
            wanted
                .differing_from(state)
                .map(|attributes| {
                    Change::Paths(PathChange::SetAttributes {
                        path: path.to_owned(),
                        attributes,
                    })
                })
                .into_iter()
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountFact, AccountKey};
    use crate::fact::{Fact, PathState, UserInfo};
    use crate::paths::PathFact;

    fn file(content: Option<&str>) -> File {
        File {
            path: "/etc/app.conf".into(),
            content: content.map(|c| Content(c.as_bytes().to_vec())),
            src: None,
            template: None,
            owner: None,
            group: None,
            mode: None,
            state: Presence::Present,
        }
    }

    fn facts(kind: PathKind, content: Option<&str>) -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Paths(PathKey::Path("/etc/app.conf".into())),
            Fact::Paths(PathFact::Path(PathState {
                kind,
                owner: "root".into(),
                group: "root".into(),
                mode: 0o600,
            })),
        );
        store.insert(
            FactKey::Paths(PathKey::Content("/etc/app.conf".into())),
            Fact::Paths(PathFact::Content(content.map(|c| c.as_bytes().to_vec()))),
        );
        store
    }

    #[test]
    fn missing_file_is_created_0644() {
        let plan = file(Some("a\n"))
            .plan(&facts(PathKind::Missing, None))
            .unwrap();
        let [Change::Paths(PathChange::WriteFile(write))] = plan.changes.as_slice() else {
            panic!("{plan:?}")
        };
        assert_eq!((write.mode, write.before.as_ref()), (0o644, None));
    }

    #[test]
    fn same_content_is_ok_and_keeps_attributes() {
        let plan = file(Some("a\n"))
            .plan(&facts(PathKind::File, Some("a\n")))
            .unwrap();
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn changed_content_keeps_existing_attributes() {
        let plan = file(Some("b\n"))
            .plan(&facts(PathKind::File, Some("a\n")))
            .unwrap();
        let [Change::Paths(PathChange::WriteFile(write))] = plan.changes.as_slice() else {
            panic!("{plan:?}")
        };
        assert_eq!(write.mode, 0o600);
        assert_eq!(write.owner.as_deref(), Some("root"));
        assert_eq!(write.before.as_deref(), Some(&b"a\n"[..]));
    }

    #[test]
    fn only_differing_attributes_are_set() {
        let mut wanted = file(Some("a\n"));
        wanted.mode = Some(Mode(0o640));
        wanted.owner = Some("root".into());
        let mut store = facts(PathKind::File, Some("a\n"));
        store.insert(
            FactKey::Accounts(AccountKey::User("root".into())),
            Fact::Accounts(AccountFact::User(Some(UserInfo {
                uid: Some(0),
                home: "/root".into(),
                shell: "/bin/sh".into(),
                primary_group: "root".into(),
                groups: vec![],
            }))),
        );
        let plan = wanted.plan(&store).unwrap();
        assert_eq!(
            plan.changes,
            [Change::Paths(PathChange::SetAttributes {
                path: "/etc/app.conf".into(),
                attributes: Attributes {
                    owner: None,
                    group: None,
                    mode: Some(0o640)
                }
            })]
        );
    }

    #[test]
    fn attributes_alone_are_managed_without_reading_the_content() {
        let mut wanted = file(None);
        wanted.mode = Some(Mode(0o640));
        let mut store = FactStore::default();
        store.insert(
            FactKey::Paths(PathKey::Path("/etc/app.conf".into())),
            Fact::Paths(PathFact::Path(PathState {
                kind: PathKind::File,
                owner: "root".into(),
                group: "root".into(),
                mode: 0o600,
            })),
        );
        assert!(!wanted
            .facts(&store)
            .contains(&FactKey::Paths(PathKey::Content("/etc/app.conf".into()))));
        assert_eq!(
            wanted.plan(&store).unwrap().changes[0].describe(),
            "set mode 0640 on /etc/app.conf"
        );
    }

    #[test]
    fn owner_that_does_not_exist_is_a_clear_error() {
        let mut wanted = file(Some("a\n"));
        wanted.owner = Some("deploy".into());
        let mut store = facts(PathKind::Missing, None);
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(None)),
        );
        assert_eq!(
            wanted.plan(&store).unwrap_err().to_string(),
            "user deploy does not exist (create it, or install the package that adds it, in an earlier task)"
        );
    }

    #[test]
    fn directory_in_the_way_is_an_error() {
        let err = file(Some("a\n"))
            .plan(&facts(PathKind::Directory, None))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/app.conf is a directory; expected a regular file"
        );
    }

    #[test]
    fn absent_removes_a_file() {
        let mut wanted = file(None);
        wanted.state = Presence::Absent;
        let plan = wanted.plan(&facts(PathKind::File, Some("x"))).unwrap();
        assert_eq!(plan.changes.len(), 1);
        assert!(wanted
            .plan(&facts(PathKind::Missing, None))
            .unwrap()
            .changes
            .is_empty());
    }

    #[test]
    fn relative_path_is_rejected() {
        let mut wanted = file(Some("a"));
        wanted.path = "etc/x".into();
        assert!(wanted.validate().is_err());
    }
}
