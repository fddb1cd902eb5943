//! One converge run at a time per host.
//!
//! A run takes the host's lock before it reads anything and gives it back when it ends,
//! so a scheduled drift run and a person never interleave their changes on one host.
//! The lock is a directory (`/run/converge.lock`, or `/tmp/converge.lock` for a login
//! without root), created atomically with `mkdir`. It records its owner: the process
//! that carries this run's commands on the host (the SSH session's `sshd`, or the local
//! `converge`) with that process's start time, and a line describing the run for
//! people. A lock whose owner is gone (the run was killed, the connection dropped) is
//! stale and is taken over; a live one is waited for, a bounded time, and then the run
//! fails on that host with a message naming the holder.

use converge_modules::shell::quote;

/// Exit status of the acquire script when the lock stayed held.
pub const LOCKED_EXIT: i32 = 75;

/// Finds this run's owner process and its identity (`PID STARTTIME`), for both scripts.
const OWNER: &str = r#"lock=/run/converge.lock
[ -w /run ] || lock=/tmp/converge.lock
owner_pid=$$
while [ "$owner_pid" -gt 1 ]; do
  case $(cat /proc/$owner_pid/comm 2>/dev/null) in sshd*|converge*) break ;; esac
  owner_pid=$(sed 's/^.*) //' /proc/$owner_pid/stat | cut -d' ' -f2)
done
started() { sed 's/^.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f20; }
owner="$owner_pid $(started $owner_pid)"
"#;

/// A shell snippet that takes the lock, waiting up to `wait_seconds` for a live holder,
/// and otherwise exits with [`LOCKED_EXIT`] naming it on stderr. `holder` describes this
/// run to whoever finds the lock taken.
pub fn acquire_script(holder: &str, wait_seconds: u32) -> String {
    format!(
        r#"{OWNER}tries=0
while ! mkdir "$lock" 2>/dev/null; do
  held=$(cat "$lock/owner" 2>/dev/null)
  [ "$held" = "$owner" ] && break
  held_pid=${{held%% *}}
  if [ -n "$held" ] && [ "$(started "$held_pid")" != "${{held#* }}" ]; then
    rm -rf "$lock"
    continue
  fi
  if [ "$tries" -ge {limit} ]; then
    echo "another converge run holds this host's lock ($lock): $(cat "$lock/holder" 2>/dev/null || echo unknown)" >&2
    exit {LOCKED_EXIT}
  fi
  sleep 0.5
  tries=$((tries + 1))
done
printf '%s\n' "$owner" > "$lock/owner"
printf '%s since %s\n' {holder} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$lock/holder"
"#,
        limit = wait_seconds * 2,
        holder = quote(holder),
    )
}

/// A shell script that gives the lock back if this run holds it.
pub fn release_script() -> String {
    format!(
        r#"{OWNER}if [ "$(cat "$lock/owner" 2>/dev/null)" = "$owner" ]; then rm -rf "$lock"; fi"#
    )
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
    use std::process::Command;

    fn sh(script: &str) -> std::process::Output {
        Command::new("sh").arg("-c").arg(script).output().unwrap()
    }

    /// Runs with a private lock path so tests don't meet real runs or each other.
    fn private(script: &str, dir: &std::path::Path) -> String {
        script
            .replace(
                "lock=/run/converge.lock",
                &format!("lock={}/held", dir.display()),
            )
            .replace("[ -w /run ] || lock=/tmp/converge.lock", ":")
    }

    #[test]
    fn a_run_takes_releases_and_retakes_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let acquire = private(&acquire_script("test run", 1), dir.path());
        assert!(sh(&acquire).status.success());
        let holder = std::fs::read_to_string(dir.path().join("held/holder")).unwrap();
        assert!(holder.starts_with("test run since "), "{holder}");
        // Same owner (this test process): taking it again succeeds at once.
        assert!(sh(&acquire).status.success());
        assert!(sh(&private(&release_script(), dir.path())).status.success());
        assert!(!dir.path().join("held").exists());
    }

    #[test]
    fn a_live_holder_is_named_and_a_dead_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("held");
        std::fs::create_dir(&lock).unwrap();
        // PID 1 is alive and is not this run: a live holder.
        let init_start = Command::new("sh")
            .arg("-c")
            .arg("sed 's/^.*) //' /proc/1/stat | cut -d' ' -f20")
            .output()
            .unwrap();
        let init_start = String::from_utf8(init_start.stdout).unwrap();
        std::fs::write(lock.join("owner"), format!("1 {}", init_start.trim())).unwrap();
        std::fs::write(
            lock.join("holder"),
            "converge on ops1 (pid 9) as root since then\n",
        )
        .unwrap();
        let output = sh(&private(&acquire_script("second run", 1), dir.path()));
        assert_eq!(output.status.code(), Some(LOCKED_EXIT));
        assert!(String::from_utf8_lossy(&output.stderr)
            .contains("another converge run holds this host's lock"));
        assert!(String::from_utf8_lossy(&output.stderr)
            .contains("converge on ops1 (pid 9) as root since then"));
        // A holder whose process is gone is stale.
        std::fs::write(lock.join("owner"), "999999999 1").unwrap();
        assert!(sh(&private(&acquire_script("third run", 1), dir.path()))
            .status
            .success());
        assert!(std::fs::read_to_string(lock.join("holder"))
            .unwrap()
            .starts_with("third run"));
    }
}
