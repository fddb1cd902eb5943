//! One converge run at a time per host.
//!
//! A run takes the host's lock before its first change (a `--check` run, before its
//! first read) and keeps it until the run ends, so a scheduled drift run and a person
//! never interleave their changes on one host.
//!
//! The lock is a kernel `flock` on a lock file, held by a shell that the run starts in
//! its own SSH session (or, with `--connection local`, as its own child) and that lives
//! exactly as long as its stdin stays open (see [`crate::transport::Transport::hold`]).
//! The lock is taken, the holder described in the file, and the facts read, all by that
//! one command; then it sits waiting for the end of its stdin. The run gives the lock
//! back by closing that stdin. When the run dies instead, at any instant (SIGKILL, a
//! dropped connection), sshd or the kernel closes the stdin, the shell ends and the
//! kernel releases the lock: there is no moment at which a lock exists without a live
//! owner, and nothing to clean up. A live holder is waited for, a bounded time, and
//! then the run fails on that host with a message naming the holder.
//!
//! Where the lock lives: `/run/converge.lock` for root; for a login without root its
//! own runtime directory (`$XDG_RUNTIME_DIR`, else `/run/user/UID`), else
//! `~/.cache/converge/converge.lock`, never a directory others can write to. The
//! directory must belong to the login and be writable by nobody else, and the lock
//! file must not be a symbolic link; otherwise the run refuses with the reason. Only the
//! login (and root) can create names there, so nobody else can plant a link for the
//! lock file to be opened through, or take the lock first. The file is created 0600, so
//! no other user can open it to hold its `flock`.

use converge_modules::shell::quote;

/// Exit status of the lock script when the lock stayed held.
pub const LOCKED_EXIT: i32 = 75;

/// Exit status of the lock script when no safe place for the lock was found.
pub const UNSAFE_EXIT: i32 = 76;

/// Finds the lock file for this login, refusing places other users could tamper with.
const LOCATE: &str = r#"converge_uid=$(id -u)
if [ "$converge_uid" = 0 ]; then
  converge_dir=/run
else
  converge_dir=${XDG_RUNTIME_DIR:-/run/user/$converge_uid}
  if [ ! -d "$converge_dir" ] || [ -L "$converge_dir" ] || [ "$(stat -c %u -- "$converge_dir")" != "$converge_uid" ]; then
    converge_dir=${HOME:-/nonexistent}/.cache/converge
    mkdir -p -m 0700 -- "$converge_dir" || exit @UNSAFE_EXIT@
  fi
fi
converge_unsafe=
if [ -L "$converge_dir" ]; then
  converge_unsafe="it is a symbolic link"
elif [ "$(stat -c %u -- "$converge_dir")" != "$converge_uid" ]; then
  converge_unsafe="it does not belong to uid $converge_uid"
elif [ $(( 0$(stat -c %a -- "$converge_dir") & 022 )) -ne 0 ]; then
  converge_unsafe="other users can write to it"
fi
lock=$converge_dir/converge.lock
if [ -z "$converge_unsafe" ] && [ -L "$lock" ]; then
  converge_unsafe="$lock is a symbolic link"
fi
if [ -n "$converge_unsafe" ]; then
  echo "no safe place for this host's lock in $converge_dir: $converge_unsafe" >&2
  exit @UNSAFE_EXIT@
fi
# A lock directory left by converge before 0.2 (mkdir locks) is stale by now.
if [ -d "$lock" ]; then rm -rf -- "$lock"; fi
umask 077
exec 9<>"$lock" || exit @UNSAFE_EXIT@
"#;

/// The line the lock script writes once it holds the lock and has read the facts:
/// what [`crate::transport::Transport::hold`] waits for.
pub fn ready_line(nonce: &str) -> String {
    format!("::converge:{nonce}:locked::\n")
}

/// A shell script that takes the lock, waiting up to `wait_seconds` for a live holder
/// (otherwise it exits with [`LOCKED_EXIT`] naming the holder on stderr), writes
/// `holder` (this run, for whoever finds the lock taken) into the lock file, runs `body`
/// (with no stdin), writes `ready` and then holds the lock until its stdin ends.
///
/// The script is meant to arrive on stdin itself, read by [`reader_argv`], so the
/// rest of stdin is what keeps the lock.
pub fn hold_script(holder: &str, wait_seconds: u32, body: &str, ready: &str) -> String {
    let wait = if wait_seconds == 0 {
        "-n".to_owned()
    } else {
        format!("-w {wait_seconds}")
    };
    let locate = LOCATE.replace("@UNSAFE_EXIT@", &UNSAFE_EXIT.to_string());
    format!(
        r#"{locate}if ! flock {wait} 9; then
  held=$(head -n 1 <&9 | sed 's/ *$//')
  echo "another converge run holds this host's lock ($lock): ${{held:-unknown}}" >&2
  exit {LOCKED_EXIT}
fi
printf '%-400.400s\n' "$(printf '%s since %s' {holder} "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" >&9
{{
{body}
}} </dev/null 9>&-
printf '%s' {ready}
exec >/dev/null 2>&1
cat >/dev/null
"#,
        holder = quote(holder),
        ready = quote(ready),
    )
}

/// The command that runs a [`hold_script`] sent on its stdin: it reads exactly the
/// script's bytes, so the stdin stays open after it.
pub fn reader_argv(script: &str) -> Vec<String> {
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        format!("eval \"$(head -c {})\"", script.len()),
        "converge-lock".to_owned(),
    ]
}

/// Describes this run for the lock's holder line.
pub fn holder_description(login: &str) -> String {
    let controller = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".to_owned(), |name| name.trim().to_owned());
    format!(
        "converge {} on {controller} (pid {}) as {login}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;
    use crate::transport::{Limits, Transport};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A transport whose lock lives in `dir`: the tests run as whatever user runs
    /// them, root or not, and must meet neither real runs nor each other.
    fn take(
        transport: &mut LocalTransport,
        dir: &Path,
        holder: &str,
        wait: u32,
    ) -> (i32, String, bool) {
        let ready = ready_line("0123456789abcdef");
        let dir = dir.display().to_string();
        let script = hold_script(holder, wait, "echo facts", &ready)
            .replace("converge_dir=/run\n", &format!("converge_dir={dir}\n"))
            .replace(
                "converge_dir=${XDG_RUNTIME_DIR:-/run/user/$converge_uid}\n",
                &format!("converge_dir={dir}\n"),
            );
        let line = converge_modules::shell::join(&reader_argv(&script));
        let (output, held) = transport
            .hold(&line, script.as_bytes(), ready.as_bytes())
            .unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
            held,
        )
    }

    fn private_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[test]
    fn a_live_holder_is_waited_for_and_named_and_its_end_frees_the_lock() {
        let dir = private_dir();
        let mut first = LocalTransport::new("ops1", Limits::default());
        let (status, output, held) = take(&mut first, dir.path(), "first run", 1);
        assert!(held, "{status}: {output}");
        assert_eq!(output, "facts\n");
        let mode = std::fs::metadata(dir.path().join("converge.lock")).unwrap();
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);

        let mut second = LocalTransport::new("ops1", Limits::default());
        let (status, output, held) = take(&mut second, dir.path(), "second run", 1);
        assert!(!held);
        assert_eq!(status, LOCKED_EXIT, "{output}");
        assert!(
            output.contains("another converge run holds this host's lock (")
                && output.contains("converge.lock): first run since "),
            "{output}"
        );

        // However the holder ends (here its transport is dropped, as a killed run's
        // connection is), the lock is free at once, with nothing left to clean up.
        drop(first);
        let (status, output, held) = take(&mut second, dir.path(), "second run", 1);
        assert!(held, "{status}: {output}");
        second.release();
        let (_, _, held) = take(&mut second, dir.path(), "third run", 0);
        assert!(held);
    }

    #[test]
    fn a_planted_link_or_a_shared_directory_is_refused() {
        let dir = private_dir();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("converge.lock")).unwrap();
        let mut transport = LocalTransport::new("ops1", Limits::default());
        let (status, output, held) = take(&mut transport, dir.path(), "run", 0);
        assert!(!held);
        assert_eq!(status, UNSAFE_EXIT, "{output}");
        assert!(
            output.contains("converge.lock is a symbolic link"),
            "{output}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");

        let shared = tempfile::tempdir().unwrap();
        std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let (status, output, held) = take(&mut transport, shared.path(), "run", 0);
        assert!(!held);
        assert_eq!(status, UNSAFE_EXIT, "{output}");
        assert!(output.contains("other users can write to it"), "{output}");
        assert!(!shared.path().join("converge.lock").exists());
    }
}
