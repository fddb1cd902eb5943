//! Changes to paths: atomic file writes, attributes, directories and removals, each a
//! constant script that starts with `safe_path::PRELUDE` and never follows a link.

use serde::Serialize;

use crate::change::{Cmd, ContentChange, DomainChange};
use crate::fact::{Fact, FactKey, FactStore, Manager, PathKind, PathState, Touch};
use crate::paths::facts::sha256_hex;
use crate::paths::safe_path;
use crate::paths::{PathFact, PathKey};

/// Extra check a file must pass on the host before it replaces the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validator {
    /// `visudo -cf`
    Sudoers,
}

/// An atomic file write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    pub path: String,
    pub content: Vec<u8>,
    /// The content being replaced, for diffs (`None`: the file is new).
    pub before: Option<Vec<u8>>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: u32,
    pub validator: Option<Validator>,
    /// The content must never be shown (diffs, reports).
    pub secret: bool,
}

/// Attributes of a path, each optional: `None` leaves it as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
}

impl Attributes {
    /// The attributes among these that `state` does not have yet; `None` when it has all.
    pub fn differing_from(&self, state: &PathState) -> Option<Attributes> {
        let differing = Attributes {
            owner: self.owner.clone().filter(|owner| *owner != state.owner),
            group: self.group.clone().filter(|group| *group != state.group),
            mode: self.mode.filter(|mode| *mode != state.mode),
        };
        (differing != Attributes::default()).then_some(differing)
    }

    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(owner) = &self.owner {
            parts.push(format!("owner {owner}"));
        }
        if let Some(group) = &self.group {
            parts.push(format!("group {group}"));
        }
        if let Some(mode) = self.mode {
            parts.push(format!("mode {mode:04o}"));
        }
        parts.join(", ")
    }
}

/// Writes stdin to a file in a private directory beside the target (see
/// [`safe_path`]), checks it received every byte, sets owner, group and mode,
/// optionally validates it, and renames it over the target: the target is always either
/// the old file or the new one, and nothing is ever written through a symbolic link.
const WRITE_FILE: &str = r#"set -eu
dir=$1 name=$2 owner=$3 group=$4 mode=$5 validator=$6 size=$7
converge_target="${dir%/}/$name"
converge_enter "$dir"
umask 077
converge_private
cat > new
# A controller that dies mid-transfer looks like an early end of input: only a file of
# the announced size may replace the old one.
actual=$(wc -c < new)
if [ "$actual" -ne "$size" ]; then
  echo "content arrived cut short ($actual of $size bytes); $converge_target was left unchanged" >&2
  exit 70
fi
if [ -n "$owner" ]; then chown -- "$owner" new; fi
if [ -n "$group" ]; then chgrp -- "$group" new; fi
chmod -- "$mode" new
if [ "$validator" = sudoers ]; then
  # visudo, or visudo-rs where only Debian's sudo-rs is installed.
  if ! visudo=$(command -v visudo || command -v visudo-rs || command -v /usr/sbin/visudo); then
    echo "neither visudo nor visudo-rs is installed, so $converge_target cannot be checked; install sudo or sudo-rs" >&2
    exit 69
  fi
  if ! out=$("$visudo" -cf "$PWD/new" 2>&1); then
    printf 'visudo rejected the new content; %s was left unchanged:\n%s\n' "$converge_target" "$out" | sed "s|$PWD/new|$converge_target (new)|g" >&2
    exit 65
  fi
fi
mv -f -T -- new "../$name"
converge_cleanup"#;

/// Creates a directory and any missing parents, one component at a time and never
/// through a symbolic link; a directory it creates gets the owner, group and mode asked
/// for (0755 when no mode is), as Ansible does, so a user's tree stays the user's.
const CREATE_DIRECTORY: &str = r#"set -eu
path=$1 owner=$2 group=$3 mode=$4
converge_target=$path
cd /
converge_components "$path"
while converge_next; do
  created=
  if [ ! -e "$converge_comp" ] && [ ! -h "$converge_comp" ] && mkdir -m 0700 -- "$converge_comp" 2>/dev/null; then
    created=1
  fi
  if ! { cd -P -- "$converge_comp" 2>/dev/null && [ "$PWD" = "$converge_prefix" ]; }; then
    converge_refuse "$converge_prefix"
  fi
  if [ -n "$created" ]; then
    if [ "$(stat -c %u:%a .)" != "$(id -u):700" ]; then converge_refuse "$converge_prefix"; fi
    if [ -n "$owner" ]; then chown -- "$owner" .; fi
    if [ -n "$group" ]; then chgrp -- "$group" .; fi
    chmod -- "${mode:-0755}" .
  elif [ -z "$converge_rest" ]; then
    if [ -n "$owner" ]; then chown -- "$owner" .; fi
    if [ -n "$group" ]; then chgrp -- "$group" .; fi
    if [ -n "$mode" ]; then chmod -- "$mode" .; fi
  fi
done"#;

/// Sets attributes of an existing path. A directory is entered and changed as `.`. A
/// file in a directory only root can write to is changed in place; anywhere else on a
/// copy renamed over it, because `chmod` by name would follow a link swapped in.
const SET_ATTRIBUTES: &str = r#"set -eu
dir=$1 name=$2 owner=$3 group=$4 mode=$5
converge_target="${dir%/}/$name"
converge_enter "$dir"
if [ -d "$name" ] && [ ! -h "$name" ]; then
  converge_enter "$converge_target"
  if [ -n "$owner" ]; then chown -- "$owner" .; fi
  if [ -n "$group" ]; then chgrp -- "$group" .; fi
  if [ -n "$mode" ]; then chmod -- "$mode" .; fi
elif [ -h "$name" ]; then
  echo "refusing $converge_target: it is now a symbolic link" >&2
  exit 77
elif converge_trusted "$dir"; then
  if [ -n "$owner" ]; then chown -h -- "$owner" "$name"; fi
  if [ -n "$group" ]; then chgrp -h -- "$group" "$name"; fi
  if [ -n "$mode" ]; then chmod -- "$mode" "$name"; fi
else
  current=$(stat -c '%u:%g:%a' -- "$name")
  umask 077
  converge_private
  if ! dd if="../$name" of=new iflag=nofollow,nonblock bs=64K status=none 2>/dev/null; then
    echo "refusing $converge_target: it was replaced (by a symbolic link?) while converge copied it" >&2
    exit 77
  fi
  chown -- "${owner:-${current%%:*}}" new
  current=${current#*:}
  chgrp -- "${group:-${current%%:*}}" new
  chmod -- "${mode:-${current#*:}}" new
  mv -f -T -- new "../$name"
  converge_cleanup
fi"#;

/// Removes a path without following a symbolic link on the way (`rm` itself never
/// follows one below it, nor leaves the file system it started on).
const REMOVE: &str = r#"set -eu
dir=$1 name=$2 recursive=$3
converge_target="${dir%/}/$name"
converge_enter "$dir"
if [ -n "$recursive" ]; then
  rm -rf --one-file-system -- "$name"
else
  rm -f -- "$name"
fi"#;

/// A script that starts with [`safe_path::PRELUDE`].
pub(crate) fn path_script<S: Into<String>>(script: &str, args: impl IntoIterator<Item = S>) -> Cmd {
    Cmd::script(&format!("{}{script}", safe_path::PRELUDE), args)
}

/// One line for people: what a file write does.
pub(crate) fn describe_write(write: &FileWrite) -> String {
    let verb = if write.before.is_some() {
        "update"
    } else {
        "create"
    };
    let mut text = format!("{verb} {}", write.path);
    if write.validator == Some(Validator::Sudoers) {
        text.push_str(" (validated with visudo)");
    }
    text
}

pub(crate) fn write_command(write: &FileWrite) -> Cmd {
    let (dir, name) = safe_path::split(&write.path);
    path_script(
        WRITE_FILE,
        [
            dir,
            name,
            write.owner.clone().unwrap_or_default(),
            write.group.clone().unwrap_or_default(),
            format!("{:04o}", write.mode),
            match write.validator {
                Some(Validator::Sudoers) => "sudoers".to_owned(),
                None => String::new(),
            },
            write.content.len().to_string(),
        ],
    )
    .with_stdin(write.content.clone())
}

pub(crate) fn set_attributes_command(path: &str, attributes: &Attributes) -> Cmd {
    let (dir, name) = safe_path::split(path);
    path_script(
        SET_ATTRIBUTES,
        [
            dir,
            name,
            attributes.owner.clone().unwrap_or_default(),
            attributes.group.clone().unwrap_or_default(),
            octal(attributes.mode),
        ],
    )
}

pub(crate) fn create_directory_command(path: &str, attributes: &Attributes) -> Cmd {
    path_script(
        CREATE_DIRECTORY,
        [
            safe_path::normalize(path),
            attributes.owner.clone().unwrap_or_default(),
            attributes.group.clone().unwrap_or_default(),
            octal(attributes.mode),
        ],
    )
}

pub(crate) fn remove_command(path: &str, kind: PathKind) -> Cmd {
    let (dir, name) = safe_path::split(path);
    let recursive = if kind == PathKind::Directory {
        "yes"
    } else {
        ""
    };
    path_script(REMOVE, [dir, name, recursive.to_owned()])
}

/// The path's own facts: what a write or an attribute change makes stale.
pub(crate) fn touches_file(path: &str) -> Vec<Touch> {
    vec![
        Touch::Key(FactKey::Paths(PathKey::Path(path.to_owned()))),
        Touch::Key(FactKey::Paths(PathKey::Content(path.to_owned()))),
        Touch::Key(FactKey::Paths(PathKey::Hash(path.to_owned()))),
    ]
}

pub(crate) fn predict_write(store: &mut FactStore, write: &FileWrite) {
    let previous = store.path(&write.path).ok().cloned();
    store.insert(
        FactKey::Paths(PathKey::Path(write.path.clone())),
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::File,
            owner: write
                .owner
                .clone()
                .or_else(|| previous.as_ref().map(|p| p.owner.clone()))
                .unwrap_or_else(|| "root".to_owned()),
            group: write
                .group
                .clone()
                .or_else(|| previous.as_ref().map(|p| p.group.clone()))
                .unwrap_or_else(|| "root".to_owned()),
            mode: write.mode,
        })),
    );
    store.insert(
        FactKey::Paths(PathKey::Content(write.path.clone())),
        Fact::Paths(PathFact::Content(Some(write.content.clone()))),
    );
    store.insert(
        FactKey::Paths(PathKey::Hash(write.path.clone())),
        Fact::Paths(PathFact::Hash(Some(sha256_hex(&write.content)))),
    );
}

pub(crate) fn predict_set_attributes(store: &mut FactStore, path: &str, attributes: &Attributes) {
    if let Ok(state) = store.path(path) {
        let mut state = state.clone();
        apply_attributes(&mut state, attributes);
        store.insert(
            FactKey::Paths(PathKey::Path(path.to_owned())),
            Fact::Paths(PathFact::Path(state)),
        );
    }
}

pub(crate) fn predict_create_directory(store: &mut FactStore, path: &str, attributes: &Attributes) {
    let mut state = PathState {
        kind: PathKind::Directory,
        owner: "root".to_owned(),
        group: "root".to_owned(),
        mode: 0o755,
    };
    apply_attributes(&mut state, attributes);
    store.insert(
        FactKey::Paths(PathKey::Path(path.to_owned())),
        Fact::Paths(PathFact::Path(state)),
    );
}

pub(crate) fn predict_remove(store: &mut FactStore, path: &str) {
    store.forget(&Touch::Tree(path.to_owned()));
    store.insert(
        FactKey::Paths(PathKey::Path(path.to_owned())),
        Fact::Paths(PathFact::Path(PathState::missing())),
    );
    store.insert(
        FactKey::Paths(PathKey::Content(path.to_owned())),
        Fact::Paths(PathFact::Content(None)),
    );
    store.insert(
        FactKey::Paths(PathKey::Hash(path.to_owned())),
        Fact::Paths(PathFact::Hash(None)),
    );
}

fn octal(mode: Option<u32>) -> String {
    mode.map(|mode| format!("{mode:04o}")).unwrap_or_default()
}

fn apply_attributes(state: &mut PathState, attributes: &Attributes) {
    if let Some(owner) = &attributes.owner {
        state.owner.clone_from(owner);
    }
    if let Some(group) = &attributes.group {
        state.group.clone_from(group);
    }
    if let Some(mode) = attributes.mode {
        state.mode = mode;
    }
}

/// The changes to paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChange {
    WriteFile(FileWrite),
    SetAttributes {
        path: String,
        attributes: Attributes,
    },
    CreateDirectory {
        path: String,
        attributes: Attributes,
    },
    Remove {
        path: String,
        kind: PathKind,
    },
}

impl DomainChange for PathChange {
    /// Files, directories and their attributes are no business of a systemd manager.
    fn needs_reloaded(&self, _manager: &Manager) -> bool {
        false
    }

    fn describe(&self) -> String {
        match self {
            PathChange::WriteFile(write) => describe_write(write),
            PathChange::SetAttributes { path, attributes } => {
                format!("set {} on {path}", attributes.describe())
            }
            PathChange::CreateDirectory { path, .. } => format!("create directory {path}"),
            PathChange::Remove { path, kind } => format!("remove {kind} {path}"),
        }
    }

    fn file_contents(&self) -> Option<ContentChange<'_>> {
        match self {
            PathChange::WriteFile(write) if !write.secret => Some(ContentChange {
                path: &write.path,
                before: write.before.as_deref(),
                after: &write.content,
            }),
            _ => None,
        }
    }

    fn command(&self) -> Cmd {
        match self {
            PathChange::WriteFile(write) => write_command(write),
            PathChange::SetAttributes { path, attributes } => {
                set_attributes_command(path, attributes)
            }
            PathChange::CreateDirectory { path, attributes } => {
                create_directory_command(path, attributes)
            }
            PathChange::Remove { path, kind } => remove_command(path, *kind),
        }
    }

    fn touches(&self) -> Vec<Touch> {
        match self {
            PathChange::WriteFile(FileWrite { path, .. })
            | PathChange::SetAttributes { path, .. } => touches_file(path),
            PathChange::CreateDirectory { path, .. } | PathChange::Remove { path, .. } => {
                vec![Touch::Tree(path.clone())]
            }
        }
    }

    fn predict(&self, store: &mut FactStore) {
        match self {
            PathChange::WriteFile(write) => predict_write(store, write),
            PathChange::SetAttributes { path, attributes } => {
                predict_set_attributes(store, path, attributes);
            }
            PathChange::CreateDirectory { path, attributes } => {
                predict_create_directory(store, path, attributes);
            }
            PathChange::Remove { path, .. } => predict_remove(store, path),
        }
    }
}
