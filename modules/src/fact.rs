//! Facts: typed, read-only knowledge about a host, each read by a shell probe and
//! parsed by a pure function.
//!
//! A [`FactKey`] names one fact (`Path("/etc/x")`, `Unit(..)`, `User("deploy")`...). Its
//! [`probe`](FactKey::probe) is a POSIX `sh` snippet whose output [`parse`] turns into a
//! [`Fact`]. Many probes are joined by [`batch_script`] into one remote command whose
//! output [`split_batch`] cuts apart again, so reading every fact a play needs costs one
//! round trip. The [`FactStore`] holds what is known about one host.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::safe_path;
use crate::shell::quote;

/// Which systemd instance manages a unit: the system manager, or one user's manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Manager {
    System,
    User(String),
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Manager::System => f.write_str("system manager"),
            Manager::User(user) => write!(f, "{user}'s user manager"),
        }
    }
}

/// A unit in a given manager.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UnitRef {
    pub manager: Manager,
    /// Full unit name, e.g. `sidekiq.service`.
    pub name: String,
}

impl fmt::Display for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manager {
            Manager::System => f.write_str(&self.name),
            Manager::User(user) => write!(f, "{} (user {user})", self.name),
        }
    }
}

/// The name of one fact about a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FactKey {
    /// Host name and operating system.
    System,
    /// Type, owner, group and mode of a path (not following symlinks).
    Path(String),
    /// Bytes of a regular file.
    Content(String),
    /// A user account.
    User(String),
    /// A group.
    Group(String),
    /// Load, active and enablement state of a unit.
    Unit(UnitRef),
    /// Whether logind lingering is on for a user.
    Linger(String),
    /// Exit status of a shell command run for its answer (e.g. `command`'s `unless`).
    Probe(String),
    /// The first of these commands sudo would refuse to run for `user` as `runas`
    /// (`sudo -l -U USER -u RUNAS`).
    SudoRefused {
        user: String,
        runas: String,
        commands: Vec<String>,
    },
    /// `systemd-analyze verify` of a unit file before it is installed.
    UnitVerify(crate::unit_lint::Candidate),
}

impl fmt::Display for FactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FactKey::System => f.write_str("system"),
            FactKey::Path(path) => write!(f, "path {path}"),
            FactKey::Content(path) => write!(f, "content of {path}"),
            FactKey::User(name) => write!(f, "user {name}"),
            FactKey::Group(name) => write!(f, "group {name}"),
            FactKey::Unit(unit) => write!(f, "unit {unit}"),
            FactKey::Linger(user) => write!(f, "linger for {user}"),
            FactKey::Probe(command) => write!(f, "result of `{command}`"),
            FactKey::UnitVerify(candidate) => write!(f, "{candidate}"),
            FactKey::SudoRefused {
                user,
                runas,
                commands,
            } => {
                write!(
                    f,
                    "sudo rules for {user} as {runas} ({} commands)",
                    commands.len()
                )
            }
        }
    }
}

/// Host name, operating system and the system tools converge drives on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SystemInfo {
    pub hostname: String,
    /// `ID` from os-release, e.g. `debian`.
    pub os: String,
    /// `VERSION_ID` from os-release, e.g. `12`.
    pub os_version: String,
    /// systemd's major version, e.g. 252 (`None` when it cannot be told).
    pub systemd_version: Option<u32>,
    /// The sudo that `become` and the sudoers proof use (`None`: none is installed).
    pub sudo: Option<Sudo>,
    /// The sudoers checker: `visudo`, or `visudo-rs` where only sudo-rs is installed.
    pub visudo: Option<String>,
    /// Where `systemctl` is, among `/bin/systemctl` and `/usr/bin/systemctl` (both on
    /// a host with a merged `/usr`).
    pub systemctl: Vec<String>,
}

/// Which sudo a host has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sudo {
    /// Where it is, e.g. `/usr/bin/sudo` or `/usr/bin/sudo-rs`.
    pub path: String,
    /// `sudo` (Todd Miller's) or `sudo-rs`, whatever name it is installed under.
    pub flavour: String,
    /// Its version, e.g. `1.9.13p3` or `0.2.5`.
    pub version: String,
}

/// What kind of thing a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    Missing,
    File,
    Directory,
    Symlink,
    Other,
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::Missing => "missing",
            PathKind::File => "regular file",
            PathKind::Directory => "directory",
            PathKind::Symlink => "symbolic link",
            PathKind::Other => "special file",
        })
    }
}

/// Type and attributes of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathState {
    pub kind: PathKind,
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

impl PathState {
    /// A path that does not exist.
    pub fn missing() -> Self {
        PathState {
            kind: PathKind::Missing,
            owner: String::new(),
            group: String::new(),
            mode: 0,
        }
    }
}

/// A user account as `getent` and `id` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// `None` while the account exists only in a check-mode prediction.
    pub uid: Option<u32>,
    pub home: String,
    pub shell: String,
    pub primary_group: String,
    /// Supplementary groups, sorted.
    pub groups: Vec<String>,
}

/// A group as `getent` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    /// `None` while the group exists only in a check-mode prediction.
    pub gid: Option<u32>,
}

/// Whether a unit's manager can be talked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ManagerState {
    Running,
    /// The user's manager is not running (no session and no lingering).
    Down,
    /// The user of a user-scope unit does not exist.
    NoSuchUser,
}

/// A unit's state as `systemctl show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitState {
    pub manager: ManagerState,
    /// `LoadState`: `loaded`, `not-found`, `masked`, ...
    pub load: String,
    /// `ActiveState`: `active`, `inactive`, `failed`, `activating`, ...
    pub active: String,
    /// `UnitFileState`: `enabled`, `disabled`, `static`, ... (empty when unknown)
    pub unit_file: String,
    /// `NeedDaemonReload`: the file on disk differs from what the manager loaded.
    pub need_daemon_reload: bool,
}

impl UnitState {
    /// Whether the unit is enabled in any form systemd counts as enabled.
    pub fn is_enabled(&self) -> bool {
        matches!(
            self.unit_file.as_str(),
            "enabled" | "enabled-runtime" | "alias"
        )
    }

    /// Whether the unit is running or about to be.
    pub fn is_active(&self) -> bool {
        matches!(self.active.as_str(), "active" | "activating" | "reloading")
    }

    /// Whether the manager knows the unit.
    pub fn exists(&self) -> bool {
        self.load != "not-found" && !self.load.is_empty()
    }
}

/// The value of one fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Fact {
    System(SystemInfo),
    Path(PathState),
    /// `None` when the path is not a regular file.
    Content(Option<Vec<u8>>),
    User(Option<UserInfo>),
    Group(Option<GroupInfo>),
    Unit(UnitState),
    Linger(bool),
    Probe(i32),
    /// `None`: sudo allows every command.
    SudoRefused(Option<String>),
    UnitVerify(crate::unit_lint::Verdict),
    /// converge must not read or act on this: the reason says why (a symbolic link or
    /// an unsafe ownership transition on the way, a file too large to read).
    Refused(String),
}

/// A probe's output could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    #[error("cannot read {key}: unexpected output {output:?}")]
    Unparsable { key: String, output: String },
    #[error("the fact-reading command was cut off before {key} (output ended early)")]
    Truncated { key: String },
}

fn unparsable(key: &FactKey, output: &str) -> FactError {
    FactError::Unparsable {
        key: key.to_string(),
        // A file's content may be a `no_log` secret: it is never quoted.
        output: if matches!(key, FactKey::Content(_)) {
            "(file content not shown)".to_owned()
        } else {
            output.chars().take(300).collect()
        },
    }
}

/// Runs `systemctl --user` in `user`'s manager as that user, through the manager's
/// private socket, so it works on hosts without a user D-Bus (`dbus-user-session`).
pub(crate) const USER_SYSTEMCTL: &str = r#"user=$1; shift
uid=$(id -u -- "$user") || exit 1
export XDG_RUNTIME_DIR="/run/user/$uid"
exec runuser -u "$user" -- systemctl --user "$@""#;

/// Asks sudo whether user `$2` may run, as user `$3`, each command in `$4...` (one
/// command line per argument, split into words without globbing): prints
/// `refused:COMMAND` for the first one sudo would refuse, or `allowed`. (`$1` names the
/// probe in `ps`.) After a sudoers file is written, `sudoers::VERIFY_SUDO` asks the
/// same and puts the previous file back on a refusal.
pub(crate) const SUDO_CHECK: &str = concat!(
    r#"user=$2 runas=$3; shift 3
"#,
    SUDO_ALLOWS!(),
    r#"if [ -z "$converge_sudo" ]; then echo nosudo; exit 0; fi
for command in "$@"; do
  if ! converge_allows "$command"; then
    printf 'refused:%s\n' "$converge_refused"
    exit 0
  fi
done
echo allowed"#
);

/// Defines `converge_allows COMMAND`: whether the host's sudo (`sudo`, or `sudo-rs`
/// where only that is installed, in `$converge_sudo`) lets `$user` run the command line
/// as `$runas`, split into words without globbing. A command naming a bare `systemctl`
/// stands for every `systemctl` the host has, each of which must be allowed. The command
/// line refused last is left in `$converge_refused`.
macro_rules! sudo_allows {
    () => {
        r#"set -f
converge_sudo=$(command -v sudo || command -v sudo-rs) || converge_sudo=
converge_allows() {
  converge_refused=$1
  case $1 in
  systemctl\ *)
    for converge_program in /bin/systemctl /usr/bin/systemctl; do
      [ -x "$converge_program" ] || continue
      converge_refused="$converge_program ${1#systemctl }"
      "$converge_sudo" -n -l -U "$user" -u "$runas" -- $converge_refused >/dev/null 2>&1 || return 1
    done ;;
  *) "$converge_sudo" -n -l -U "$user" -u "$runas" -- $1 >/dev/null 2>&1 ;;
  esac
}
"#
    };
}
pub(crate) use sudo_allows as SUDO_ALLOWS;

/// What `stat` prints about a path: the name comes last, where its `:`s cannot shift
/// the other fields, and lets [`parse`] check the line is about the path it asked for.
const PATH_FORMAT: &str = "%F:%u:%U:%G:%a:%n";

/// The most bytes of one file converge reads as a fact; a larger file is refused
/// rather than read (a user's 20 GB sparse file must not exhaust the controller).
pub const CONTENT_LIMIT: usize = 16 << 20;

const UNIT_PROPERTIES: &str = "-p LoadState -p ActiveState -p UnitFileState -p NeedDaemonReload";

impl FactKey {
    /// The `sh` snippet that prints this fact for [`parse`].
    pub fn probe(&self) -> String {
        match self {
            // `read` is a builtin: the kernel's host name file spares an exec of
            // `uname`, which stays as the fallback where /proc is not mounted (the
            // braces put the shell's own complaint about the file under 2>/dev/null).
            //
            // systemd's version is in the file name of its shared library: a glob, where
            // `systemctl --version` would be an exec (kept as the fallback). sudo's
            // flavour is what it says of itself: sudo-rs may be installed as `sudo`.
            FactKey::System => concat!(
                "if ! { IFS= read -r host < /proc/sys/kernel/hostname; } 2>/dev/null; then host=$(uname -n); fi; ",
                "if [ -r /etc/os-release ]; then . /etc/os-release; fi; ",
                "printf '%s\\n%s\\n%s\\n' \"$host\" \"${ID:-unknown}\" \"${VERSION_ID:-}\"; ",
                "systemd=; for lib in /usr/lib/systemd/libsystemd-shared-*.so /usr/lib/*/systemd/libsystemd-shared-*.so; do ",
                "if [ -e \"$lib\" ]; then systemd=${lib##*-}; systemd=${systemd%.so}; break; fi; done; ",
                "if [ -z \"$systemd\" ]; then systemd=$(systemctl --version 2>/dev/null | { read -r _ v _; echo \"$v\"; }); fi; ",
                "echo \"systemd=$systemd\"; ",
                "for s in sudo sudo-rs; do if p=$(command -v \"$s\"); then echo \"sudo=$p\"; ",
                "echo \"sudo_version=$(\"$p\" -V 2>&1 | { read -r l; echo \"$l\"; })\"; break; fi; done; ",
                "for v in visudo visudo-rs /usr/sbin/visudo; do if p=$(command -v \"$v\"); then echo \"visudo=$p\"; break; fi; done; ",
                "for c in /bin/systemctl /usr/bin/systemctl; do if [ -x \"$c\" ]; then echo \"systemctl=$c\"; fi; done"
            )
            .to_owned(),
            // Each directory on the way, then the path: the same lines the batch's
            // shared `stat` gives (see `converge_path`).
            FactKey::Path(path) => {
                let mut snippet = String::new();
                for step in safe_path::ancestors(path).iter().map(String::as_str).chain([path.as_str()]) {
                    let _ = write!(
                        snippet,
                        "stat -c {f} -- {p} 2>/dev/null || echo missing; ",
                        f = quote(PATH_FORMAT),
                        p = quote(step)
                    );
                }
                snippet
            }
            // Read from inside the file's directory, entered without following a
            // symbolic link (see `safe_path`), and with `nofollow` for the file itself:
            // whatever a user swaps in meanwhile, the bytes come from that directory's
            // own regular file or from nowhere. One byte past the limit says "larger".
            FactKey::Content(path) => {
                let (dir, name) = safe_path::split(path);
                format!(
                    concat!(
                        "if ! cd -P -- {d} 2>/dev/null; then echo absent; ",
                        "elif [ \"$PWD\" != {d} ]; then echo unsafe; ",
                        "elif [ -f {n} ] && [ ! -h {n} ]; then echo present; {read} | base64; ",
                        "else echo absent; fi"
                    ),
                    d = quote(&dir),
                    n = quote(&format!("./{name}")),
                    read = safe_path::read_nofollow(&name, CONTENT_LIMIT + 1),
                )
            }
            // `id -Gn` prints the primary group first, the same word `id -gn` prints,
            // then the others: one `id` gives both.
            FactKey::User(name) => format!(
                "printf '%s\\n' \"$(getent passwd {n})\" \"$(id -Gn {n} 2>/dev/null)\"",
                n = quote(name)
            ),
            FactKey::Group(name) => format!("getent group {} || true", quote(name)),
            // A template (`name@.service`) is never loaded as such: there is nothing to
            // show, and it can only be written and reloaded.
            FactKey::Unit(UnitRef { name, .. }) if is_template(name) => "echo LoadState=template".to_owned(),
            FactKey::Unit(UnitRef {
                manager: Manager::System,
                name,
            }) => format!("systemctl show {UNIT_PROPERTIES} -- {}", quote(name)),
            FactKey::Unit(UnitRef {
                manager: Manager::User(user),
                name,
            }) => format!(
                // A manager that is starting or stopping counts as down, also when
                // its socket is still there but it no longer answers (lingering was
                // just turned off): the plan then waits for it, or says it is down,
                // instead of failing on half an answer.
                //
                // This is `USER_SYSTEMCTL` inline, with the uid already at hand: no
                // second shell (`runuser` without `-l` passes XDG_RUNTIME_DIR on, as
                // `USER_SYSTEMCTL` relies on too). The home directory is cut out of
                // the passwd line by parameter expansion, as no passwd field holds a
                // `:`, to spare a `cut`.
                concat!(
                    "if ! uid=$(id -u -- {u} 2>/dev/null); then echo manager=no-such-user; ",
                    "elif [ \"$(systemctl is-active \"user@$uid.service\" 2>/dev/null)\" = active ] ",
                    "&& out=$(XDG_RUNTIME_DIR=\"/run/user/$uid\" runuser -u {u} -- systemctl --user show {props} -- {n} 2>/dev/null); then ",
                    "echo manager=running; printf '%s\\n' \"$out\"; ",
                    "else echo manager=down; home=$(getent passwd {u}); home=${{home#*:*:*:*:*:}}; home=${{home%%:*}}; ",
                    "for link in \"$home\"/.config/systemd/user/*.wants/{n}; do ",
                    "if [ -L \"$link\" ]; then echo UnitFileState=enabled; break; fi; done; ",
                    "if [ -f \"$home/.config/systemd/user/\"{n} ]; then echo UnitFile=present; fi; fi"
                ),
                u = quote(user),
                n = quote(name),
                props = UNIT_PROPERTIES,
            ),
            FactKey::Linger(user) => format!(
                "if [ -e /var/lib/systemd/linger/{} ]; then echo yes; else echo no; fi",
                quote(user)
            ),
            FactKey::Probe(command) => format!(
                "sh -c {} </dev/null >/dev/null 2>&1; echo $?",
                quote(command)
            ),
            FactKey::UnitVerify(candidate) => crate::unit_lint::probe(candidate),
            FactKey::SudoRefused { user, runas, commands } => {
                let mut snippet = format!(
                    "sh -c {} converge probe {} {}",
                    quote(SUDO_CHECK),
                    quote(user),
                    quote(runas)
                );
                for command in commands {
                    snippet.push(' ');
                    snippet.push_str(&quote(command));
                }
                snippet
            }
        }
    }
}

/// Whether a unit name is a template (`getty@.service`), not a unit or an instance.
pub fn is_template(name: &str) -> bool {
    name.contains("@.")
}

/// Parses a probe's output into the fact it describes.
pub fn parse(key: &FactKey, output: &str) -> Result<Fact, FactError> {
    let fail = || unparsable(key, output);
    match key {
        FactKey::System => parse_system(output).map(Fact::System).ok_or_else(fail),
        FactKey::Path(path) => parse_path_with_ancestors(path, output).ok_or_else(fail),
        FactKey::Content(path) => {
            let (marker, body) = output.split_once('\n').unwrap_or((output, ""));
            match marker {
                "absent" => Ok(Fact::Content(None)),
                "unsafe" => Ok(Fact::Refused(format!(
                    "a directory on the way to {path} is a symbolic link or was replaced while it was read; converge never follows a symbolic link on the way to a path it manages"
                ))),
                "present" => {
                    let compact: String = body.split_whitespace().collect();
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .map_err(|_| fail())?;
                    if bytes.len() > CONTENT_LIMIT {
                        return Ok(Fact::Refused(format!(
                            "{path} is larger than {} MiB, the most converge reads of one file",
                            CONTENT_LIMIT >> 20
                        )));
                    }
                    Ok(Fact::Content(Some(bytes)))
                }
                _ => Err(fail()),
            }
        }
        FactKey::User(_) => parse_user(output).ok_or_else(fail),
        FactKey::Group(_) => {
            let line = output.trim_end();
            if line.is_empty() {
                return Ok(Fact::Group(None));
            }
            let gid = line.split(':').nth(2).and_then(|gid| gid.parse().ok());
            gid.map(|gid| Fact::Group(Some(GroupInfo { gid: Some(gid) })))
                .ok_or_else(fail)
        }
        FactKey::Unit(unit) => parse_unit(&unit.manager, output)
            .map(Fact::Unit)
            .ok_or_else(fail),
        FactKey::Linger(_) => match output.trim_end() {
            "yes" => Ok(Fact::Linger(true)),
            "no" => Ok(Fact::Linger(false)),
            _ => Err(fail()),
        },
        FactKey::Probe(_) => output
            .trim_end()
            .parse()
            .map(Fact::Probe)
            .map_err(|_| fail()),
        FactKey::UnitVerify(candidate) => crate::unit_lint::parse(candidate, output)
            .map(Fact::UnitVerify)
            .ok_or_else(fail),
        FactKey::SudoRefused { .. } => match output.trim_end() {
            "allowed" => Ok(Fact::SudoRefused(None)),
            "nosudo" => Ok(Fact::Refused(
                "neither sudo nor sudo-rs is installed, so no sudoers rule can apply".to_owned(),
            )),
            line => line
                .strip_prefix("refused:")
                .map(|command| Fact::SudoRefused(Some(command.to_owned())))
                .ok_or_else(fail),
        },
    }
}

/// Parses the lines of the directories on the way to `path` and of `path` itself, and
/// judges the way (see [`safe_path::judge`]).
fn parse_path_with_ancestors(path: &str, output: &str) -> Option<Fact> {
    let ancestors = safe_path::ancestors(path);
    // The path's own line comes last and may hold a newline of its name (paths converge
    // validates never do, but a probe must not misread one).
    let mut rest = output;
    let mut steps = Vec::with_capacity(ancestors.len());
    for ancestor in &ancestors {
        let (line, after) = rest.split_once('\n')?;
        rest = after;
        let (uid, state) = parse_path(ancestor, line)?;
        steps.push(safe_path::Step {
            path: ancestor.clone(),
            kind: state.kind,
            uid,
            owner: state.owner,
        });
    }
    let (_, state) = parse_path(path, rest.strip_suffix('\n').unwrap_or(rest))?;
    Some(match safe_path::judge(path, &steps) {
        safe_path::Way::Clear => Fact::Path(state),
        safe_path::Way::Missing => Fact::Path(PathState::missing()),
        safe_path::Way::Unsafe(reason) => Fact::Refused(reason),
    })
}

/// One line in [`PATH_FORMAT`]: the owner's uid and the path's state.
fn parse_path(path: &str, line: &str) -> Option<(u32, PathState)> {
    if line == "missing" {
        return Some((0, PathState::missing()));
    }
    // %F never contains ':', nor do uids, user and group names or the mode: the name is
    // the rest, whatever it holds.
    let mut parts = line.splitn(6, ':');
    let kind = match parts.next()? {
        "regular file" | "regular empty file" => PathKind::File,
        "directory" => PathKind::Directory,
        "symbolic link" => PathKind::Symlink,
        _ => PathKind::Other,
    };
    let uid = parts.next()?.parse().ok()?;
    let owner = parts.next()?.to_owned();
    let group = parts.next()?.to_owned();
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    if parts.next()? != path {
        return None;
    }
    Some((
        uid,
        PathState {
            kind,
            owner,
            group,
            mode,
        },
    ))
}

fn parse_system(output: &str) -> Option<SystemInfo> {
    let mut lines = output.lines();
    let mut info = SystemInfo {
        hostname: lines.next()?.to_owned(),
        os: lines.next()?.to_owned(),
        os_version: lines.next().unwrap_or_default().to_owned(),
        ..SystemInfo::default()
    };
    let mut sudo_path = None;
    let mut sudo_says = String::new();
    for line in lines {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        match name {
            "systemd" => info.systemd_version = value.parse().ok(),
            "sudo" => sudo_path = Some(value.to_owned()),
            "sudo_version" => value.clone_into(&mut sudo_says),
            "visudo" => info.visudo = Some(value.to_owned()),
            "systemctl" => info.systemctl.push(value.to_owned()),
            _ => {}
        }
    }
    info.sudo = sudo_path.map(|path| {
        // `Sudo version 1.9.13p3`, or `sudo-rs 0.2.5`.
        let (flavour, version) = match sudo_says.strip_prefix("Sudo version ") {
            Some(version) => ("sudo", version),
            None => match sudo_says.split_once(' ') {
                Some((flavour, version)) => (flavour, version),
                None => ("unknown", ""),
            },
        };
        Sudo {
            path,
            flavour: flavour.to_owned(),
            version: version.trim().to_owned(),
        }
    });
    Some(info)
}

fn parse_user(output: &str) -> Option<Fact> {
    let mut lines = output.lines();
    let passwd = lines.next()?;
    if passwd.is_empty() {
        return Some(Fact::User(None));
    }
    let fields: Vec<&str> = passwd.split(':').collect();
    if fields.len() != 7 {
        return None;
    }
    // Empty when the account vanished between `getent` and `id`.
    let mut id_groups = lines.next()?.split_whitespace();
    let primary_group = id_groups.next().unwrap_or_default().to_owned();
    let mut groups: Vec<String> = id_groups
        .filter(|group| *group != primary_group)
        .map(str::to_owned)
        .collect();
    groups.sort();
    groups.dedup();
    Some(Fact::User(Some(UserInfo {
        uid: Some(fields[2].parse().ok()?),
        home: fields[5].to_owned(),
        shell: fields[6].to_owned(),
        primary_group,
        groups,
    })))
}

fn parse_unit(manager: &Manager, output: &str) -> Option<UnitState> {
    let mut state = UnitState {
        manager: ManagerState::Running,
        load: String::new(),
        active: String::new(),
        unit_file: String::new(),
        need_daemon_reload: false,
    };
    let mut seen_load = false;
    for line in output.lines() {
        let (name, value) = line.split_once('=')?;
        match name {
            "manager" if matches!(manager, Manager::User(_)) => {
                state.manager = match value {
                    "running" => ManagerState::Running,
                    "down" => ManagerState::Down,
                    "no-such-user" => ManagerState::NoSuchUser,
                    _ => return None,
                };
            }
            "LoadState" => {
                seen_load = true;
                value.clone_into(&mut state.load);
            }
            "ActiveState" => value.clone_into(&mut state.active),
            "UnitFileState" => value.clone_into(&mut state.unit_file),
            // Seen only while the user's manager is down: the unit file exists on disk.
            "UnitFile" if state.unit_file.is_empty() => "disabled".clone_into(&mut state.unit_file),
            "NeedDaemonReload" => state.need_daemon_reload = value == "yes",
            _ => {}
        }
    }
    (seen_load || state.manager != ManagerState::Running).then_some(state)
}

/// Prints the attributes of each path given in [`PATH_FORMAT`] (or `missing`) from
/// `$converge_stat`, the output of one `stat` over every path of the batch, in order.
///
/// `stat` prints one line per path it could read, in the order it was given them, and
/// nothing for the others. So the sections of those paths, run in that same order,
/// each take the next line if it names their path and leave it for a later path
/// otherwise: a line is only ever given to the path it names. Each path is looked at
/// once, by that `stat`, so one that vanishes meanwhile is either wholly there or
/// `missing`.
const PATH_FROM_SHARED_STAT: &str = r#"converge_nl='
'
converge_path() {
  for converge_name in "$@"; do
    converge_line=${converge_stat%%"$converge_nl"*}
    if [ "${converge_line#*:*:*:*:*:}" = "$converge_name" ]; then
      printf '%s\n' "$converge_line"
      converge_stat=${converge_stat#*"$converge_nl"}
    else
      echo missing
    fi
  done
}
"#;

/// Whether a path's attributes come from the batch's shared `stat`. A name with a
/// newline would split its line in two, so such a path keeps its own probe (paths
/// converge validates never hold one; a home directory from passwd cannot either).
fn shares_stat(key: &FactKey) -> Option<&str> {
    match key {
        FactKey::Path(path) if !path.contains('\n') => Some(path),
        _ => None,
    }
}

/// Builds one `sh` script that prints every fact in `keys`, each after a delimiter line
/// carrying `nonce`, so that no file content or command output can forge a boundary.
pub fn batch_script(keys: &[FactKey], nonce: &str) -> String {
    let mut script = String::from("export LC_ALL=C\n");
    // Execs are what reading facts costs a host, far more than shell builtins: one
    // `stat` for all paths instead of one each.
    let paths: Vec<&str> = keys.iter().filter_map(shares_stat).collect();
    if !paths.is_empty() {
        script.push_str(PATH_FROM_SHARED_STAT);
        let _ = write!(
            script,
            "converge_stat=\"$(stat -c {} --",
            quote(PATH_FORMAT)
        );
        for path in paths {
            for step in with_ancestors(path) {
                script.push(' ');
                script.push_str(&quote(&step));
            }
        }
        script.push_str(" 2>/dev/null)$converge_nl\"\n");
    }
    for (index, key) in keys.iter().enumerate() {
        let section = match shares_stat(key) {
            // In the script's own shell, not a subshell: each takes its line off
            // `$converge_stat` for the next.
            Some(path) => {
                let mut call = String::from("converge_path");
                for step in with_ancestors(path) {
                    call.push(' ');
                    call.push_str(&quote(&step));
                }
                call
            }
            None => format!("( {} )", key.probe()),
        };
        let _ = write!(
            script,
            "echo '{}'\n{section}\n",
            delimiter(nonce, &index.to_string()),
        );
    }
    let _ = writeln!(script, "echo '{}'", delimiter(nonce, "end"));
    script
}

/// The directories on the way to `path`, then `path`: what its fact is read from.
fn with_ancestors(path: &str) -> Vec<String> {
    let mut steps = safe_path::ancestors(path);
    steps.push(path.to_owned());
    steps
}

fn delimiter(nonce: &str, label: &str) -> String {
    format!("::converge:{nonce}:{label}::")
}

/// Cuts the output of [`batch_script`] apart and parses each fact.
pub fn split_batch(
    keys: &[FactKey],
    nonce: &str,
    output: &str,
) -> Result<Vec<(FactKey, Fact)>, FactError> {
    let mut sections: Vec<String> = Vec::with_capacity(keys.len());
    let mut current: Option<String> = None;
    let end = delimiter(nonce, "end");
    let mut ended = false;
    let prefix = format!("::converge:{nonce}:");
    for line in output.lines() {
        if line == end {
            sections.extend(current.take());
            ended = true;
            break;
        }
        if line.starts_with(&prefix) && line.ends_with("::") {
            sections.extend(current.take());
            current = Some(String::new());
        } else if let Some(section) = current.as_mut() {
            section.push_str(line);
            section.push('\n');
        }
    }
    if !ended {
        sections.extend(current.take());
    }
    let mut facts = Vec::with_capacity(keys.len());
    for (index, key) in keys.iter().enumerate() {
        let section = sections
            .get(index)
            .filter(|_| ended || index + 1 < sections.len());
        let Some(section) = section else {
            return Err(FactError::Truncated {
                key: key.to_string(),
            });
        };
        facts.push((key.clone(), parse(key, section)?));
    }
    Ok(facts)
}

/// What a change makes stale in the fact store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    Key(FactKey),
    /// A path and everything below it.
    Tree(String),
    /// Every unit of a manager.
    Units(Manager),
    /// Anything at all (an arbitrary command ran).
    Everything,
}

/// What converge knows about one host: read facts, or facts predicted by check mode.
#[derive(Debug, Clone, Default)]
pub struct FactStore {
    facts: BTreeMap<FactKey, Fact>,
    lingering_planned: std::collections::BTreeSet<String>,
}

/// Why a plan cannot have a fact it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactUnavailable {
    /// The engine did not read it: a bug in converge, not in the input.
    #[error("internal error: {key} was needed but not read")]
    NotRead { key: String },
    /// Reading it, or acting on what it names, is not safe (see [`Fact::Refused`]).
    #[error("will not touch {subject}: {reason}")]
    Refused { subject: String, reason: String },
}

impl FactUnavailable {
    fn for_key(key: &FactKey, found: Option<&Fact>) -> Self {
        match found {
            Some(Fact::Refused(reason)) => FactUnavailable::Refused {
                subject: match key {
                    FactKey::Path(path) | FactKey::Content(path) => path.clone(),
                    other => other.to_string(),
                },
                reason: reason.clone(),
            },
            _ => FactUnavailable::NotRead {
                key: key.to_string(),
            },
        }
    }
}

macro_rules! accessor {
    ($(#[$doc:meta])* $method:ident, $variant:ident, $arg:ty, $out:ty) => {
        $(#[$doc])*
        pub fn $method(&self, arg: $arg) -> Result<&$out, FactUnavailable> {
            let key = FactKey::$variant(arg.to_owned());
            match self.facts.get(&key) {
                Some(Fact::$variant(value)) => Ok(value),
                found => Err(FactUnavailable::for_key(&key, found)),
            }
        }
    };
}

impl FactStore {
    /// Notes that the play being run turns lingering on for `user` in some task.
    pub fn plan_lingering(&mut self, user: String) {
        self.lingering_planned.insert(user);
    }

    /// Whether the play being run turns lingering on for `user`.
    pub fn lingering_planned(&self, user: &str) -> bool {
        self.lingering_planned.contains(user)
    }

    /// Forgets which users the previous play turned lingering on for.
    pub fn clear_planned_lingering(&mut self) {
        self.lingering_planned.clear();
    }

    /// Whether `key` is known.
    pub fn has(&self, key: &FactKey) -> bool {
        self.facts.contains_key(key)
    }

    /// Records a fact, read or predicted.
    pub fn insert(&mut self, key: FactKey, fact: Fact) {
        self.facts.insert(key, fact);
    }

    /// Forgets what a change made stale, so it is read again before it is used.
    pub fn forget(&mut self, touch: &Touch) {
        match touch {
            Touch::Key(key) => {
                self.facts.remove(key);
            }
            Touch::Tree(root) => {
                let root = root.trim_end_matches('/');
                let below = |path: &str| {
                    path == root
                        || path
                            .strip_prefix(root)
                            .is_some_and(|rest| rest.starts_with('/'))
                };
                self.facts.retain(|key, _| match key {
                    FactKey::Path(path) | FactKey::Content(path) => !below(path),
                    _ => true,
                });
            }
            Touch::Units(manager) => self
                .facts
                .retain(|key, _| !matches!(key, FactKey::Unit(unit) if unit.manager == *manager)),
            Touch::Everything => self.facts.retain(|key, _| *key == FactKey::System),
        }
    }

    /// The first command sudo would refuse `user` (as `runas`), or `None` when it
    /// allows them all.
    pub fn sudo_refused(
        &self,
        user: &str,
        runas: &str,
        commands: &[String],
    ) -> Result<Option<&str>, FactUnavailable> {
        let key = FactKey::SudoRefused {
            user: user.to_owned(),
            runas: runas.to_owned(),
            commands: commands.to_vec(),
        };
        match self.facts.get(&key) {
            Some(Fact::SudoRefused(refused)) => Ok(refused.as_deref()),
            _ => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }

    /// What `systemd-analyze verify` said about a unit file to be installed.
    pub fn unit_verify(
        &self,
        candidate: &crate::unit_lint::Candidate,
    ) -> Result<&crate::unit_lint::Verdict, FactUnavailable> {
        let key = FactKey::UnitVerify(candidate.clone());
        match self.facts.get(&key) {
            Some(Fact::UnitVerify(verdict)) => Ok(verdict),
            found => Err(FactUnavailable::for_key(&key, found)),
        }
    }

    /// A unit's state.
    pub fn unit(&self, unit: &UnitRef) -> Result<&UnitState, FactUnavailable> {
        let key = FactKey::Unit(unit.clone());
        match self.facts.get(&key) {
            Some(Fact::Unit(state)) => Ok(state),
            _ => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }

    /// Every unit of `manager` the store knows.
    pub fn units_of(&self, manager: &Manager) -> Vec<UnitRef> {
        self.facts
            .keys()
            .filter_map(|key| match key {
                FactKey::Unit(unit) if unit.manager == *manager => Some(unit.clone()),
                _ => None,
            })
            .collect()
    }

    /// Mutable access to a unit's state, for check-mode predictions.
    pub fn unit_mut(&mut self, unit: &UnitRef) -> Option<&mut UnitState> {
        match self.facts.get_mut(&FactKey::Unit(unit.clone())) {
            Some(Fact::Unit(state)) => Some(state),
            _ => None,
        }
    }

    /// Host name and operating system.
    pub fn system(&self) -> Result<&SystemInfo, FactUnavailable> {
        match self.facts.get(&FactKey::System) {
            Some(Fact::System(info)) => Ok(info),
            _ => Err(FactUnavailable::NotRead {
                key: FactKey::System.to_string(),
            }),
        }
    }

    accessor!(
        /// A path's type and attributes.
        path, Path, &str, PathState
    );
    accessor!(
        /// A regular file's bytes (`None` when it is not a regular file).
        content, Content, &str, Option<Vec<u8>>
    );
    accessor!(
        /// A user account (`None` when it does not exist).
        user, User, &str, Option<UserInfo>
    );
    accessor!(
        /// A group (`None` when it does not exist).
        group, Group, &str, Option<GroupInfo>
    );
    accessor!(
        /// Whether lingering is on for a user.
        linger, Linger, &str, bool
    );
    accessor!(
        /// Exit status of a probe command.
        probe, Probe, &str, i32
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_unit(name: &str) -> FactKey {
        FactKey::Unit(UnitRef {
            manager: Manager::System,
            name: name.to_owned(),
        })
    }

    const ETC: &str = "directory:0:root:root:755:/etc\n";

    #[test]
    fn path_output_parses() {
        let key = FactKey::Path("/etc/x".into());
        assert_eq!(
            parse(&key, &format!("{ETC}regular file:0:root:root:644:/etc/x\n")).unwrap(),
            Fact::Path(PathState {
                kind: PathKind::File,
                owner: "root".into(),
                group: "root".into(),
                mode: 0o644
            })
        );
        assert_eq!(
            parse(
                &key,
                &format!("{ETC}directory:1000:deploy:deploy:2775:/etc/x\n")
            )
            .unwrap(),
            Fact::Path(PathState {
                kind: PathKind::Directory,
                owner: "deploy".into(),
                group: "deploy".into(),
                mode: 0o2775
            })
        );
        assert_eq!(
            parse(&key, &format!("{ETC}missing\n")).unwrap(),
            Fact::Path(PathState::missing())
        );
        assert_eq!(
            parse(&key, "missing\nmissing\n").unwrap(),
            Fact::Path(PathState::missing())
        );
        assert!(parse(&key, "garbage").is_err());
        assert!(parse(&key, "regular file:0:root:root:644:/etc/x\n").is_err());
    }

    #[test]
    fn a_path_behind_a_symbolic_link_or_an_unsafe_transition_is_refused() {
        let key = FactKey::Path("/home/deploy/.config/systemd".into());
        let home =
            "directory:0:root:root:755:/home\ndirectory:1000:deploy:deploy:750:/home/deploy\n";
        let Fact::Refused(reason) = parse(
            &key,
            &format!("{home}symbolic link:1000:deploy:deploy:777:/home/deploy/.config\ndirectory:0:root:root:755:/home/deploy/.config/systemd\n"),
        )
        .unwrap() else {
            panic!("not refused")
        };
        assert!(
            reason.starts_with("/home/deploy/.config is a symbolic link"),
            "{reason}"
        );
        let Fact::Refused(reason) = parse(
            &key,
            &format!("{home}directory:0:root:root:755:/home/deploy/.config\ndirectory:0:root:root:755:/home/deploy/.config/systemd\n"),
        )
        .unwrap() else {
            panic!("not refused")
        };
        assert!(reason.contains("unsafe ownership transition"), "{reason}");
        let error = FactStore::default();
        let mut store = error;
        store.insert(key.clone(), Fact::Refused(reason));
        assert!(store
            .path("/home/deploy/.config/systemd")
            .unwrap_err()
            .to_string()
            .starts_with(
                "will not touch /home/deploy/.config/systemd: /home/deploy/.config belongs to root"
            ));
    }

    #[test]
    fn path_output_about_another_path_is_refused() {
        let key = FactKey::Path("/etc/x".into());
        assert!(parse(&key, &format!("{ETC}regular file:0:root:root:644:/etc/y\n")).is_err());
        assert!(parse(
            &key,
            &format!("{ETC}regular file:0:root:root:644:/etc/x \n")
        )
        .is_err());
        assert!(parse(&key, &format!("{ETC}regular file:0:root:root:644\n")).is_err());
        let odd = FactKey::Path("/srv/a:b c\n".into());
        assert_eq!(
            parse(
                &odd,
                "directory:0:root:root:755:/srv\nsymbolic link:0:root:root:777:/srv/a:b c\n\n"
            )
            .unwrap(),
            Fact::Path(PathState {
                kind: PathKind::Symlink,
                owner: "root".into(),
                group: "root".into(),
                mode: 0o777
            })
        );
    }

    #[test]
    fn content_output_parses() {
        let key = FactKey::Content("/etc/x".into());
        assert_eq!(parse(&key, "absent\n").unwrap(), Fact::Content(None));
        assert_eq!(
            parse(&key, "present\n").unwrap(),
            Fact::Content(Some(vec![]))
        );
        assert_eq!(
            parse(&key, "present\naGVs\nbG8K\n").unwrap(),
            Fact::Content(Some(b"hello\n".to_vec()))
        );
    }

    #[test]
    fn user_output_parses() {
        let key = FactKey::User("deploy".into());
        let output = "deploy:x:1000:1000::/home/deploy:/bin/bash\ndeploy sudo adm deploy\n";
        assert_eq!(
            parse(&key, output).unwrap(),
            Fact::User(Some(UserInfo {
                uid: Some(1000),
                home: "/home/deploy".into(),
                shell: "/bin/bash".into(),
                primary_group: "deploy".into(),
                groups: vec!["adm".into(), "sudo".into()],
            }))
        );
        assert_eq!(parse(&key, "\n\n").unwrap(), Fact::User(None));
        // Deleted between `getent` and `id`.
        let Fact::User(Some(vanished)) =
            parse(&key, "deploy:x:1000:1000::/home/deploy:/bin/bash\n\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (vanished.primary_group, vanished.groups),
            (String::new(), vec![])
        );
    }

    #[test]
    fn unit_output_parses() {
        let output =
            "LoadState=loaded\nActiveState=active\nNeedDaemonReload=no\nUnitFileState=enabled\n";
        let Fact::Unit(state) = parse(&system_unit("a.service"), output).unwrap() else {
            panic!()
        };
        assert!(state.exists() && state.is_active() && state.is_enabled());
        assert!(!state.need_daemon_reload);
        let missing =
            "LoadState=not-found\nActiveState=inactive\nNeedDaemonReload=no\nUnitFileState=\n";
        let Fact::Unit(state) = parse(&system_unit("a.service"), missing).unwrap() else {
            panic!()
        };
        assert!(!state.exists());
        let user_key = FactKey::Unit(UnitRef {
            manager: Manager::User("deploy".into()),
            name: "a.service".into(),
        });
        let Fact::Unit(state) = parse(&user_key, "manager=down\n").unwrap() else {
            panic!()
        };
        assert_eq!(state.manager, ManagerState::Down);
    }

    /// Runs the probe for `deploy`'s `sidekiq.service` in `sh`, with `id`, `getent`,
    /// `systemctl` and `runuser` replaced by scripts that act out a host's state.
    fn probe_user_unit(manager: &str, show: &str) -> UnitState {
        // Unique per call: tests run in parallel threads of one process.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("converge-probe-{}-{call}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let home = dir.join("home");
        std::fs::create_dir_all(home.join(".config/systemd/user/default.target.wants")).unwrap();
        std::fs::write(home.join(".config/systemd/user/sidekiq.service"), "").unwrap();
        std::os::unix::fs::symlink(
            "../sidekiq.service",
            home.join(".config/systemd/user/default.target.wants/sidekiq.service"),
        )
        .unwrap();
        let fakes = [
            ("id", "echo 1000".to_owned()),
            (
                "getent",
                format!("echo deploy:x:1000:1000::{}:/bin/sh", home.display()),
            ),
            ("systemctl", format!("echo {manager}")),
            ("runuser", show.to_owned()),
        ];
        for (name, body) in fakes {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        let key = FactKey::Unit(UnitRef {
            manager: Manager::User("deploy".into()),
            name: "sidekiq.service".into(),
        });
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(key.probe())
            .env("PATH", path)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        match parse(&key, &String::from_utf8(output.stdout).unwrap()).unwrap() {
            Fact::Unit(state) => state,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_unit_probe_reads_a_running_manager() {
        let state = probe_user_unit(
            "active",
            "printf 'LoadState=loaded\\nActiveState=active\\nUnitFileState=enabled\\nNeedDaemonReload=no\\n'",
        );
        assert_eq!(state.manager, ManagerState::Running);
        assert!(state.exists() && state.is_active() && state.is_enabled());
    }

    #[test]
    fn user_unit_probe_asks_the_manager_as_its_user_through_its_runtime_dir() {
        let state = probe_user_unit(
            "active",
            r#"printf 'LoadState=loaded\nActiveState=%s\n' "$XDG_RUNTIME_DIR $*""#,
        );
        assert_eq!(
            state.active,
            "/run/user/1000 -u deploy -- systemctl --user show -p LoadState -p ActiveState -p UnitFileState -p NeedDaemonReload -- sidekiq.service"
        );
    }

    #[test]
    fn user_unit_probe_counts_a_manager_that_stops_answering_as_down() {
        // Lingering was just turned off: systemd still lists the manager as active
        // for a moment, but it no longer answers.
        let state = probe_user_unit("active", "echo 'Failed to connect to bus' >&2; exit 1");
        assert_eq!(state.manager, ManagerState::Down);
        assert!(state.is_enabled(), "{state:?}");
        for starting_or_stopping in ["activating", "deactivating", "inactive"] {
            let state = probe_user_unit(starting_or_stopping, "exit 99");
            assert_eq!(state.manager, ManagerState::Down, "{starting_or_stopping}");
        }
    }

    #[test]
    fn batch_round_trip() {
        let keys = vec![
            FactKey::Linger("deploy".into()),
            FactKey::Group("deploy".into()),
        ];
        let script = batch_script(&keys, "n0nce");
        assert!(script.contains("::converge:n0nce:0::"));
        let output = "::converge:n0nce:0::\nyes\n::converge:n0nce:1::\ndeploy:x:1000:\n::converge:n0nce:end::\n";
        let facts = split_batch(&keys, "n0nce", output).unwrap();
        assert_eq!(facts[0].1, Fact::Linger(true));
        assert_eq!(facts[1].1, Fact::Group(Some(GroupInfo { gid: Some(1000) })));
    }

    #[test]
    fn batch_cut_short_is_an_error() {
        let keys = vec![FactKey::Linger("a".into()), FactKey::Linger("b".into())];
        let output = "::converge:n:0::\nyes\n::converge:n:1::\n";
        assert_eq!(
            split_batch(&keys, "n", output).unwrap_err(),
            FactError::Truncated {
                key: "linger for b".into()
            }
        );
    }

    /// Runs the batch script for `keys` in `shell` and cuts its output apart.
    fn run_batch(shell: &str, keys: &[FactKey], nonce: &str) -> Vec<(FactKey, Fact)> {
        let output = std::process::Command::new(shell)
            .arg("-c")
            .arg(batch_script(keys, nonce))
            .output()
            .unwrap();
        split_batch(keys, nonce, &String::from_utf8(output.stdout).unwrap()).unwrap()
    }

    #[test]
    fn one_stat_gives_every_path_the_facts_of_its_own_probe() {
        let dir = std::env::temp_dir().join(format!("converge-stat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a")).unwrap();
        for name in [
            "a:b c",
            "it's *",
            "back\\slash",
            "tab\there",
            "line\nbreak",
            "-dash",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        std::os::unix::fs::symlink("nowhere", dir.join("dangling")).unwrap();
        let path = |name: &str| format!("{}/{name}", dir.display());
        // Missing paths between present ones, names that hold the `:` separating
        // stat's fields, a name another one starts or ends with, the same path twice,
        // and a newline, which takes the path out of the shared `stat`.
        let keys: Vec<FactKey> = [
            "gone",
            "a",
            "b c",
            "a:b c",
            "a:b",
            "it's *",
            "line\nbreak",
            "back\\slash",
            "tab\there",
            "-dash",
            "dangling",
            "a",
            "gone too",
        ]
        .into_iter()
        .map(|name| FactKey::Path(path(name)))
        .chain([
            FactKey::Linger("converge-nobody".into()),
            FactKey::Path(path("a/.")),
        ])
        .collect();
        let script = batch_script(&keys, "n");
        assert_eq!(
            script.matches("converge_stat=\"$(stat ").count(),
            1,
            "{script}"
        );
        let shells: Vec<&str> = ["sh", "bash"]
            .into_iter()
            .filter(|shell| {
                std::process::Command::new(shell)
                    .arg("-c")
                    .arg(":")
                    .status()
                    .is_ok()
            })
            .collect();
        for shell in shells {
            let facts = run_batch(shell, &keys, "n");
            for (key, fact) in &facts {
                let own = std::process::Command::new(shell)
                    .arg("-c")
                    .arg(key.probe())
                    .env("LC_ALL", "C")
                    .output()
                    .unwrap();
                let expected = parse(key, &String::from_utf8(own.stdout).unwrap()).unwrap();
                assert_eq!(*fact, expected, "{shell}: {key}");
            }
            let kinds: Vec<PathKind> = facts
                .iter()
                .filter_map(|(_, fact)| match fact {
                    Fact::Path(state) => Some(state.kind),
                    _ => None,
                })
                .collect();
            let (d, f, m, l) = (
                PathKind::Directory,
                PathKind::File,
                PathKind::Missing,
                PathKind::Symlink,
            );
            assert_eq!(kinds, [m, d, m, f, m, f, f, f, f, f, l, d, m, d], "{shell}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn system_probe_reads_the_host_name() {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(FactKey::System.probe())
            .output()
            .unwrap();
        let Fact::System(info) =
            parse(&FactKey::System, &String::from_utf8(output.stdout).unwrap()).unwrap()
        else {
            panic!()
        };
        let uname = std::process::Command::new("uname")
            .arg("-n")
            .output()
            .unwrap();
        assert_eq!(
            info.hostname,
            String::from_utf8(uname.stdout).unwrap().trim_end()
        );
        assert!(!info.os.is_empty());
        assert!(!info.systemctl.is_empty() || info.systemd_version.is_none());
    }

    #[test]
    fn system_output_names_the_sudo_flavour_and_the_tools() {
        let head = "h\ndebian\n13\n";
        let parsed = |rest: &str| match parse(&FactKey::System, &format!("{head}{rest}")).unwrap() {
            Fact::System(info) => info,
            other => panic!("{other:?}"),
        };
        let info = parsed("systemd=257\nsudo=/usr/bin/sudo\nsudo_version=Sudo version 1.9.16p2\nvisudo=/usr/sbin/visudo\nsystemctl=/bin/systemctl\nsystemctl=/usr/bin/systemctl\n");
        assert_eq!(info.systemd_version, Some(257));
        assert_eq!(
            info.sudo,
            Some(Sudo {
                path: "/usr/bin/sudo".into(),
                flavour: "sudo".into(),
                version: "1.9.16p2".into()
            })
        );
        assert_eq!(info.visudo.as_deref(), Some("/usr/sbin/visudo"));
        assert_eq!(info.systemctl, ["/bin/systemctl", "/usr/bin/systemctl"]);
        let rs = parsed("systemd=257\nsudo=/usr/bin/sudo-rs\nsudo_version=sudo-rs 0.2.5\nvisudo=/usr/bin/visudo-rs\n");
        assert_eq!(rs.sudo.as_ref().unwrap().flavour, "sudo-rs");
        assert_eq!(rs.sudo.as_ref().unwrap().version, "0.2.5");
        let none = parsed("systemd=\n");
        assert_eq!(
            (none.sudo, none.visudo, none.systemd_version),
            (None, None, None)
        );
    }

    #[test]
    fn batch_script_runs_in_sh() {
        let keys = vec![
            FactKey::Path("/".into()),
            FactKey::Path("/nonexistent/converge".into()),
            FactKey::Content("/nonexistent/converge".into()),
            FactKey::Probe("exit 3".into()),
        ];
        let script = batch_script(&keys, "t");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let facts = split_batch(&keys, "t", &String::from_utf8(output.stdout).unwrap()).unwrap();
        assert!(matches!(
            &facts[0].1,
            Fact::Path(PathState {
                kind: PathKind::Directory,
                ..
            })
        ));
        assert_eq!(facts[1].1, Fact::Path(PathState::missing()));
        assert_eq!(facts[2].1, Fact::Content(None));
        assert_eq!(facts[3].1, Fact::Probe(3));
    }

    #[test]
    fn sudo_check_output_parses() {
        let key = FactKey::SudoRefused {
            user: "deploy".into(),
            runas: "root".into(),
            commands: vec!["/bin/systemctl restart sidekiq".into()],
        };
        assert_eq!(parse(&key, "allowed\n").unwrap(), Fact::SudoRefused(None));
        assert_eq!(
            parse(&key, "refused:/bin/systemctl restart sidekiq\n").unwrap(),
            Fact::SudoRefused(Some("/bin/systemctl restart sidekiq".into()))
        );
        assert!(parse(&key, "sudo: unknown user\n").is_err());
    }

    #[test]
    fn forgetting_a_tree_keeps_siblings() {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Path("/opt/app".into()),
            Fact::Path(PathState::missing()),
        );
        store.insert(
            FactKey::Path("/opt/app/x".into()),
            Fact::Path(PathState::missing()),
        );
        store.insert(
            FactKey::Path("/opt/apple".into()),
            Fact::Path(PathState::missing()),
        );
        store.forget(&Touch::Tree("/opt/app".into()));
        assert!(!store.has(&FactKey::Path("/opt/app/x".into())));
        assert!(store.has(&FactKey::Path("/opt/apple".into())));
    }
}
