//! Paths on a host that other users share: how converge reaches a path without letting
//! anyone else redirect it.
//!
//! converge runs as root on hosts where unprivileged users own directories it writes
//! into (`~/.config/systemd/user`). Whoever owns a directory can put a symbolic link
//! in it, or rename one entry over another, at any instant. Two rules follow, checked
//! when facts are read and again, on the host, by every change that touches a path:
//!
//! - **No symbolic link is followed on the way to a managed path**, at any component
//!   (the kernel's `RESOLVE_NO_SYMLINKS`). A script enters a directory with `cd -P` and
//!   then compares `$PWD` (what the kernel says the working directory is) with the
//!   path it asked for: any symbolic link on the way makes them differ, and the change
//!   is refused, naming the link. From then on the script works relative to the
//!   directory it is *in*, which no rename can swap, and only ever acts on the last
//!   component with calls that do not follow links either (`rename`, `unlink`,
//!   `dd iflag=nofollow`, `mkdir`, `chown` on `.`).
//! - **No unsafe ownership transition** (systemd's `chase()` rule): below a directory
//!   owned by a user other than root, every directory on the way must belong to that
//!   same user. A directory of root's inside a user's directory could be swapped by
//!   that user for one of their own at any time, so converge refuses to act there.
//!
//! A new file is written into a private directory converge makes beside the target
//! (root's, mode 0700, unguessable name): nobody else can rename or replace anything
//! inside it, so the file is filled, owned, moded and validated there by name, then
//! renamed over the target. Changing the owner or mode of an existing file in a
//! directory another user could write to is done the same way, on a copy, because
//! `chmod` by name follows a link that user may have swapped in.

use crate::fact::PathKind;
use crate::shell::quote;

/// Exit status of a change refused because of an unsafe path.
pub const UNSAFE_EXIT: i32 = 77;

/// Shell functions every path-changing script starts with.
///
/// `converge_enter DIR` makes `DIR` (absolute, normalized) the working directory
/// without following a symbolic link anywhere, or exits naming why it cannot.
/// `converge_trusted DIR` succeeds when `DIR` and every directory above it belong to
/// root and only root may write to them, so no one else can change what is below.
/// `converge_private` makes a private working directory beside the target and enters
/// it (`converge_cleanup` removes it, also when the script fails).
pub(crate) const PRELUDE: &str = r#"converge_components() {
  converge_rest=${1#/}
  converge_prefix=
}
converge_next() {
  [ -n "$converge_rest" ] || return 1
  converge_comp=${converge_rest%%/*}
  case $converge_rest in */*) converge_rest=${converge_rest#*/} ;; *) converge_rest= ;; esac
  converge_prefix="$converge_prefix/$converge_comp"
}
converge_refuse() {
  converge_components "$1"
  while converge_next; do
    if [ -h "$converge_prefix" ]; then
      printf 'refusing %s: %s is a symbolic link (to %s); converge never follows a symbolic link on the way to a path it manages\n' "$converge_target" "$converge_prefix" "$(readlink -- "$converge_prefix")" >&2
      exit 77
    fi
    if [ ! -e "$converge_prefix" ]; then
      echo "directory $converge_prefix does not exist" >&2
      exit 66
    fi
    if [ ! -d "$converge_prefix" ]; then
      echo "refusing $converge_target: $converge_prefix is not a directory" >&2
      exit 77
    fi
  done
  echo "refusing $converge_target: $1 was replaced while converge entered it" >&2
  exit 77
}
converge_enter() {
  if cd -P -- "$1" 2>/dev/null && [ "$PWD" = "$1" ]; then return 0; fi
  converge_refuse "$1"
}
converge_trusted() {
  converge_components "$1"
  set -- /
  while converge_next; do set -- "$@" "$converge_prefix"; done
  for converge_m in $(stat -c '%u:%a' -- "$@"); do
    case $converge_m in
      0:*[2367][0-7] | 0:*[2367]) return 1 ;;
      0:*) ;;
      *) return 1 ;;
    esac
  done
}
converge_private() {
  converge_work=$(mktemp -d .converge.XXXXXXXX) || exit 1
  converge_dir=$PWD
  converge_inside=
  trap 'converge_cleanup' EXIT
  # In a setgid directory (Debian's /etc/redis is redis's, mode 2770) a new directory
  # inherits the setgid bit: it stays private to its owner all the same.
  if ! { cd -P -- "$converge_work" && [ "$PWD" = "${converge_dir%/}/$converge_work" ] \
      && case $(stat -c %u:%a .) in "$(id -u):700" | "$(id -u):2700") ;; *) false ;; esac; }; then
    echo "refusing $converge_target: converge's own working directory ${converge_dir%/}/$converge_work was replaced" >&2
    exit 77
  fi
  converge_inside=1
}
converge_cleanup() {
  if [ -n "$converge_inside" ]; then
    rm -f -- new
    # The directory's owner may have renamed it away meanwhile: then it stays there,
    # empty and root's, and the change itself still stands.
    cd .. && rmdir -- "$converge_work" 2>/dev/null || true
    converge_inside=
  fi
  trap - EXIT
}
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
"#;

/// A shell condition that is true when the working directory has become `dir` without
/// following a symbolic link and `name` in it is a regular file, not a link: the guard
/// of every content read. Both are quoted here.
pub(crate) fn regular_file_in(dir: &str, name: &str) -> String {
    let relative = format!("./{name}");
    let (dir, name) = (quote(dir), quote(&relative));
    format!(
        "cd -P -- {dir} 2>/dev/null && [ \"$PWD\" = {dir} ] && [ -f {name} ] && [ ! -h {name} ]"
    )
}

/// A command printing at most `limit` bytes of `name` in the working directory, never
/// through a symbolic link and without blocking on a FIFO swapped in.
pub(crate) fn read_nofollow(name: &str, limit: usize) -> String {
    format!(
        "dd if={} iflag=nofollow,nonblock,count_bytes count={limit} bs=64K status=none",
        quote(&format!("./{name}"))
    )
}

/// `path` with empty and `.` components removed: `//etc/./x/` is `/etc/x`. Paths
/// converge manages never hold `..` (see [`crate::names::path`]).
pub fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// The directory a path is in and its last component, both normalized.
pub fn split(path: &str) -> (String, String) {
    let path = normalize(path);
    match path.rsplit_once('/') {
        Some(("", name)) => ("/".to_owned(), name.to_owned()),
        Some((dir, name)) => (dir.to_owned(), name.to_owned()),
        None => ("/".to_owned(), path),
    }
}

/// Every directory on the way to `path`, below `/`, outermost first:
/// `/home/deploy/.config` for `/home/deploy/.config/x`.
pub fn ancestors(path: &str) -> Vec<String> {
    let path = normalize(path);
    let mut found = Vec::new();
    let mut end = 0;
    while let Some(offset) = path[end + 1..].find('/') {
        end += 1 + offset;
        found.push(path[..end].to_owned());
    }
    found
}

/// One directory on the way to a path, as `stat` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub path: String,
    pub kind: PathKind,
    pub uid: u32,
    pub owner: String,
}

/// What stands between converge and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    /// Every directory on the way exists and is safe to pass.
    Clear,
    /// A directory on the way does not exist (yet): the path does not either.
    Missing,
    /// converge must not go there; the reason names the component and why.
    Unsafe(String),
}

/// Judges the directories on the way to `target`, outermost first.
pub fn judge(target: &str, steps: &[Step]) -> Way {
    // The user (other than root) who owns a directory passed so far: below it, only
    // that user's own directories are safe to pass.
    let mut controller: Option<&Step> = None;
    for step in steps {
        match step.kind {
            PathKind::Missing => return Way::Missing,
            PathKind::Directory => {}
            PathKind::Symlink => {
                return Way::Unsafe(format!(
                    "{} is a symbolic link; converge never follows a symbolic link on the way to a path it manages (name the real path, or remove the link)",
                    step.path
                ))
            }
            kind => {
                return Way::Unsafe(format!(
                    "{} is a {kind}, not a directory, so {target} cannot exist",
                    step.path
                ))
            }
        }
        match controller {
            Some(parent) if step.uid != parent.uid => {
                return Way::Unsafe(format!(
                    "{} belongs to {} but lies in a directory that {} owns ({}), who could replace it at any moment (an unsafe ownership transition); give it to {} or move {target} elsewhere",
                    step.path, step.owner, parent.owner, parent.path, parent.owner
                ))
            }
            None if step.uid != 0 => controller = Some(step),
            _ => {}
        }
    }
    Way::Clear
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(path: &str, uid: u32) -> Step {
        Step {
            path: path.into(),
            kind: PathKind::Directory,
            uid,
            owner: if uid == 0 {
                "root".into()
            } else {
                format!("u{uid}")
            },
        }
    }

    #[test]
    fn paths_split_into_normalized_directory_and_name() {
        assert_eq!(normalize("//etc/./x/"), "/etc/x");
        assert_eq!(
            split("/etc/sudoers.d/app"),
            ("/etc/sudoers.d".into(), "app".into())
        );
        assert_eq!(split("/x"), ("/".into(), "x".into()));
        assert_eq!(split("/opt//app/"), ("/opt".into(), "app".into()));
        assert_eq!(
            ancestors("/home/deploy/.config/x"),
            ["/home", "/home/deploy", "/home/deploy/.config"]
        );
        assert!(ancestors("/x").is_empty());
    }

    #[test]
    fn a_users_own_tree_is_clear() {
        let steps = [
            dir("/home", 0),
            dir("/home/deploy", 1000),
            dir("/home/deploy/.config", 1000),
        ];
        assert_eq!(judge("/home/deploy/.config/x", &steps), Way::Clear);
    }

    #[test]
    fn a_symbolic_link_on_the_way_is_refused() {
        let mut link = dir("/home/deploy/.config", 1000);
        link.kind = PathKind::Symlink;
        let steps = [dir("/home", 0), dir("/home/deploy", 1000), link];
        let Way::Unsafe(reason) = judge("/home/deploy/.config/systemd", &steps) else {
            panic!("not refused");
        };
        assert!(
            reason.starts_with("/home/deploy/.config is a symbolic link"),
            "{reason}"
        );
    }

    #[test]
    fn roots_directory_inside_a_users_directory_is_an_unsafe_transition() {
        let steps = [
            dir("/home", 0),
            dir("/home/deploy", 1000),
            dir("/home/deploy/etc", 0),
        ];
        let Way::Unsafe(reason) = judge("/home/deploy/etc/x", &steps) else {
            panic!("not refused");
        };
        assert!(
            reason.starts_with(
                "/home/deploy/etc belongs to root but lies in a directory that u1000 owns"
            ),
            "{reason}"
        );
        let other = [dir("/srv", 0), dir("/srv/a", 1000), dir("/srv/a/b", 1001)];
        assert!(matches!(judge("/srv/a/b/c", &other), Way::Unsafe(_)));
    }

    #[test]
    fn a_missing_directory_means_a_missing_path() {
        let mut missing = dir("/opt/app", 0);
        missing.kind = PathKind::Missing;
        assert_eq!(
            judge("/opt/app/x", &[dir("/opt", 0), missing]),
            Way::Missing
        );
    }
}
