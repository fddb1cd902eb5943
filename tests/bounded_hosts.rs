//! What one misbehaving host can cost a run, on real hosts: a command that floods its
//! output fails on its host at the output limit (with the limit and how to raise it in
//! the message) while the other host converges and the recap and report are written;
//! a host that freezes mid-run is declared unreachable once it has left the keepalives
//! unanswered for the ssh config's `ServerAliveInterval` × `ServerAliveCountMax`, while
//! the other host converges. Every run is under a generous `timeout`, so a hang fails
//! the test rather than stalling it; no assertion depends on wall time.

mod fleet;
mod support;

use std::process::{Command, Stdio};

use fleet::{Fleet, TestHost};
use serde_json::Value;
use support::{inventory, tasks_on, text, Converge};

fn report(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("the report was written")).unwrap()
}

#[test]
fn a_flood_of_output_fails_its_host_at_the_limit_and_the_others_converge() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [flooding, calm] = fleet.hosts() else {
        unreachable!()
    };
    let inventory = inventory(&fleet, "");
    let playbook = fleet.dir().join("flood.yml");
    std::fs::write(
        &playbook,
        format!(
            "- hosts: app\n  tasks:\n    - name: talk\n      command:\n        cmd: \"if [ {{{{ inventory_hostname }}}} = {} ]; then yes flood | head -c 50000000; else echo quiet; fi\"\n    - name: after\n      file: {{ path: /tmp/after, content: \"x\\n\" }}\n",
            flooding.name
        ),
    )
    .unwrap();
    let report_path = fleet.dir().join("report.json");
    let output = Converge::on(&fleet).through("timeout", &["300"]).run(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--max-output",
        "1M",
        "--report",
        report_path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("PLAY RECAP"), "{}", text(&output));
    let expected = format!(
        "a command on {} wrote more than 1 MiB of output (the limit per command); the rest was not read. If that much output is expected, raise the limit with --max-output SIZE",
        flooding.name
    );
    assert!(stdout.contains(&expected), "{}", text(&output));

    let report = report(&report_path);
    let flooded = tasks_on(&report, &flooding.name);
    assert_eq!(flooded.len(), 1, "{report:#}");
    assert_eq!(flooded[0]["status"], "failed", "{report:#}");
    assert_eq!(flooded[0]["message"], expected.as_str(), "{report:#}");
    let converged = tasks_on(&report, &calm.name);
    assert_eq!(converged.len(), 2, "{report:#}");
    assert!(
        converged.iter().all(|task| task["status"] == "changed"),
        "{report:#}"
    );
    calm.ssh_ok("test -f /tmp/after");
    assert!(!flooding.ssh("test -e /tmp/after").status.success());

    // Under the default limit (64 MiB) the same 50 MB are fine.
    let output = Converge::on(&fleet).through("timeout", &["300"]).run(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    flooding.ssh_ok("test -f /tmp/after");
}

/// Stops (`STOP`) or resumes (`CONT`) every process of a test host, from this machine:
/// the host's kernel network stack still acknowledges TCP, but nothing on it answers.
fn signal_all(host: &TestHost, signal: &str) {
    let script = format!(
        r#"nspawn=
for p in $(pgrep -x systemd-nspawn); do
  tr '\0' '\n' < /proc/$p/cmdline | grep -qx -- '--machine={name}' && nspawn=$p
done
[ -n "$nspawn" ] || exit 1
init=$(pgrep -P "$nspawn" | head -n 1)
ns=$(readlink /proc/$init/ns/pid)
[ -n "$ns" ] || exit 1
for round in 1 2 3; do
  for p in /proc/[0-9]*; do
    [ "$(readlink $p/ns/pid 2>/dev/null)" = "$ns" ] && kill -{signal} ${{p#/proc/}} 2>/dev/null
  done
  sleep 0.2
done
exit 0"#,
        name = host.name
    );
    let status = Command::new("sh").arg("-c").arg(script).status().unwrap();
    assert!(status.success(), "cannot send SIG{signal} to {}", host.name);
}

/// Resumes a frozen host when dropped, so the fleet can stop it, also after a failed
/// assertion.
struct Frozen<'a>(&'a TestHost);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        signal_all(self.0, "CONT");
    }
}

#[test]
fn a_host_that_freezes_mid_run_is_unreachable_within_the_keepalive_bound() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [frozen, calm] = fleet.hosts() else {
        unreachable!()
    };
    let inventory = inventory(&fleet, "");
    let ssh_config = fleet.dir().join("ssh_config");
    std::fs::write(
        &ssh_config,
        "Host *\n  ServerAliveInterval 2\n  ServerAliveCountMax 3\n",
    )
    .unwrap();
    let playbook = fleet.dir().join("freeze.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - name: slow\n      command: { cmd: \"touch /tmp/started; sleep 8\" }\n    - name: after\n      file: { path: /tmp/after, content: \"x\\n\" }\n",
    )
    .unwrap();
    let report_path = fleet.dir().join("report.json");
    let run = {
        let args = [
            playbook.to_str().unwrap().to_owned(),
            "-i".to_owned(),
            inventory.to_str().unwrap().to_owned(),
            "-F".to_owned(),
            ssh_config.to_str().unwrap().to_owned(),
            "--report".to_owned(),
            report_path.to_str().unwrap().to_owned(),
        ];
        let home = fleet.home().to_owned();
        std::thread::spawn(move || {
            Command::new("timeout")
                .arg("240")
                .arg(env!("CARGO_BIN_EXE_converge"))
                .args(&args)
                .env("HOME", home)
                .env("NO_COLOR", "1")
                .env_remove("SSH_AUTH_SOCK")
                .current_dir(fleet::repo_root())
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
    };
    frozen
        .ssh_ok("for i in $(seq 1 300); do [ -e /tmp/started ] && exit 0; sleep 0.1; done; exit 1");
    let thaw = Frozen(frozen);
    signal_all(frozen, "STOP");
    let output = run.join().unwrap();
    drop(thaw);

    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("PLAY RECAP"), "{}", text(&output));
    let report = report(&report_path);
    let lost = tasks_on(&report, &frozen.name);
    assert_eq!(lost.len(), 1, "{report:#}");
    assert_eq!(lost[0]["status"], "unreachable", "{report:#}");
    let message = lost[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "connection to {} lost: the server sent nothing, not even a keepalive reply, for ",
            frozen.name
        )) && message.ends_with(" s (ServerAliveInterval × ServerAliveCountMax)"),
        "{message}"
    );
    let converged = tasks_on(&report, &calm.name);
    assert_eq!(converged.len(), 2, "{report:#}");
    assert!(
        converged.iter().all(|task| task["status"] == "changed"),
        "{report:#}"
    );
    calm.ssh_ok("test -f /tmp/after");
    // Thawed, the host is whole again and converges.
    let output = Converge::on(&fleet).through("timeout", &["240"]).run(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--lock-wait",
        "60",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    frozen.ssh_ok("test -f /tmp/after");
}
