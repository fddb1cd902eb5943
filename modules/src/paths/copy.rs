//! `copy`: a directory tree from beside the playbook, shipped under `dest`.
//!
//! The engine reads `src` at load time into [`Tree`]: its directories, and its files
//! with their bytes (any bytes, not only UTF-8) and executable bit. On the host only a
//! file's SHA-256 is read (in the same batched read as every other fact), so a run with
//! nothing to change moves no content. Directories are created like `directory`'s, files
//! written through the same safe atomic write as `file`'s, and a path on the way that a
//! symbolic link or another user's swap could redirect is refused, never followed.
//! `delete: true` removes what is under `dest` and not in `src`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::change::{Attributes, Change};
use crate::fact::{FactKey, FactStore, PathKind};
use crate::paths::facts::sha256_hex;
use crate::paths::file::{new_file, update_file};
use crate::paths::{PathChange, PathKey};
use crate::{
    check_owner_group, names, owner_group_facts, validate_owner_group, Content, Module, ParamError,
    Plan, PlanError,
};

/// Parameters of the `copy` module.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    /// The directory beside the playbook (or in its `files/`); read by the engine into
    /// `tree`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    pub dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Remove what is under `dest` and not in `src`.
    #[serde(default)]
    pub delete: bool,
    /// What the engine read from `src`.
    #[serde(default, skip_serializing)]
    pub tree: Option<Tree>,
}

/// A directory tree read from the controller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// Relative names, each after its parent.
    pub directories: Vec<String>,
    pub files: Vec<TreeFile>,
}

/// One regular file of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeFile {
    /// Relative to the tree's root.
    pub path: String,
    pub content: Content,
    /// Any execute bit set on the controller: the copy is 0755, otherwise 0644.
    pub executable: bool,
}

impl TreeFile {
    fn mode(&self) -> u32 {
        if self.executable {
            0o755
        } else {
            0o644
        }
    }
}

impl Copy {
    fn at(&self, relative: &str) -> String {
        format!("{}/{relative}", self.dest.trim_end_matches('/'))
    }

    fn tree(&self) -> Result<&Tree, PlanError> {
        self.tree.as_ref().ok_or_else(|| PlanError::NoContent {
            path: self.dest.clone(),
        })
    }

    /// `dest` and the tree's directories on the host, parents first.
    fn directories(&self, tree: &Tree) -> Vec<String> {
        std::iter::once(self.dest.trim_end_matches('/').to_owned())
            .chain(tree.directories.iter().map(|dir| self.at(dir)))
            .collect()
    }
}

impl Module for Copy {
    const NAME: &'static str = "copy";

    fn validate(&self) -> Result<(), ParamError> {
        names::path(&self.dest)?;
        validate_owner_group(self.owner.as_ref(), self.group.as_ref())?;
        if let Some(tree) = &self.tree {
            for relative in tree
                .directories
                .iter()
                .chain(tree.files.iter().map(|file| &file.path))
            {
                names::file_path(&self.at(relative))?;
            }
        }
        Ok(())
    }

    fn facts(&self, known: &FactStore) -> Vec<FactKey> {
        let mut keys = owner_group_facts(self.owner.as_ref(), self.group.as_ref());
        let Some(tree) = &self.tree else {
            return keys;
        };
        keys.extend(
            self.directories(tree)
                .into_iter()
                .map(|dir| PathKey::Path(dir).into()),
        );
        for file in &tree.files {
            let path = self.at(&file.path);
            keys.push(PathKey::Path(path.clone()).into());
            keys.push(PathKey::Hash(path.clone()).into());
            // A file that differs is read whole, for its diff: only when it drifted.
            if matches!(known.hash(&path), Ok(Some(hash)) if *hash != sha256_hex(&file.content.0)) {
                keys.push(PathKey::Content(path).into());
            }
        }
        if self.delete {
            keys.push(PathKey::Listing(self.dest.trim_end_matches('/').to_owned()).into());
        }
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let tree = self.tree()?;
        check_owner_group(facts, self.owner.as_ref(), self.group.as_ref())?;
        let mut changes = Vec::new();
        for path in self.directories(tree) {
            let state = facts.path(&path)?;
            let wanted = Attributes {
                owner: self.owner.clone(),
                group: self.group.clone(),
                mode: None,
            };
            match state.kind {
                PathKind::Missing => changes.push(Change::Paths(PathChange::CreateDirectory {
                    path,
                    attributes: wanted,
                })),
                PathKind::Directory => {
                    changes.extend(wanted.differing_from(state).map(|attributes| {
                        Change::Paths(PathChange::SetAttributes { path, attributes })
                    }));
                }
                kind => {
                    return Err(PlanError::WrongKind {
                        path,
                        kind,
                        expected: "directory",
                    })
                }
            }
        }
        for file in &tree.files {
            let path = self.at(&file.path);
            let state = facts.path(&path)?;
            let wanted = Attributes {
                owner: self.owner.clone(),
                group: self.group.clone(),
                mode: Some(file.mode()),
            };
            let plan = match state.kind {
                PathKind::Missing => new_file(&path, file.content.0.clone(), wanted),
                PathKind::File => {
                    let same = facts.hash(&path)?.as_deref() == Some(&sha256_hex(&file.content.0));
                    let before = if same {
                        None
                    } else {
                        facts.content(&path).ok().cloned().flatten()
                    };
                    let content = (!same).then_some(file.content.0.as_slice());
                    update_file(&path, state, before.as_deref(), content, wanted)
                }
                kind => {
                    return Err(PlanError::WrongKind {
                        path,
                        kind,
                        expected: "regular file",
                    })
                }
            };
            changes.extend(plan.changes);
        }
        if self.delete {
            changes.extend(self.extras(facts, tree)?);
        }
        Ok(Plan::of(changes))
    }
}

impl Copy {
    /// The removals `delete: true` asks for: each entry under `dest` that the tree does
    /// not have, once (a directory's content goes with it).
    fn extras(&self, facts: &FactStore, tree: &Tree) -> Result<Vec<Change>, PlanError> {
        let Some(listing) = facts.listing(self.dest.trim_end_matches('/'))? else {
            return Ok(Vec::new());
        };
        let directories: BTreeSet<&str> = tree.directories.iter().map(String::as_str).collect();
        let files: BTreeSet<&str> = tree.files.iter().map(|f| f.path.as_str()).collect();
        let mut entries: Vec<&(String, PathKind)> = listing.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut removed: Vec<&str> = Vec::new();
        let mut changes = Vec::new();
        for &(ref name, kind) in entries {
            let kept = match kind {
                PathKind::Directory => directories.contains(name.as_str()),
                PathKind::File => files.contains(name.as_str()),
                // A link or special file in place of a tree entry is refused by the
                // plan above; elsewhere it is an extra like any other.
                _ => directories.contains(name.as_str()) || files.contains(name.as_str()),
            };
            let below_removed = removed.iter().any(|dir| {
                name.strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
            });
            if kept || below_removed {
                continue;
            }
            removed.push(name);
            changes.push(Change::Paths(PathChange::Remove {
                path: self.at(name),
                kind,
            }));
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::{Fact, PathState};
    use crate::paths::PathFact;

    const BINARY: &[u8] = &[0x7f, b'E', b'L', b'F', 0xff, 0x00, 0xfe];

    fn copy(delete: bool) -> Copy {
        Copy {
            src: None,
            dest: "/opt/app".into(),
            owner: None,
            group: None,
            delete,
            tree: Some(Tree {
                directories: vec!["bin".into(), "lib".into(), "lib/native".into()],
                files: vec![
                    TreeFile {
                        path: "bin/run".into(),
                        content: Content(b"#!/bin/sh\necho run\n".to_vec()),
                        executable: true,
                    },
                    TreeFile {
                        path: "lib/native/blob.so".into(),
                        content: Content(BINARY.to_vec()),
                        executable: false,
                    },
                ],
            }),
        }
    }

    fn state(kind: PathKind, mode: u32) -> Fact {
        Fact::Paths(PathFact::Path(PathState {
            kind,
            owner: "root".into(),
            group: "root".into(),
            mode,
        }))
    }

    /// A host where `dest` holds the tree exactly.
    fn converged() -> FactStore {
        let mut store = FactStore::default();
        for dir in [
            "/opt/app",
            "/opt/app/bin",
            "/opt/app/lib",
            "/opt/app/lib/native",
        ] {
            store.insert(
                PathKey::Path(dir.into()).into(),
                state(PathKind::Directory, 0o755),
            );
        }
        for (path, content, mode) in [
            ("/opt/app/bin/run", &b"#!/bin/sh\necho run\n"[..], 0o755),
            ("/opt/app/lib/native/blob.so", BINARY, 0o644),
        ] {
            store.insert(
                PathKey::Path(path.into()).into(),
                state(PathKind::File, mode),
            );
            store.insert(
                PathKey::Hash(path.into()).into(),
                Fact::Paths(PathFact::Hash(Some(sha256_hex(content)))),
            );
        }
        store.insert(
            PathKey::Listing("/opt/app".into()).into(),
            Fact::Paths(PathFact::Listing(Some(vec![
                ("bin".into(), PathKind::Directory),
                ("bin/run".into(), PathKind::File),
                ("lib".into(), PathKind::Directory),
                ("lib/native".into(), PathKind::Directory),
                ("lib/native/blob.so".into(), PathKind::File),
            ]))),
        );
        store
    }

    fn fresh() -> FactStore {
        let mut store = FactStore::default();
        for path in [
            "/opt/app",
            "/opt/app/bin",
            "/opt/app/lib",
            "/opt/app/lib/native",
            "/opt/app/bin/run",
            "/opt/app/lib/native/blob.so",
        ] {
            store.insert(
                PathKey::Path(path.into()).into(),
                Fact::Paths(PathFact::Path(PathState::missing())),
            );
            store.insert(
                PathKey::Hash(path.into()).into(),
                Fact::Paths(PathFact::Hash(None)),
            );
        }
        store.insert(
            PathKey::Listing("/opt/app".into()).into(),
            Fact::Paths(PathFact::Listing(None)),
        );
        store
    }

    fn described(plan: &Plan) -> Vec<String> {
        plan.changes.iter().map(Change::describe).collect()
    }

    #[test]
    fn a_fresh_host_gets_every_directory_then_every_file() {
        let plan = copy(true).plan(&fresh()).unwrap();
        assert_eq!(
            described(&plan),
            [
                "create directory /opt/app",
                "create directory /opt/app/bin",
                "create directory /opt/app/lib",
                "create directory /opt/app/lib/native",
                "create /opt/app/bin/run",
                "create /opt/app/lib/native/blob.so",
            ]
        );
        let Change::Paths(PathChange::WriteFile(script)) = &plan.changes[4] else {
            panic!("{plan:?}")
        };
        assert_eq!(script.mode, 0o755);
        let Change::Paths(PathChange::WriteFile(blob)) = &plan.changes[5] else {
            panic!("{plan:?}")
        };
        assert_eq!((blob.mode, blob.content.as_slice()), (0o644, BINARY));
    }

    #[test]
    fn a_converged_tree_is_ok_from_hashes_alone() {
        let copy = copy(true);
        let store = converged();
        assert_eq!(copy.plan(&store).unwrap(), Plan::default());
        assert!(!copy
            .facts(&store)
            .iter()
            .any(|key| matches!(key, FactKey::Paths(PathKey::Content(_)))));
    }

    #[test]
    fn an_edited_file_is_read_for_its_diff_and_rewritten() {
        let copy = copy(false);
        let mut store = converged();
        let path = "/opt/app/bin/run";
        store.insert(
            PathKey::Hash(path.into()).into(),
            Fact::Paths(PathFact::Hash(Some(sha256_hex(b"edited\n")))),
        );
        assert!(copy
            .facts(&store)
            .contains(&PathKey::Content(path.into()).into()));
        store.insert(
            PathKey::Content(path.into()).into(),
            Fact::Paths(PathFact::Content(Some(b"edited\n".to_vec()))),
        );
        let plan = copy.plan(&store).unwrap();
        let [Change::Paths(PathChange::WriteFile(write))] = plan.changes.as_slice() else {
            panic!("{plan:?}")
        };
        assert_eq!(write.before.as_deref(), Some(&b"edited\n"[..]));
        assert_eq!(write.mode, 0o755);
    }

    #[test]
    fn a_lost_executable_bit_is_set_again() {
        let mut store = converged();
        store.insert(
            PathKey::Path("/opt/app/bin/run".into()).into(),
            state(PathKind::File, 0o644),
        );
        assert_eq!(
            described(&copy(false).plan(&store).unwrap()),
            ["set mode 0755 on /opt/app/bin/run"]
        );
    }

    #[test]
    fn extras_are_removed_only_with_delete_and_once_per_directory() {
        let mut store = converged();
        store.insert(
            PathKey::Listing("/opt/app".into()).into(),
            Fact::Paths(PathFact::Listing(Some(vec![
                ("bin".into(), PathKind::Directory),
                ("bin/run".into(), PathKind::File),
                ("bin/old".into(), PathKind::File),
                ("cache".into(), PathKind::Directory),
                ("cache/x".into(), PathKind::File),
                ("lib".into(), PathKind::Directory),
                ("lib/native".into(), PathKind::Directory),
                ("lib/native/blob.so".into(), PathKind::File),
            ]))),
        );
        assert_eq!(copy(false).plan(&store).unwrap(), Plan::default());
        assert_eq!(
            described(&copy(true).plan(&store).unwrap()),
            [
                "remove regular file /opt/app/bin/old",
                "remove directory /opt/app/cache"
            ]
        );
    }

    #[test]
    fn a_link_in_place_of_a_directory_is_refused() {
        let mut store = converged();
        store.insert(
            PathKey::Path("/opt/app/lib".into()).into(),
            state(PathKind::Symlink, 0o777),
        );
        assert_eq!(
            copy(false).plan(&store).unwrap_err().to_string(),
            "/opt/app/lib is a symbolic link; expected a directory"
        );
    }

    #[test]
    fn an_unsafe_way_is_refused() {
        let mut store = converged();
        store.insert(
            PathKey::Path("/opt/app/lib/native/blob.so".into()).into(),
            Fact::Refused("a directory on the way is a link".into()),
        );
        assert!(copy(false).plan(&store).is_err());
    }

    #[test]
    fn check_mode_predicts_every_file_for_later_tasks() {
        let copy = copy(true);
        let mut store = fresh();
        for change in copy.plan(&store).unwrap().changes {
            change.predict(&mut store);
        }
        assert_eq!(
            store.path("/opt/app/bin/run").unwrap().mode,
            0o755,
            "a later task sees the script"
        );
        assert_eq!(
            store
                .content("/opt/app/lib/native/blob.so")
                .unwrap()
                .as_deref(),
            Some(BINARY)
        );
        assert_eq!(copy.plan(&store).unwrap().changes.len(), 0);
    }
}
