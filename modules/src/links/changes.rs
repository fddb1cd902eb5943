//! The change a link plan makes: a link made in converge's private directory beside
//! the target (see [`safe_path`]), owned with `chown -h`, then renamed over the path
//! with `mv -f -T`, so a link being re-pointed is never absent, not for an instant.

use crate::change::Cmd;
use crate::fact::{Fact, FactKey, FactStore, PathKind, PathState, Touch};
use crate::paths::changes::path_script;
use crate::paths::safe_path;

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

pub(crate) fn describe(link: &NewLink) -> String {
    format!("link {} -> {}", link.path, link.target)
}

pub(crate) fn command(link: &NewLink) -> Cmd {
    let (dir, name) = safe_path::split(&link.path);
    path_script(
        MAKE_LINK,
        [
            dir,
            name,
            link.target.clone(),
            link.owner.clone().unwrap_or_default(),
            link.group.clone().unwrap_or_default(),
        ],
    )
}

pub(crate) fn touches(link: &NewLink) -> Vec<Touch> {
    vec![
        Touch::Key(FactKey::Path(link.path.clone())),
        Touch::Key(FactKey::Link(link.path.clone())),
    ]
}

/// A link root makes is root's, mode 0777 (a link's mode means nothing), unless owned.
pub(crate) fn predict(store: &mut FactStore, link: &NewLink) {
    let state = PathState {
        kind: PathKind::Symlink,
        owner: link.owner.clone().unwrap_or_else(|| "root".to_owned()),
        group: link.group.clone().unwrap_or_else(|| "root".to_owned()),
        mode: 0o777,
    };
    store.insert(FactKey::Path(link.path.clone()), Fact::Path(state));
    store.insert(
        FactKey::Link(link.path.clone()),
        Fact::Link(Some(link.target.clone())),
    );
}
