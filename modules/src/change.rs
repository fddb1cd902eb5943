//! Changes: the typed actions a plan is made of.
//!
//! Each [`Change`] knows how to describe itself to a person, which command carries it
//! out ([`Change::command`]: a constant script plus quoted arguments, never a string
//! built by formatting), which facts it makes stale ([`Change::touches`], used after a
//! real change) and what it would leave behind ([`Change::predict`], used by check mode
//! so later tasks are planned against the state earlier ones would create).

use std::fmt;

use serde::Serialize;

use crate::fact::{
    Fact, FactKey, FactStore, GroupInfo, Manager, ManagerState, PathKind, PathState, Touch,
    UnitRef, UnitState, UserInfo, USER_SYSTEMCTL,
};
use crate::safe_path;
use crate::settle::Verify;

/// A command to run on a host: an argv (quoted when rendered) and bytes for its stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub argv: Vec<String>,
    pub stdin: Vec<u8>,
}

impl Cmd {
    /// A plain argv.
    pub fn argv<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            stdin: Vec::new(),
        }
    }

    /// A constant `sh` script receiving `args` as `$1`, `$2`, ...
    pub fn script<S: Into<String>>(script: &str, args: impl IntoIterator<Item = S>) -> Self {
        let mut argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            script.to_owned(),
            "converge".to_owned(),
        ];
        argv.extend(args.into_iter().map(Into::into));
        Cmd {
            argv,
            stdin: Vec::new(),
        }
    }

    fn with_stdin(mut self, stdin: Vec<u8>) -> Self {
        self.stdin = stdin;
        self
    }
}

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

    fn describe(&self) -> String {
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

/// A new user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub system: bool,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub groups: Vec<String>,
}

/// Changes to an existing user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEdit {
    pub name: String,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub groups: Option<Vec<String>>,
}

/// Something done to a unit through its manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitAction {
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Reload,
}

impl UnitAction {
    fn verb(self) -> &'static str {
        match self {
            UnitAction::Enable => "enable",
            UnitAction::Disable => "disable",
            UnitAction::Start => "start",
            UnitAction::Stop => "stop",
            UnitAction::Restart => "restart",
            UnitAction::Reload => "reload",
        }
    }
}

/// One action on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
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
    AddGroup {
        name: String,
        system: bool,
    },
    RemoveGroup {
        name: String,
    },
    AddUser(NewUser),
    EditUser(UserEdit),
    RemoveUser {
        name: String,
    },
    /// Makes a manager reread unit files; `unit` is the unit whose file changed.
    DaemonReload {
        manager: Manager,
        unit: Option<String>,
    },
    Unit {
        unit: UnitRef,
        action: UnitAction,
        /// An enable or disable that skips the manager's implicit reload, because a
        /// daemon-reload of the same manager follows in the plan: one reload, not two.
        reload_follows: bool,
        /// For a start or restart: how it is proven (see [`crate::settle`]).
        verify: Option<Verify>,
    },
    /// Sends a signal to the unit's main process (as Sidekiq expects TSTP), not to
    /// every process in its control group.
    Signal {
        unit: UnitRef,
        signal: String,
    },
    Linger {
        user: String,
        enabled: bool,
    },
    /// Waits (bounded) until a user's manager accepts commands.
    AwaitUserManager {
        user: String,
    },
    Run {
        command: RunCommand,
    },
    /// Proves with `sudo -l -U` that the user may run each command, right after the
    /// sudoers file at `path` was written. When sudo refuses one, the file that was
    /// there before (`before`, byte for byte) is put back, or the new one removed when
    /// there was none, and the failure says what sudo grants.
    VerifySudo {
        user: String,
        runas: String,
        commands: Vec<String>,
        path: String,
        before: Option<Vec<u8>>,
    },
}

/// A file's content before and after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentChange<'a> {
    pub path: &'a str,
    /// `None`: the file is new.
    pub before: Option<&'a [u8]>,
    pub after: &'a [u8],
}

/// An arbitrary command, as the `command` module runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    Shell(String),
    Argv(Vec<String>),
}

impl fmt::Display for RunCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunCommand::Shell(line) => f.write_str(line),
            RunCommand::Argv(argv) => f.write_str(&crate::shell::join(argv)),
        }
    }
}

/// Writes stdin to a file in a private directory beside the target (see
/// [`crate::safe_path`]), checks it received every byte, sets owner, group and mode,
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

/// A script that starts with [`crate::safe_path::PRELUDE`].
fn path_script<S: Into<String>>(script: &str, args: impl IntoIterator<Item = S>) -> Cmd {
    Cmd::script(&format!("{}{script}", crate::safe_path::PRELUDE), args)
}

/// Starts the user's manager and polls until it answers (about 30 s at most).
const AWAIT_USER_MANAGER: &str = r#"user=$1
uid=$(id -u -- "$user") || exit 1
# logind starts the manager of a lingering user by itself, but that start can be lost
# when it races the teardown of the user's previous manager. Asking for the unit is
# what logind does, and returns once the manager has reported ready.
systemctl start -- "user@$uid.service" || exit 1
i=0
while [ "$i" -lt 150 ]; do
  state=$(XDG_RUNTIME_DIR="/run/user/$uid" runuser -u "$user" -- systemctl --user is-system-running 2>/dev/null) || true
  case $state in running|degraded) exit 0 ;; esac
  sleep 0.2
  i=$((i + 1))
done
echo "the user manager of $user did not come up within 30 seconds" >&2
exit 1"#;

fn octal(mode: Option<u32>) -> String {
    mode.map(|mode| format!("{mode:04o}")).unwrap_or_default()
}

fn systemctl(manager: &Manager, args: &[&str]) -> Cmd {
    match manager {
        Manager::System => {
            let mut argv = vec!["systemctl"];
            argv.extend_from_slice(args);
            Cmd::argv(argv)
        }
        Manager::User(user) => {
            let mut script_args = vec![user.as_str()];
            script_args.extend_from_slice(args);
            Cmd::script(USER_SYSTEMCTL, script_args)
        }
    }
}

impl Change {
    /// One line for people: what this change does.
    pub fn describe(&self) -> String {
        match self {
            Change::WriteFile(write) => {
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
            Change::SetAttributes { path, attributes } => {
                format!("set {} on {path}", attributes.describe())
            }
            Change::CreateDirectory { path, .. } => format!("create directory {path}"),
            Change::Remove { path, kind } => format!("remove {kind} {path}"),
            Change::AddGroup { name, .. } => format!("create group {name}"),
            Change::RemoveGroup { name } => format!("remove group {name}"),
            Change::AddUser(user) => format!("create user {}", user.name),
            Change::EditUser(edit) => {
                let mut parts = Vec::new();
                if let Some(home) = &edit.home {
                    parts.push(format!("home {home}"));
                }
                if let Some(shell) = &edit.shell {
                    parts.push(format!("shell {shell}"));
                }
                if let Some(groups) = &edit.groups {
                    parts.push(format!("groups [{}]", groups.join(", ")));
                }
                format!("set {} for user {}", parts.join(", "), edit.name)
            }
            Change::RemoveUser { name } => format!("remove user {name}"),
            Change::DaemonReload { manager, .. } => format!("daemon-reload ({manager})"),
            Change::Unit { unit, action, .. } => format!("{} {unit}", action.verb()),
            Change::Signal { unit, signal } => format!("send {signal} to {unit}"),
            Change::Linger { user, enabled } => {
                let verb = if *enabled { "enable" } else { "disable" };
                format!("{verb} lingering for {user}")
            }
            Change::AwaitUserManager { user } => format!("wait for {user}'s user manager"),
            Change::Run { command } => format!("run: {command}"),
            Change::VerifySudo { user, commands, .. } => format!(
                "verify with sudo -l that {user} may run the {} commands",
                commands.len()
            ),
        }
    }

    /// The old and new content of a file write, for diffs; `None` for other changes
    /// and for secret content.
    pub fn file_contents(&self) -> Option<ContentChange<'_>> {
        match self {
            Change::WriteFile(write) if !write.secret => Some(ContentChange {
                path: &write.path,
                before: write.before.as_deref(),
                after: &write.content,
            }),
            _ => None,
        }
    }

    /// The command that carries this change out.
    pub fn command(&self) -> Cmd {
        match self {
            Change::WriteFile(write) => {
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
            Change::SetAttributes { path, attributes } => {
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
            Change::CreateDirectory { path, attributes } => path_script(
                CREATE_DIRECTORY,
                [
                    safe_path::normalize(path),
                    attributes.owner.clone().unwrap_or_default(),
                    attributes.group.clone().unwrap_or_default(),
                    octal(attributes.mode),
                ],
            ),
            Change::Remove { path, kind } => {
                let (dir, name) = safe_path::split(path);
                let recursive = if *kind == PathKind::Directory {
                    "yes"
                } else {
                    ""
                };
                path_script(REMOVE, [dir, name, recursive.to_owned()])
            }
            Change::AddGroup { name, system } => {
                let mut argv = vec!["groupadd"];
                if *system {
                    argv.push("--system");
                }
                argv.extend(["--", name.as_str()]);
                Cmd::argv(argv)
            }
            Change::RemoveGroup { name } => Cmd::argv(["groupdel", "--", name.as_str()]),
            Change::AddUser(user) => {
                let mut argv = vec!["useradd".to_owned(), "--create-home".to_owned()];
                if user.system {
                    argv.push("--system".to_owned());
                }
                if let Some(home) = &user.home {
                    argv.extend(["--home-dir".to_owned(), home.clone()]);
                }
                if let Some(shell) = &user.shell {
                    argv.extend(["--shell".to_owned(), shell.clone()]);
                }
                if !user.groups.is_empty() {
                    argv.extend(["--groups".to_owned(), user.groups.join(",")]);
                }
                argv.extend(["--".to_owned(), user.name.clone()]);
                Cmd::argv(argv)
            }
            Change::EditUser(edit) => {
                let mut argv = vec!["usermod".to_owned()];
                if let Some(home) = &edit.home {
                    argv.extend(["--home".to_owned(), home.clone()]);
                }
                if let Some(shell) = &edit.shell {
                    argv.extend(["--shell".to_owned(), shell.clone()]);
                }
                if let Some(groups) = &edit.groups {
                    argv.extend(["--groups".to_owned(), groups.join(",")]);
                }
                argv.extend(["--".to_owned(), edit.name.clone()]);
                Cmd::argv(argv)
            }
            Change::RemoveUser { name } => Cmd::argv(["userdel", "--", name.as_str()]),
            Change::DaemonReload { manager, .. } => systemctl(manager, &["daemon-reload"]),
            Change::Unit {
                unit,
                action: action @ (UnitAction::Start | UnitAction::Restart),
                verify: Some(verify),
                ..
            } => crate::settle::command(unit, action.verb(), verify),
            Change::Unit {
                unit,
                action,
                reload_follows,
                ..
            } => {
                let mut args = vec![action.verb()];
                if *reload_follows {
                    args.push("--no-reload");
                }
                args.extend(["--", unit.name.as_str()]);
                systemctl(&unit.manager, &args)
            }
            Change::Signal { unit, signal } => systemctl(
                &unit.manager,
                &[
                    "kill",
                    "--kill-who=main",
                    "-s",
                    signal.as_str(),
                    "--",
                    unit.name.as_str(),
                ],
            ),
            Change::Linger {
                user,
                enabled: true,
            } => Cmd::script(
                &format!("loginctl enable-linger -- \"$1\" || exit 1\n{AWAIT_USER_MANAGER}"),
                [user.as_str()],
            ),
            Change::Linger {
                user,
                enabled: false,
            } => Cmd::argv(["loginctl", "disable-linger", "--", user.as_str()]),
            Change::AwaitUserManager { user } => Cmd::script(AWAIT_USER_MANAGER, [user.as_str()]),
            Change::Run { command } => match command {
                RunCommand::Shell(line) => Cmd::argv(["sh", "-c", line.as_str()]),
                RunCommand::Argv(argv) => Cmd::argv(argv.iter().map(String::as_str)),
            },
            Change::VerifySudo {
                user,
                runas,
                commands,
                path,
                before,
            } => Cmd::script(
                crate::sudoers::VERIFY_SUDO,
                [
                    user.as_str(),
                    runas.as_str(),
                    path.as_str(),
                    if before.is_some() { "1" } else { "0" },
                ]
                .into_iter()
                .chain(commands.iter().map(String::as_str)),
            )
            .with_stdin(before.clone().unwrap_or_default()),
        }
    }

    /// Facts this change makes stale once it has really run.
    pub fn touches(&self) -> Vec<Touch> {
        match self {
            Change::WriteFile(FileWrite { path, .. }) | Change::SetAttributes { path, .. } => vec![
                Touch::Key(FactKey::Path(path.clone())),
                Touch::Key(FactKey::Content(path.clone())),
            ],
            Change::CreateDirectory { path, .. } | Change::Remove { path, .. } => {
                vec![Touch::Tree(path.clone())]
            }
            Change::AddGroup { name, .. } | Change::RemoveGroup { name } => {
                vec![Touch::Key(FactKey::Group(name.clone()))]
            }
            // Accounts own files, groups and home directories: too much to list.
            Change::AddUser(_) | Change::EditUser(_) | Change::RemoveUser { .. } => {
                vec![Touch::Everything]
            }
            Change::DaemonReload { manager, .. } => vec![Touch::Units(manager.clone())],
            Change::Unit { unit, .. } | Change::Signal { unit, .. } => {
                vec![Touch::Key(FactKey::Unit(unit.clone()))]
            }
            Change::Linger { user, .. } | Change::AwaitUserManager { user } => vec![
                Touch::Key(FactKey::Linger(user.clone())),
                Touch::Units(Manager::User(user.clone())),
            ],
            Change::Run { .. } => vec![Touch::Everything],
            // A refused file was put back or removed.
            Change::VerifySudo { path, .. } => [FactKey::Content, FactKey::Path]
                .into_iter()
                .map(|key| Touch::Key(key(path.clone())))
                .collect(),
        }
    }

    /// Records in `store` the state this change would leave (check mode).
    pub fn predict(&self, store: &mut FactStore) {
        match self {
            Change::WriteFile(write) => {
                let previous = store.path(&write.path).ok().cloned();
                store.insert(
                    FactKey::Path(write.path.clone()),
                    Fact::Path(PathState {
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
                    }),
                );
                store.insert(
                    FactKey::Content(write.path.clone()),
                    Fact::Content(Some(write.content.clone())),
                );
            }
            Change::SetAttributes { path, attributes } => {
                if let Ok(state) = store.path(path) {
                    let mut state = state.clone();
                    apply_attributes(&mut state, attributes);
                    store.insert(FactKey::Path(path.clone()), Fact::Path(state));
                }
            }
            Change::CreateDirectory { path, attributes } => {
                let mut state = PathState {
                    kind: PathKind::Directory,
                    owner: "root".to_owned(),
                    group: "root".to_owned(),
                    mode: 0o755,
                };
                apply_attributes(&mut state, attributes);
                store.insert(FactKey::Path(path.clone()), Fact::Path(state));
            }
            Change::Remove { path, .. } => {
                store.forget(&Touch::Tree(path.clone()));
                store.insert(
                    FactKey::Path(path.clone()),
                    Fact::Path(PathState::missing()),
                );
                store.insert(FactKey::Content(path.clone()), Fact::Content(None));
            }
            Change::AddGroup { name, .. } => {
                store.insert(
                    FactKey::Group(name.clone()),
                    Fact::Group(Some(GroupInfo { gid: None })),
                );
            }
            Change::RemoveGroup { name } => {
                store.insert(FactKey::Group(name.clone()), Fact::Group(None));
            }
            Change::AddUser(user) => predict_new_user(store, user),
            Change::EditUser(edit) => {
                if let Ok(Some(info)) = store.user(&edit.name) {
                    let mut info = info.clone();
                    if let Some(home) = &edit.home {
                        info.home.clone_from(home);
                    }
                    if let Some(shell) = &edit.shell {
                        info.shell.clone_from(shell);
                    }
                    if let Some(groups) = &edit.groups {
                        info.groups.clone_from(groups);
                    }
                    store.insert(FactKey::User(edit.name.clone()), Fact::User(Some(info)));
                }
            }
            Change::RemoveUser { name } => {
                store.insert(FactKey::User(name.clone()), Fact::User(None));
            }
            Change::DaemonReload { manager, unit } => {
                if let Some(name) = unit {
                    let unit = UnitRef {
                        manager: manager.clone(),
                        name: name.clone(),
                    };
                    let state = predicted_unit(store, &unit);
                    store.insert(
                        FactKey::Unit(unit),
                        Fact::Unit(UnitState {
                            load: "loaded".to_owned(),
                            need_daemon_reload: false,
                            unit_file: if state.unit_file.is_empty() {
                                "disabled".to_owned()
                            } else {
                                state.unit_file
                            },
                            active: if state.active.is_empty() {
                                "inactive".to_owned()
                            } else {
                                state.active
                            },
                            ..state
                        }),
                    );
                }
            }
            Change::Unit { unit, action, .. } => {
                let mut state = predicted_unit(store, unit);
                match action {
                    UnitAction::Enable => "enabled".clone_into(&mut state.unit_file),
                    UnitAction::Disable => "disabled".clone_into(&mut state.unit_file),
                    UnitAction::Start | UnitAction::Restart | UnitAction::Reload => {
                        "active".clone_into(&mut state.active);
                    }
                    UnitAction::Stop => "inactive".clone_into(&mut state.active),
                }
                store.insert(FactKey::Unit(unit.clone()), Fact::Unit(state));
            }
            Change::Linger { user, enabled } => {
                store.insert(FactKey::Linger(user.clone()), Fact::Linger(*enabled));
                if *enabled {
                    predict_manager_start(store, user);
                } else {
                    // logind stops the manager of a user without sessions at once.
                    for unit in store.units_of(&Manager::User(user.clone())) {
                        if let Some(state) = store.unit_mut(&unit) {
                            state.manager = ManagerState::Down;
                            "inactive".clone_into(&mut state.active);
                        }
                    }
                }
            }
            Change::AwaitUserManager { user } => predict_manager_start(store, user),
            // A signal leaves no state behind, and what an arbitrary command does cannot
            // be known.
            Change::Signal { .. } | Change::Run { .. } | Change::VerifySudo { .. } => {}
        }
    }
}

/// A user manager that starts brings up every unit enabled in its files.
fn predict_manager_start(store: &mut FactStore, user: &str) {
    for unit in store.units_of(&Manager::User(user.to_owned())) {
        if let Some(state) = store.unit_mut(&unit) {
            *state = crate::service::started_with_manager(state);
        }
    }
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

fn predict_new_user(store: &mut FactStore, user: &NewUser) {
    let home = user
        .home
        .clone()
        .unwrap_or_else(|| format!("/home/{}", user.name));
    store.insert(
        FactKey::User(user.name.clone()),
        Fact::User(Some(UserInfo {
            uid: None,
            home: home.clone(),
            shell: user.shell.clone().unwrap_or_else(|| "/bin/sh".to_owned()),
            primary_group: user.name.clone(),
            groups: user.groups.clone(),
        })),
    );
    // Debian's useradd creates a group named after the user and, with --create-home,
    // the home directory owned by the user.
    store.insert(
        FactKey::Group(user.name.clone()),
        Fact::Group(Some(GroupInfo { gid: None })),
    );
    store.insert(
        FactKey::Path(home),
        Fact::Path(PathState {
            kind: PathKind::Directory,
            owner: user.name.clone(),
            group: user.name.clone(),
            mode: 0o755,
        }),
    );
}

fn predicted_unit(store: &FactStore, unit: &UnitRef) -> UnitState {
    store.unit(unit).cloned().unwrap_or(UnitState {
        manager: ManagerState::Running,
        load: "not-found".to_owned(),
        active: "inactive".to_owned(),
        unit_file: String::new(),
        need_daemon_reload: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::join;

    #[test]
    fn write_file_is_one_script_with_quoted_arguments() {
        let change = Change::WriteFile(FileWrite {
            path: "/etc/sudoers.d/sidekiq".into(),
            content: b"deploy ALL=(root) NOPASSWD: /bin/systemctl restart sidekiq\n".to_vec(),
            before: None,
            owner: Some("root".into()),
            group: Some("root".into()),
            mode: 0o440,
            validator: Some(Validator::Sudoers),
            secret: false,
        });
        let cmd = change.command();
        assert_eq!(&cmd.argv[..2], ["sh", "-c"]);
        assert_eq!(
            &cmd.argv[3..],
            [
                "converge",
                "/etc/sudoers.d",
                "sidekiq",
                "root",
                "root",
                "0440",
                "sudoers",
                "59"
            ]
        );
        assert!(cmd.stdin.starts_with(b"deploy"));
        assert_eq!(
            change.describe(),
            "create /etc/sudoers.d/sidekiq (validated with visudo)"
        );
    }

    #[test]
    fn user_scope_units_go_through_runuser() {
        let change = Change::Unit {
            unit: UnitRef {
                manager: Manager::User("deploy".into()),
                name: "sidekiq.service".into(),
            },
            action: UnitAction::Restart,
            reload_follows: false,
            verify: None,
        };
        let line = join(&change.command().argv);
        assert!(
            line.ends_with("converge deploy restart -- sidekiq.service"),
            "{line}"
        );
        assert_eq!(change.describe(), "restart sidekiq.service (user deploy)");
    }

    #[test]
    fn hostile_user_name_stays_one_argument() {
        let change = Change::AddUser(NewUser {
            name: "x; touch /tmp/pwned".into(),
            system: false,
            home: None,
            shell: None,
            groups: vec![],
        });
        assert_eq!(
            join(&change.command().argv),
            "useradd --create-home -- 'x; touch /tmp/pwned'"
        );
    }

    #[test]
    fn content_cut_short_never_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("converge-short-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("target");
        std::fs::write(&path, "old\n").unwrap();
        let change = Change::WriteFile(FileWrite {
            path: path.to_str().unwrap().into(),
            content: b"new content\n".to_vec(),
            before: Some(b"old\n".to_vec()),
            owner: None,
            group: None,
            mode: 0o600,
            validator: None,
            secret: false,
        });
        let cmd = change.command();
        let mut child = std::process::Command::new(&cmd.argv[0])
            .args(&cmd.argv[1..])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The sender goes away after half the bytes.
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cmd.stdin[..5]).unwrap();
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(70));
        assert!(String::from_utf8_lossy(&output.stderr).contains("cut short (5 of 12 bytes)"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "temporary file left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_file_script_is_atomic_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("converge-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("target");
        std::fs::write(&path, "old\n").unwrap();
        let change = Change::WriteFile(FileWrite {
            path: path.to_str().unwrap().into(),
            content: b"new\n".to_vec(),
            before: Some(b"old\n".to_vec()),
            owner: None,
            group: None,
            mode: 0o600,
            validator: None,
            secret: false,
        });
        let cmd = change.command();
        let mut child = std::process::Command::new(&cmd.argv[0])
            .args(&cmd.argv[1..])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cmd.stdin).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "temporary file left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Runs a change's command with `sh` on this machine.
    fn run_here(change: &Change) -> std::process::Output {
        let cmd = change.command();
        let mut child = std::process::Command::new(&cmd.argv[0])
            .args(&cmd.argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cmd.stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn scratch(label: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("converge-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(path: &std::path::Path, content: &str) -> Change {
        Change::WriteFile(FileWrite {
            path: path.to_str().unwrap().into(),
            content: content.as_bytes().to_vec(),
            before: None,
            owner: None,
            group: None,
            mode: 0o640,
            validator: None,
            secret: false,
        })
    }

    #[test]
    fn a_write_never_goes_through_a_symlinked_directory() {
        let dir = scratch("via-link");
        std::fs::create_dir(dir.join("protected")).unwrap();
        std::fs::write(dir.join("protected/keys"), "root's\n").unwrap();
        std::os::unix::fs::symlink(dir.join("protected"), dir.join("home")).unwrap();
        let output = run_here(&write(&dir.join("home/keys"), "attacker's\n"));
        assert_eq!(output.status.code(), Some(77));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{}/home is a symbolic link", dir.display())),
            "{stderr}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("protected/keys")).unwrap(),
            "root's\n"
        );
        assert_eq!(std::fs::read_dir(dir.join("protected")).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = scratch("at-link");
        std::fs::write(dir.join("elsewhere"), "keep\n").unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("target")).unwrap();
        let output = run_here(&write(&dir.join("target"), "new\n"));
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("elsewhere")).unwrap(),
            "keep\n"
        );
        let meta = std::fs::symlink_metadata(dir.join("target")).unwrap();
        assert!(meta.is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("target")).unwrap(),
            "new\n"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "working directory left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_and_removals_never_go_through_a_symlinked_directory() {
        let dir = scratch("dirs");
        std::fs::create_dir_all(dir.join("important/data")).unwrap();
        std::os::unix::fs::symlink(dir.join("important"), dir.join("cache")).unwrap();
        let remove = Change::Remove {
            path: format!("{}/cache/data", dir.display()),
            kind: PathKind::Directory,
        };
        assert_eq!(run_here(&remove).status.code(), Some(77));
        assert!(dir.join("important/data").is_dir());
        let create = Change::CreateDirectory {
            path: format!("{}/cache/new/deeper", dir.display()),
            attributes: Attributes::default(),
        };
        assert_eq!(run_here(&create).status.code(), Some(77));
        assert!(!dir.join("important/new").exists());
        let attributes = Change::SetAttributes {
            path: format!("{}/cache/data", dir.display()),
            attributes: Attributes {
                mode: Some(0o700),
                ..Attributes::default()
            },
        };
        assert_eq!(run_here(&attributes).status.code(), Some(77));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_are_created_one_component_at_a_time_with_their_attributes() {
        let dir = scratch("mkdir");
        let create = Change::CreateDirectory {
            path: format!("{}//a/./b/c/", dir.display()),
            attributes: Attributes {
                mode: Some(0o750),
                ..Attributes::default()
            },
        };
        let output = run_here(&create);
        assert!(output.status.success(), "{output:?}");
        for sub in ["a", "a/b", "a/b/c"] {
            let meta = std::fs::metadata(dir.join(sub)).unwrap();
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
                0o750,
                "{sub}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_files_mode_in_a_shared_directory_changes_on_a_copy() {
        // The scratch directory's parent is world-writable: the file is changed on a
        // copy renamed over it, never by name.
        let dir = scratch("chmod");
        std::fs::write(dir.join("file"), "content\n").unwrap();
        std::fs::write(dir.join("secret"), "secret\n").unwrap();
        let change = Change::SetAttributes {
            path: format!("{}/file", dir.display()),
            attributes: Attributes {
                mode: Some(0o604),
                ..Attributes::default()
            },
        };
        let output = run_here(&change);
        assert!(output.status.success(), "{output:?}");
        let meta = std::fs::symlink_metadata(dir.join("file")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            0o604
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("file")).unwrap(),
            "content\n"
        );
        // A link swapped in for the file: its target keeps its mode.
        std::fs::remove_file(dir.join("file")).unwrap();
        std::fs::set_permissions(
            dir.join("secret"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("file")).unwrap();
        let _ = run_here(&change);
        let meta = std::fs::metadata(dir.join("secret")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            2,
            "working directory left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
