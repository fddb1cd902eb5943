//! Proof that a start or restart took: the unit must come up and *stay* up.
//!
//! `systemctl start` returns once systemd has forked a `Type=simple` service; a worker
//! that raises at boot dies a moment later, and `Restart=on-failure` hides that for a
//! while. So a start or restart that converge makes (the module's own, the restart a
//! unit file change derives, or a handler's) carries a [`Verify`]: in the same remote
//! script as the `systemctl` call, a bounded poll on the host watches the unit for the
//! settle time. It must stay `active` with the same main process and no new automatic
//! restart (`NRestarts`). A `Type=notify` unit is settled once `systemctl start` returned
//! and it is active: it said it is ready. A `Type=oneshot` unit, and a unit that is
//! not a service (a timer, a socket), is done when its start returned. Then the optional probe runs, with retries. Any failure ends the script
//! with the reason and the last lines of the unit's journal (system or the user's
//! manager), which become the task's failure message. One failure is not the unit's:
//! a process systemd could not move into the unit's control group (exit status 219,
//! a race of systemd 247 on hybrid cgroup hierarchies) never ran the service's code,
//! and is started once more.
//!
//! Everything happens in the change's one command: no extra round trip per poll.

use serde::{Deserialize, Serialize};

use crate::fact::{Manager, UnitRef};

/// Seconds a started unit must stay up when the task does not say (`settle`).
pub const DEFAULT_SETTLE: u32 = 3;
/// Journal lines shown when a unit fails to start or settle (`journal_lines`).
pub const DEFAULT_JOURNAL_LINES: u32 = 20;
/// The most seconds a settle time may be: the task holds the host meanwhile.
pub const MAX_SETTLE: u32 = 600;

/// A health check run on the host once the unit has settled (`probe:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// A command run by `sh -c`; exit status 0 means healthy.
    pub cmd: String,
    /// How many times to try again after a failure (default 3).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Seconds between tries (default 1).
    #[serde(default = "default_delay")]
    pub delay: u32,
}

fn default_retries() -> u32 {
    3
}

fn default_delay() -> u32 {
    1
}

/// How a start or restart is proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// Seconds the unit must stay up (0: only that it is up once `systemctl` returned).
    pub settle: u32,
    pub probe: Option<Probe>,
    /// Journal lines in a failure message (0: none).
    pub journal_lines: u32,
}

impl Verify {
    /// The verification the parameters of a `service` or `systemd_unit` task ask for.
    pub fn from_params(settle: Option<u32>, probe: Option<&Probe>, lines: Option<u32>) -> Self {
        Verify {
            settle: settle.unwrap_or(DEFAULT_SETTLE),
            probe: probe.cloned(),
            journal_lines: lines.unwrap_or(DEFAULT_JOURNAL_LINES),
        }
    }
}

/// The most journal lines a failure message may hold.
pub const MAX_JOURNAL_LINES: u32 = 1000;

/// Checks `settle`, `probe` and `journal_lines` parameters.
pub(crate) fn validate(
    settle: Option<u32>,
    probe: Option<&Probe>,
    lines: Option<u32>,
) -> Result<(), crate::ParamError> {
    if lines.is_some_and(|lines| lines > MAX_JOURNAL_LINES) {
        return Err(crate::ParamError::Invalid {
            param: "journal_lines",
            reason: format!("must be at most {MAX_JOURNAL_LINES}"),
        });
    }
    if settle.is_some_and(|settle| settle > MAX_SETTLE) {
        return Err(crate::ParamError::Invalid {
            param: "settle",
            reason: format!("must be at most {MAX_SETTLE} seconds"),
        });
    }
    if let Some(probe) = probe {
        if probe.cmd.trim().is_empty() {
            return Err(crate::ParamError::Invalid {
                param: "probe",
                reason: "needs a `cmd`".to_owned(),
            });
        }
        if probe.retries > 100 || probe.delay > 60 {
            return Err(crate::ParamError::Invalid {
                param: "probe",
                reason: "allows at most 100 retries and a delay of 60 seconds".to_owned(),
            });
        }
    }
    Ok(())
}

/// Starts or restarts a unit (`$2`) and proves it: see the module documentation.
/// Arguments: user (empty: the system manager), verb, unit, settle seconds, journal
/// lines, probe command (empty: none), retries, delay.
pub(crate) const START_AND_SETTLE: &str = r#"user=$1 verb=$2 unit=$3 settle=$4 lines=$5 probe=$6 retries=$7 delay=$8
if [ -n "$user" ]; then
  uid=$(id -u -- "$user") || exit 1
  ctl() { XDG_RUNTIME_DIR="/run/user/$uid" runuser -u "$user" -- systemctl --user "$@"; }
  journal() { journalctl -b -q --no-pager -o short-iso -n "$lines" _UID="$uid" _SYSTEMD_USER_UNIT="$unit" + _UID="$uid" USER_UNIT="$unit" ${execpid:+ + _UID="$uid" _PID="$execpid"}; }
else
  ctl() { systemctl "$@"; }
  journal() { journalctl -b -q --no-pager -o short-iso -n "$lines" _SYSTEMD_UNIT="$unit" + _PID=1 UNIT="$unit" ${execpid:+ + _PID="$execpid"}; }
fi
# A process that dies at once may be gone before journald reads its cgroup: its last
# words then carry no unit field, only its PID, which systemd remembers as ExecMainPID.
fail() {
  printf '%s\n' "$1" >&2
  if [ "$lines" -gt 0 ]; then
    journalctl --sync >/dev/null 2>&1
    log=$(journal 2>/dev/null)
    if [ -n "$log" ]; then
      printf 'last %s lines of its journal:\n%s\n' "$lines" "$log" >&2
    fi
  fi
  exit 1
}
read_state() {
  out=$(ctl show -p ActiveState -p SubState -p MainPID -p ExecMainPID -p ExecMainStatus -p NRestarts -p Type -p Result -- "$unit" 2>/dev/null) || out=
  active=unknown sub=unknown pid= execpid= main_status= restarts=0 type= result=
  while IFS= read -r line; do
    case $line in
      ActiveState=*) active=${line#*=} ;;
      SubState=*) sub=${line#*=} ;;
      MainPID=*) pid=${line#*=} ;;
      ExecMainPID=0) execpid= ;;
      ExecMainPID=*) execpid=${line#*=} ;;
      ExecMainStatus=*) main_status=${line#*=} ;;
      NRestarts=*) restarts=${line#*=} ;;
      Type=*) type=${line#*=} ;;
      Result=*) result=${line#*=} ;;
    esac
  done <<EOF
$out
EOF
}
now() {
  case $result in
    success|'') printf '%s (%s)' "$active" "$sub" ;;
    *) printf '%s (%s, result %s)' "$active" "$sub" "$result" ;;
  esac
}
started=yes
out=$(ctl "$verb" -- "$unit" 2>&1) || started=
read_state
# systemd 247 on a hybrid cgroup hierarchy can fail to move a new process into the
# unit's control group ("Failed at step CGROUP", exit status 219): the service's own
# code never ran, so starting it once more is safe.
if [ "$main_status" = 219 ] && { [ -z "$started" ] || [ "$active" != active ]; }; then
  printf '%s\n' "systemd could not place $unit's process in its control group (status 219/CGROUP); starting it once more" >&2
  started=yes
  out=$(ctl restart -- "$unit" 2>&1) || started=
  read_state
fi
if [ -z "$started" ]; then
  fail "$unit did not $verb: $out
$unit is $(now)"
fi
case $unit in
  # Only a service has a main process that can die: a timer, socket or target is up
  # once its start returned.
  *.service) ;;
  *) settle=0 ;;
esac
case $type in
  oneshot) settle=0 ;;
  notify|notify-reload)
    # It told systemd it is ready, or `systemctl` would still be waiting.
    settle=0 ;;
esac
if [ "$active" != active ]; then
  fail "$unit did not stay up: right after $verb it is $(now)"
elif [ "$restarts" != 0 ]; then
  fail "$unit did not stay up: right after $verb systemd had restarted it $restarts times; it is $(now)"
fi
first=$pid
i=0
while [ "$i" -lt $((settle * 2)) ]; do
  sleep 0.5
  i=$((i + 1))
  # While its main process lives, the unit has neither stopped nor been restarted: a
  # signal 0 costs nothing, where asking the manager costs a `systemctl` (and for a user
  # unit a `runuser`) per poll. The manager is asked once the process is gone, when there
  # is none to watch, and at the end.
  if [ "$i" -lt $((settle * 2)) ] && [ "${first:-0}" != 0 ] && kill -0 "$first" 2>/dev/null; then
    continue
  fi
  read_state
  when="within $((i / 2)).$((i % 2 * 5)) s of $verb (settle ${settle} s)"
  if [ "$active" != active ]; then
    fail "$unit did not stay up: $when it became $(now)"
  elif [ "$restarts" != 0 ]; then
    fail "$unit did not stay up: $when systemd restarted it $restarts times; it is $(now)"
  elif [ "$pid" != "$first" ]; then
    fail "$unit did not stay up: $when its main process changed ($first, now $pid)"
  fi
done
if [ -n "$probe" ]; then
  try=1
  while :; do
    said=$(sh -c "$probe" </dev/null 2>&1) && break
    status=$?
    if [ "$try" -gt "$retries" ]; then
      fail "$unit is up, but its probe failed $try times (exit status $status): $(printf '%s\n' "$said" | tail -n 5)"
    fi
    try=$((try + 1))
    sleep "$delay"
  done
fi
echo "$unit settled"
"#;

/// The command that starts or restarts `unit` (`verb`) and proves it with `verify`.
pub(crate) fn command(unit: &UnitRef, verb: &str, verify: &Verify) -> crate::Cmd {
    let user = match &unit.manager {
        Manager::System => String::new(),
        Manager::User(user) => user.clone(),
    };
    let probe = verify.probe.as_ref();
    crate::Cmd::script(
        START_AND_SETTLE,
        [
            user,
            verb.to_owned(),
            unit.name.clone(),
            verify.settle.to_string(),
            verify.journal_lines.to_string(),
            probe.map(|p| p.cmd.clone()).unwrap_or_default(),
            probe.map_or(0, |p| p.retries).to_string(),
            probe.map_or(0, |p| p.delay).to_string(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(name: &str) -> UnitRef {
        UnitRef {
            manager: Manager::System,
            name: name.into(),
        }
    }

    #[test]
    fn defaults_are_a_few_seconds_and_twenty_lines() {
        let verify = Verify::from_params(None, None, None);
        assert_eq!(verify.settle, 3);
        assert_eq!(verify.journal_lines, 20);
        assert!(verify.probe.is_none());
    }

    #[test]
    fn the_command_is_one_constant_script_with_quoted_arguments() {
        let verify = Verify {
            settle: 5,
            probe: Some(Probe {
                cmd: "curl -fs http://127.0.0.1:7433/ | grep -q ok; rm -rf /".into(),
                retries: 2,
                delay: 1,
            }),
            journal_lines: 20,
        };
        let cmd = command(&system("sidekiq.service"), "restart", &verify);
        assert_eq!(cmd.argv[2], START_AND_SETTLE);
        assert_eq!(
            &cmd.argv[3..],
            [
                "converge",
                "",
                "restart",
                "sidekiq.service",
                "5",
                "20",
                "curl -fs http://127.0.0.1:7433/ | grep -q ok; rm -rf /",
                "2",
                "1"
            ]
        );
    }

    #[test]
    fn settle_and_probe_limits() {
        assert!(validate(Some(600), None, None).is_ok());
        assert_eq!(
            validate(Some(601), None, None).unwrap_err().to_string(),
            "`settle` must be at most 600 seconds"
        );
        let probe = Probe {
            cmd: " ".into(),
            retries: 0,
            delay: 0,
        };
        assert_eq!(
            validate(None, Some(&probe), Some(1000))
                .unwrap_err()
                .to_string(),
            "`probe` needs a `cmd`"
        );
    }

    /// The script's own logic, with `systemctl` and `journalctl` played by shell
    /// functions reading a scripted sequence of states.
    fn run_with_states(states: &[&str], settle: u32, probe: &str) -> (i32, String) {
        let (status, stderr, _) = run_counting_reads(states, settle, probe);
        (status, stderr)
    }

    /// As [`run_with_states`], with how many times the script asked the manager.
    fn run_counting_reads(states: &[&str], settle: u32, probe: &str) -> (i32, String, usize) {
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("converge-settle-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (index, state) in states.iter().enumerate() {
            std::fs::write(dir.join(index.to_string()), state.replace(' ', "\n")).unwrap();
        }
        let fake = format!(
            r#"echo 0 > "{dir}/n"
systemctl() {{
  case $1 in
    show)
      echo >> "{dir}/reads"
      # Called in a subshell: the position in the script lives in a file.
      n=$(cat "{dir}/n"); cat "{dir}/$n"
      if [ -e "{dir}/$((n + 1))" ]; then echo $((n + 1)) > "{dir}/n"; fi ;;
  esac
}}
# `kill -0 PID` looks at the state the next `show` would print: the process lives while
# the unit is active with PID as its main process. It moves on to the next state only
# while the process lives, so the `show` that follows a death prints that death.
kill() {{
  n=$(cat "{dir}/n")
  grep -qx ActiveState=active "{dir}/$n" && grep -qx "MainPID=$2" "{dir}/$n" || return 1
  if [ -e "{dir}/$((n + 1))" ]; then echo $((n + 1)) > "{dir}/n"; fi
}}
journalctl() {{ [ "$1" = --sync ] || echo 'worker: boom'; }}
sleep() {{ :; }}
"#,
            dir = dir.display()
        );
        let script = format!("{fake}{START_AND_SETTLE}");
        let output = std::process::Command::new("sh")
            .args(["-c", &script, "converge", "", "restart", "w.service"])
            .args([
                settle.to_string(),
                "20".into(),
                probe.into(),
                "1".into(),
                "0".into(),
            ])
            .output()
            .unwrap();
        let reads = std::fs::read_to_string(dir.join("reads"))
            .unwrap_or_default()
            .lines()
            .count();
        std::fs::remove_dir_all(&dir).unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            reads,
        )
    }

    const UP: &str =
        "Type=simple ActiveState=active SubState=running MainPID=42 NRestarts=0 Result=success";

    #[test]
    fn a_unit_that_stays_up_settles() {
        assert_eq!(run_with_states(&[UP], 2, ""), (0, String::new()));
    }

    #[test]
    fn a_unit_whose_main_process_lives_is_asked_about_right_after_its_start_and_at_the_end() {
        assert_eq!(run_counting_reads(&[UP], 3, ""), (0, String::new(), 2));
        // With no main process to watch, every poll asks the manager.
        let without = UP.replace("MainPID=42", "MainPID=0");
        assert_eq!(
            run_counting_reads(&[&without], 3, ""),
            (0, String::new(), 7)
        );
    }

    #[test]
    fn a_unit_restarted_by_systemd_within_the_settle_time_fails_with_its_journal() {
        let restarted = "Type=simple ActiveState=activating SubState=auto-restart MainPID=0 NRestarts=1 Result=exit-code";
        let (status, stderr) = run_with_states(&[UP, UP, restarted], 3, "");
        assert_eq!(status, 1);
        assert_eq!(
            stderr,
            "w.service did not stay up: within 1.0 s of restart (settle 3 s) it became activating (auto-restart, result exit-code)\nlast 20 lines of its journal:\nworker: boom\n"
        );
    }

    #[test]
    fn a_unit_already_down_when_systemctl_returns_fails_at_once() {
        let down = "Type=simple ActiveState=activating SubState=auto-restart MainPID=0 NRestarts=0 Result=exit-code";
        let (status, stderr) = run_with_states(&[down], 3, "");
        assert_eq!(status, 1);
        assert!(
            stderr.starts_with("w.service did not stay up: right after restart it is activating (auto-restart, result exit-code)\nlast 20 lines of its journal:\n"),
            "{stderr}"
        );
    }

    #[test]
    fn a_process_systemd_could_not_place_in_its_control_group_is_started_once_more() {
        let misplaced = "Type=simple ActiveState=activating SubState=auto-restart MainPID=0 ExecMainStatus=219 NRestarts=0 Result=exit-code";
        let note = "systemd could not place w.service's process in its control group (status 219/CGROUP); starting it once more\n";
        assert_eq!(
            run_with_states(&[misplaced, UP], 2, ""),
            (0, note.to_owned())
        );
        let (status, stderr) = run_with_states(&[misplaced, misplaced], 2, "");
        assert_eq!(status, 1);
        assert!(
            stderr.starts_with(&format!("{note}w.service did not stay up: right after restart it is activating (auto-restart, result exit-code)\n")),
            "{stderr}"
        );
        // A service that ran and failed on its own is not started again.
        let failed = misplaced.replace("=219", "=1");
        assert_eq!(run_with_states(&[&failed, UP], 2, "").0, 1);
    }

    #[test]
    fn a_new_main_process_fails_the_settle() {
        let (status, stderr) = run_with_states(&[UP, &UP.replace("=42", "=43")], 3, "");
        assert_eq!(status, 1);
        assert!(
            stderr.starts_with("w.service did not stay up: within 0.5 s of restart (settle 3 s) its main process changed (42, now 43)\n"),
            "{stderr}"
        );
    }

    #[test]
    fn a_notify_unit_is_settled_once_started() {
        let notify = UP.replace("simple", "notify");
        let failed =
            "Type=notify ActiveState=failed SubState=failed MainPID=0 NRestarts=0 Result=exit-code";
        assert_eq!(run_with_states(&[&notify, failed], 30, "").0, 0);
    }

    #[test]
    fn a_failing_probe_fails_after_its_retries() {
        let (status, stderr) = run_with_states(&[UP], 0, "echo not ready; exit 7");
        assert_eq!(status, 1);
        assert!(
            stderr.starts_with(
                "w.service is up, but its probe failed 2 times (exit status 7): not ready\n"
            ),
            "{stderr}"
        );
        assert_eq!(run_with_states(&[UP], 0, "true").0, 0);
    }
}
