//! Scheduled drift correction, end to end: `playbooks/drift-timer.yml` installs a timer
//! on one test host (the control machine); the timer fires, repairs drift on another
//! test host over SSH, and leaves a JSON report saying what it repaired, a history
//! that `converge history` reads, and a metrics file.

mod fleet;
mod support;

use std::path::Path;

use fleet::Fleet;
use serde_json::Value;
use support::{changes_on, converge_json, push, text};

#[test]
fn the_drift_timer_repairs_another_host_and_reports_it() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [control, app] = fleet.hosts() else {
        panic!()
    };
    let root = fleet::repo_root();
    let key = fleet.home().join(".ssh/id_ed25519");

    // The fleet the control machine converges: app, with the Sidekiq playbook. The same
    // inventory serves this machine for the first converge, with its own key path.
    let inventory_with_key = |key_path: &str| {
        format!(
            "all:\n  vars:\n    sidekiq_exec: /bin/sleep infinity\n  children:\n    app:\n      hosts:\n        {}: {{ host: 127.0.0.1, port: {}, user: root, identity_file: {key_path} }}\n",
            app.name, app.port
        )
    };
    let fleet_inventory_path = fleet.dir().join("fleet-inventory.yml");
    std::fs::write(
        &fleet_inventory_path,
        inventory_with_key("/root/.ssh/id_ed25519"),
    )
    .unwrap();
    let local_inventory = fleet.dir().join("local-inventory.yml");
    std::fs::write(&local_inventory, inventory_with_key(key.to_str().unwrap())).unwrap();
    let output = fleet.converge(&[
        "playbooks/sidekiq.yml",
        "-i",
        local_inventory.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    app.ssh_ok("rm /etc/sudoers.d/sidekiq");

    // The control machine: converge itself, the site (with its template and application),
    // its inventory, the fleet's key.
    push(
        &fleet,
        control,
        Path::new(env!("CARGO_BIN_EXE_converge")),
        "/usr/local/bin/converge",
        "0755",
    );
    push(
        &fleet,
        control,
        &root.join("playbooks/sidekiq.yml"),
        "/etc/converge/site.yml",
        "0644",
    );
    push(
        &fleet,
        control,
        &root.join("playbooks/templates/sidekiq.service.j2"),
        "/etc/converge/templates/sidekiq.service.j2",
        "0644",
    );
    push(
        &fleet,
        control,
        &root.join("playbooks/app/worker.rb"),
        "/etc/converge/app/worker.rb",
        "0644",
    );
    push(
        &fleet,
        control,
        &fleet_inventory_path,
        "/etc/converge/inventory.yml",
        "0644",
    );
    push(&fleet, control, &key, "/root/.ssh/id_ed25519", "0600");
    push(
        &fleet,
        control,
        &fleet.home().join(".ssh/known_hosts"),
        "/root/.ssh/known_hosts",
        "0644",
    );

    let control_inventory = fleet.dir().join("control.yml");
    std::fs::write(
        &control_inventory,
        format!(
            "all:\n  children:\n    control:\n      hosts:\n        {}: {{ host: 127.0.0.1, port: {}, user: root, identity_file: {} }}\n",
            control.name,
            control.port,
            key.display()
        ),
    )
    .unwrap();
    // --check predicts exactly what installing the timer does.
    let args = [
        "playbooks/drift-timer.yml",
        "-i",
        control_inventory.to_str().unwrap(),
        "-e",
        "drift_schedule=*:*:0/5",
        "-e",
        "drift_history=/var/lib/converge/history.db",
        "-e",
        "drift_metrics=/var/lib/converge/converge.prom",
    ];
    let (code, check) = converge_json(&fleet, &[&args[..], &["--check"]].concat());
    assert_eq!(code, 2, "{check:#}");
    let (code, apply) = converge_json(&fleet, &args);
    assert_eq!(code, 0, "{apply:#}");
    assert_eq!(
        changes_on(&check, &control.name),
        changes_on(&apply, &control.name)
    );
    assert!(
        changes_on(&apply, &control.name)
            .contains(&"drift correction timer: start converge-drift.timer".to_owned()),
        "{apply:#}"
    );
    assert_eq!(
        control.ssh_ok("systemctl is-active converge-drift.timer"),
        "active"
    );

    // Wait (bounded) for the timer to fire and the run to finish.
    let waited = control.ssh(
        "for i in $(seq 1 120); do test -s /var/lib/converge/drift.json && ! systemctl is-active --quiet converge-drift.service && exit 0; sleep 0.5; done; exit 1",
    );
    assert!(
        waited.status.success(),
        "no report after 60 s; timer and service:\n{}",
        control.ssh_ok(
            "systemctl list-timers --all --no-pager; systemctl status --no-pager converge-drift.timer converge-drift.service; journalctl --no-pager | tail -40"
        )
    );
    let report: Value =
        serde_json::from_str(&control.ssh_ok("cat /var/lib/converge/drift.json")).unwrap();
    support::check_report(&report);
    assert_eq!(report["exit_code"], 0, "{report:#}");
    assert_eq!(
        changes_on(&report, &app.name),
        [
            "let deploy control sidekiq: create /etc/sudoers.d/sidekiq (validated with visudo)",
            "let deploy control sidekiq: verify with sudo -l that deploy may run the 8 commands",
        ]
    );
    app.ssh_ok("test -f /etc/sudoers.d/sidekiq");

    // The same run is in the history, and its metrics are left for node_exporter.
    let history: Value = serde_json::from_str(
        &control.ssh_ok("converge history --history /var/lib/converge/history.db --format json"),
    )
    .unwrap();
    let repaired: Vec<&str> = history["runs"][0]["drifted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|drifted| drifted["host"] == app.name.as_str())
        .map(|drifted| drifted["task"].as_str().unwrap())
        .collect();
    assert_eq!(repaired, ["let deploy control sidekiq"], "{history:#}");
    let metrics = control.ssh_ok("cat /var/lib/converge/converge.prom");
    assert!(
        metrics.contains("converge_last_run_exit_code 0\n"),
        "{metrics}"
    );
}
