//! Starts and restarts that prove they worked, on real hosts: a worker that dies at
//! boot fails its restart with its journal lines and stops a `serial: 1` rollout (the
//! next host keeps its old, running worker); a `Type=notify` worker settles on
//! readiness; a failing probe fails the task (and says nothing under `no_log`); a
//! comment-only edit rewrites the unit without a restart; a unit change and the
//! handler it notifies restart once; broken units are refused by `--check` and by
//! apply, the old unit kept.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::path::PathBuf;

use fleet::{Fleet, TestHost};
use serde_json::Value;
use support::{changes_on, inventory, tasks_on, text};

/// A worker unit: each start is counted in /run/worker-starts.
const UNIT: &str = "[Unit]
Description=worker
[Service]
Type=simple
ExecStartPre=/bin/sh -c 'echo start >> /run/worker-starts'
ExecStart=/usr/local/bin/worker
Restart=on-failure
RestartSec=1
[Install]
WantedBy=multi-user.target
";

const GOOD: &str = "echo 'worker up'; exec sleep infinity";
const BAD: &str = "echo 'worker boom: cannot load config/sidekiq.yml' >&2; exit 3";

/// `text` as a YAML block scalar's lines at `indent` spaces.
fn block(text: &str, indent: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let _ = writeln!(out, "{:indent$}{line}", "");
    }
    out
}

/// The worker's release (`{{ release }}`) and its unit, restarted by a handler.
fn worker_playbook(fleet: &Fleet, play_keys: &str, unit: &str, unit_keys: &str) -> PathBuf {
    let yaml = format!(
        "- hosts: app\n{play_keys}  tasks:\n    - name: worker release\n      file:\n        path: /usr/local/bin/worker\n        mode: \"0755\"\n        content: |\n          #!/bin/sh\n          {{{{ release }}}}\n      notify: restart worker\n    - name: worker unit\n      systemd_unit:\n        name: worker.service\n        enabled: true\n        state: started\n        settle: 2\n        content: |\n{}{unit_keys}  handlers:\n    - name: restart worker\n      service: {{ name: worker, state: restarted, settle: 2 }}\n",
        block(unit, 10)
    );
    let path = fleet.dir().join("worker.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs converge with a human recap on stdout and the JSON report in a file.
fn run(fleet: &Fleet, args: &[&str]) -> (i32, String, Value) {
    let report = fleet.dir().join("report.json");
    let _ = std::fs::remove_file(&report);
    let mut all = args.to_vec();
    all.extend(["--report", report.to_str().unwrap()]);
    let output = fleet.converge(&all);
    let json = std::fs::read(&report).unwrap_or_else(|e| panic!("{e}: {}", text(&output)));
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        serde_json::from_slice(&json).unwrap(),
    )
}

fn main_pid(host: &TestHost) -> String {
    host.ssh_ok("systemctl show -p MainPID --value worker")
}

fn starts(host: &TestHost) -> usize {
    host.ssh_ok("cat /run/worker-starts 2>/dev/null | wc -l")
        .parse()
        .unwrap()
}

fn unit_hash(host: &TestHost) -> String {
    host.ssh_ok("sha256sum /etc/systemd/system/worker.service")
}

#[test]
fn a_worker_that_dies_at_boot_fails_its_restart_and_stops_the_rollout() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [first, second] = fleet.hosts() else {
        panic!()
    };
    let playbook = worker_playbook(&fleet, "  serial: 1\n", UNIT, "");
    let playbook = playbook.to_str().unwrap();
    let good = format!("release={GOOD}");
    let (code, human, report) = run(&fleet, &[playbook, "-i", inventory, "-e", &good]);
    assert_eq!(code, 0, "{human}");
    assert!(
        human.contains(&format!(
            "rollout of app:\n  batch 1/2 ({}): ran\n  batch 2/2 ({}): ran\n",
            first.name, second.name
        )),
        "{human}"
    );
    assert_eq!(report["plays"][0]["rollout"]["batches"][1]["ran"], true);
    let old_pid = main_pid(second);

    // A release that raises at boot: systemctl's restart "succeeds", the worker dies
    // a moment later and systemd restarts it.
    let bad = format!("release={BAD}");
    let (code, human, report) = run(&fleet, &[playbook, "-i", inventory, "-e", &bad]);
    assert_eq!(code, 1, "{human}");
    let failed = tasks_on(&report, &first.name)
        .into_iter()
        .find(|task| task["status"] == "failed")
        .unwrap_or_else(|| panic!("nothing failed on {}: {report:#}", first.name));
    assert_eq!(failed["task"], "restart worker");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "restart worker.service failed (exit status 1): worker.service did not stay up: "
        ),
        "{message}"
    );
    assert!(
        message.contains("last 20 lines of its journal:\n"),
        "{message}"
    );
    assert!(
        message.contains("worker boom: cannot load config/sidekiq.yml"),
        "{message}"
    );
    assert!(
        human.contains("worker boom: cannot load config/sidekiq.yml"),
        "{human}"
    );
    // The rollout stopped after the first host: the second kept its old worker.
    let skipped = tasks_on(&report, &second.name);
    assert_eq!(skipped.len(), 1, "{report:#}");
    assert_eq!(skipped[0]["status"], "skipped");
    assert_eq!(
        skipped[0]["message"],
        "not run: 1 of 1 hosts in an earlier batch failed (max_fail_percentage 0)"
    );
    assert_eq!(main_pid(second), old_pid);
    assert_eq!(second.ssh_ok("systemctl is-active worker"), "active");
    assert!(
        human.contains(&format!(
            "rollout of app:\n  batch 1/2 ({}): ran, 1 of 1 failed\n  batch 2/2 ({}): not run\n  stopped: 1 of 1 hosts in an earlier batch failed (max_fail_percentage 0)\n",
            first.name, second.name
        )),
        "{human}"
    );
    assert_eq!(
        report["plays"][0]["rollout"]["stopped"],
        "1 of 1 hosts in an earlier batch failed (max_fail_percentage 0)"
    );

    // any_errors_fatal stops a rollout that max_fail_percentage would let go on.
    let fatal = fleet.dir().join("fatal.yml");
    std::fs::write(
        &fatal,
        format!("- hosts: app\n  serial: 1\n  max_fail_percentage: 100\n  any_errors_fatal: true\n  tasks:\n    - command: {{ cmd: \"exit 1\" }}\n      when: \"{{{{ inventory_hostname == '{}' }}}}\"\n", first.name),
    )
    .unwrap();
    let (code, human, report) = run(&fleet, &[fatal.to_str().unwrap(), "-i", inventory]);
    assert_eq!(code, 1, "{human}");
    assert_eq!(
        tasks_on(&report, &second.name)[0]["message"],
        "not run: 1 of 1 hosts in an earlier batch failed (any_errors_fatal)"
    );
}

#[test]
fn notify_probes_comment_edits_single_restarts_and_broken_units() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    let good = format!("release={GOOD}");
    let playbook = worker_playbook(&fleet, "", UNIT, "");
    let playbook = playbook.to_str().unwrap();
    let (code, human, _) = run(&fleet, &[playbook, "-i", inventory, "-e", &good]);
    assert_eq!(code, 0, "{human}");
    // Started by the unit task, restarted by the handler the new release notified.
    assert_eq!(starts(host), 2);

    // A comment-only edit: the file is rewritten and reloaded, the worker keeps
    // running.
    let pid = main_pid(host);
    let commented = format!(
        "# Managed by converge.\n\n{}",
        UNIT.replace("[Service]\n", "[Service]\n; the worker itself\n")
    );
    let edited = worker_playbook(&fleet, "", &commented, "");
    let (code, human, report) = run(
        &fleet,
        &[edited.to_str().unwrap(), "-i", inventory, "-e", &good],
    );
    assert_eq!(code, 0, "{human}");
    assert_eq!(
        changes_on(&report, &host.name),
        [
            "worker unit: update /etc/systemd/system/worker.service",
            "worker unit: daemon-reload (system manager)"
        ]
    );
    assert_eq!(main_pid(host), pid);
    assert_eq!(starts(host), 2);

    // A unit change whose task notifies the restart handler: one restart, by the
    // handler, at the end.
    let changed = UNIT.replace("RestartSec=1", "RestartSec=1\nEnvironment=GENERATION=2");
    let yaml = std::fs::read_to_string(worker_playbook(
        &fleet,
        "",
        &changed,
        "      notify: restart worker\n",
    ))
    .unwrap();
    let notifying = fleet.dir().join("notifying.yml");
    std::fs::write(&notifying, yaml).unwrap();
    let (code, human, report) = run(
        &fleet,
        &[notifying.to_str().unwrap(), "-i", inventory, "-e", &good],
    );
    assert_eq!(code, 0, "{human}");
    assert_eq!(
        changes_on(&report, &host.name),
        [
            "worker unit: update /etc/systemd/system/worker.service",
            "worker unit: daemon-reload (system manager)",
            "restart worker: restart worker.service"
        ]
    );
    assert_eq!(starts(host), 3, "restarted more than once");
    assert_ne!(main_pid(host), pid);

    // Broken units, each refused by --check and by apply; the old unit stays.
    let before = unit_hash(host);
    for (broken, reason) in [
        (
            changed.replace("Restart=on-failure", "Restrat=on-failure"),
            "Unknown key 'Restrat' in section [Service]",
        ),
        (
            changed.replace("/usr/local/bin/worker", "/usr/local/bin/wrker"),
            "/usr/local/bin/wrker, which the unit runs, does not exist on the host",
        ),
    ] {
        let playbook = worker_playbook(&fleet, "", &broken, "");
        let playbook = playbook.to_str().unwrap();
        for check in [true, false] {
            let mut args = vec![playbook, "-i", inventory, "-e", &good];
            if check {
                args.push("--check");
            }
            let (code, human, report) = run(&fleet, &args);
            assert_eq!(code, 1, "{human}");
            let task = tasks_on(&report, &host.name)
                .into_iter()
                .find(|task| task["task"] == "worker unit")
                .unwrap();
            assert_eq!(task["status"], "failed");
            let message = task["message"].as_str().unwrap();
            assert!(
                message.starts_with("refusing the new /etc/systemd/system/worker.service; the current file is kept:\n  - "),
                "{message}"
            );
            assert!(message.contains(reason), "{message}");
            assert_eq!(unit_hash(host), before);
            assert_eq!(
                host.ssh_ok("ls -A /run | grep -c converge-verify || true"),
                "0",
                "verify left a directory behind"
            );
        }
    }
    // A user unit wanted by multi-user.target never starts: refused before any host
    // is contacted.
    let user_unit = format!(
        "- hosts: app\n  tasks:\n    - systemd_unit:\n        name: worker.service\n        scope: user\n        user: nobody\n        content: |\n{}",
        block(UNIT, 10)
    );
    let user_playbook = fleet.dir().join("user.yml");
    std::fs::write(&user_playbook, user_unit).unwrap();
    for check in [&["--check"][..], &[]] {
        let output = fleet.converge(
            &[
                &[user_playbook.to_str().unwrap(), "-i", inventory][..],
                check,
            ]
            .concat(),
        );
        assert_eq!(output.status.code(), Some(3), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains("names multi-user.target, which only the system manager has"),
            "{}",
            text(&output)
        );
    }
    assert_eq!(unit_hash(host), before);

    // A failing probe fails the task; under no_log it says nothing more.
    for (no_log, expected) in [
        (
            "",
            "restart worker.service failed (exit status 1): worker.service is up, but its probe failed 2 times (exit status 1): not healthy",
        ),
        ("  no_log: true\n", "details (hidden: no_log)"),
    ] {
        let probe = fleet.dir().join("probe.yml");
        std::fs::write(
            &probe,
            format!("- hosts: app\n{no_log}  tasks:\n    - name: restart and probe\n      service:\n        name: worker\n        state: restarted\n        settle: 1\n        probe: {{ cmd: \"echo not healthy; exit 1\", retries: 1, delay: 1 }}\n"),
        )
        .unwrap();
        let (code, human, report) = run(&fleet, &[probe.to_str().unwrap(), "-i", inventory]);
        assert_eq!(code, 1, "{human}");
        let task = &tasks_on(&report, &host.name)[0];
        assert_eq!(task["status"], "failed");
        let message = task["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{message}");
        if !no_log.is_empty() {
            assert!(!human.contains("not healthy"), "{human}");
        }
    }

    // A Type=notify worker is settled once it says it is ready: a long settle time is
    // not waited out. The zombie of `systemd-notify`, kept by the `exec`ed process,
    // lets systemd see which unit sent the message.
    let notify = "[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'sleep 1; touch /run/notify-ready; systemd-notify --ready & exec sleep infinity'
[Install]
WantedBy=multi-user.target
";
    let notify_playbook = fleet.dir().join("notify.yml");
    std::fs::write(
        &notify_playbook,
        format!("- hosts: app\n  tasks:\n    - name: notify worker\n      systemd_unit:\n        name: notify-worker.service\n        enabled: true\n        state: started\n        settle: 120\n        content: |\n{}", block(notify, 10)),
    )
    .unwrap();
    let (code, human, report) = run(
        &fleet,
        &[notify_playbook.to_str().unwrap(), "-i", inventory],
    );
    assert_eq!(code, 0, "{human}");
    assert!(host.ssh("test -e /run/notify-ready").status.success());
    assert_eq!(host.ssh_ok("systemctl is-active notify-worker"), "active");
    let task = &tasks_on(&report, &host.name)[0];
    assert!(
        task["duration_ms"].as_u64().unwrap() < 60_000,
        "the settle time was waited out: {task:#}"
    );
}

#[test]
fn a_user_unit_that_dies_at_boot_fails_with_its_user_journal() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    let unit = "[Service]
ExecStart=/bin/sh -c 'echo user worker boom >&2; exit 3'
Restart=on-failure
RestartSec=1
[Install]
WantedBy=default.target
";
    let playbook = fleet.dir().join("user-worker.yml");
    std::fs::write(
        &playbook,
        format!("- hosts: app\n  tasks:\n    - user: {{ name: deploy }}\n    - linger: {{ user: deploy }}\n    - name: user worker\n      systemd_unit:\n        name: worker.service\n        scope: user\n        user: deploy\n        enabled: true\n        state: started\n        settle: 2\n        content: |\n{}", block(unit, 10)),
    )
    .unwrap();
    // --check verifies the unit in the user manager's view and leaves nothing behind.
    let (code, human, _) = run(
        &fleet,
        &[playbook.to_str().unwrap(), "-i", inventory, "--check"],
    );
    assert_eq!(code, 2, "{human}");
    assert_eq!(
        host.ssh_ok("ls -A /run | grep -c converge-verify || true"),
        "0"
    );
    let (code, human, report) = run(&fleet, &[playbook.to_str().unwrap(), "-i", inventory]);
    assert_eq!(code, 1, "{human}");
    let task = tasks_on(&report, &host.name)
        .into_iter()
        .find(|task| task["task"] == "user worker")
        .unwrap();
    let message = task["message"].as_str().unwrap();
    assert!(
        message.starts_with("start worker.service (user deploy) failed (exit status 1): worker.service did not stay up: "),
        "{message}"
    );
    assert!(message.contains("user worker boom"), "{message}");
}
