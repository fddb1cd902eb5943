//! Faults in the middle of a run, on real hosts: a host that dies is reported
//! `unreachable` with the reason, an sshd restarted under converge's feet does not
//! disturb its session, and every other host finishes.

mod fleet;
mod support;

use std::process::{Command, Stdio};

use fleet::Fleet;
use support::{stat, tasks_on, text};

#[test]
fn a_host_dying_mid_run_is_unreachable_and_the_others_finish() {
    let Some(fleet) = Fleet::boot(3) else { return };
    let [dying, restarted, calm] = fleet.hosts() else {
        panic!()
    };
    let inventory = support::inventory(&fleet, "");
    let playbook = fleet.dir().join("slow.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - name: slow step\n      command: { cmd: \"sleep 4; touch /tmp/slow-done\" }\n    - name: last step\n      file: { path: /tmp/last, content: \"done\\n\" }\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_converge"))
        .args([
            playbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--format",
            "json",
        ])
        .env("HOME", fleet.home())
        .current_dir(fleet::repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for host in fleet.hosts() {
        let waited = host.ssh("for i in $(seq 1 100); do pgrep -f 'sleep 4' >/dev/null && exit 0; sleep 0.1; done; exit 1");
        assert!(
            waited.status.success(),
            "the slow step never started on {}",
            host.name
        );
    }
    dying.kill();
    restarted.ssh_ok("systemctl restart ssh");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report = support::report_of(&output);

    assert_eq!(stat(&report, &dying.name, "unreachable"), 1, "{report:#}");
    let dead = &tasks_on(&report, &dying.name)[0];
    assert_eq!(dead["status"], "unreachable");
    assert!(
        dead["message"].as_str().unwrap().contains("connection to"),
        "{dead:#}"
    );
    for host in [restarted, calm] {
        assert_eq!(stat(&report, &host.name, "failed"), 0, "{report:#}");
        assert_eq!(stat(&report, &host.name, "unreachable"), 0, "{report:#}");
        assert_eq!(host.ssh_ok("cat /tmp/last"), "done");
    }
}
