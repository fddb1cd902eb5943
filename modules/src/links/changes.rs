//! The change a link plan makes: a link made in converge's private directory beside
//! the target (see [`safe_path`]), owned with `chown -h`, then renamed over the path
//! with `mv -f -T`, so a link being re-pointed is never absent, not for an instant.

use crate::change::{Cmd, DomainChange};
use crate::fact::{FactStore, Manager, PathKind, PathState, Touch};
use crate::links::{LinkFact, LinkKey};
use crate::paths::changes::path_script;
use crate::paths::safe_path;
use crate::paths::{PathFact, PathKey};

/// A symbolic link to make, or to re-point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub path: String,
    pub target: String,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// `mv -T` renames the new link over whatever the name holds but a directory: that one
/// a plan removes first, and only with `force`.
const MAKE_LINK: &str = r#"set -eu
dir=$1 name=$2 target=$3 owner=$4 group=$5
converge_target="${dir%/}/$name"
converge_enter "$dir"
umask 077
converge_private
ln -s -- "$target" new
if [ -n "$owner" ]; then chown -h -- "$owner" new; fi
if [ -n "$group" ]; then chgrp -h -- "$group" new; fi
mv -f -T -- new "../$name"
converge_cleanup"#;

impl DomainChange for NewLink {
    /// A link is no business of a systemd manager.
    fn needs_reloaded(&self, _manager: &Manager) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("link {} -> {}", self.path, self.target)
    }

    fn command(&self) -> Cmd {
        let (dir, name) = safe_path::split(&self.path);
        path_script(
            MAKE_LINK,
            [
                dir,
                name,
                self.target.clone(),
                self.owner.clone().unwrap_or_default(),
                self.group.clone().unwrap_or_default(),
            ],
        )
    }

    fn touches(&self) -> Vec<Touch> {
        vec![
            Touch::Key(PathKey::Path(self.path.clone()).into()),
            Touch::Key(LinkKey::Link(self.path.clone()).into()),
        ]
    }

    /// A link root makes is root's, mode 0777 (a link's mode means nothing), unless owned.
    fn predict(&self, store: &mut FactStore) {
        let state = PathState {
            kind: PathKind::Symlink,
            owner: self.owner.clone().unwrap_or_else(|| "root".to_owned()),
            group: self.group.clone().unwrap_or_else(|| "root".to_owned()),
            mode: 0o777,
        };
        store.insert(
            PathKey::Path(self.path.clone()).into(),
            PathFact::Path(state).into(),
        );
        store.insert(
            LinkKey::Link(self.path.clone()).into(),
            LinkFact::Link(Some(self.target.clone())).into(),
        );
    }
}
