//! Unit files written by several tasks of one script are loaded by one daemon-reload of
//! their manager, made before the first change that needs it; and when the script fails
//! between two reloads that were joined, the reload the tasks before the failure asked
//! for is still made. Counted from `-vv`'s script lines on a real host.

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use serde_json::Value;

/// Runs converge with `-vv --format json`; returns the exit status, the report and the
/// `-vv` output.
fn converge_verbose(fleet: &Fleet, playbook: &str, inventory: &str) -> (i32, Value, String) {
    let output = fleet.converge(&[playbook, "-i", inventory, "-vv", "--format", "json"]);
    let report = support::report_of(&output);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap(), report, stderr)
}

/// The `systemctl daemon-reload` lines `-vv` showed for `host`: in scripts (`| `), and
/// as commands of their own (`$ `).
fn reloads_shown(stderr: &str, host: &str, kind: &str) -> usize {
    let prefix = format!("[{host}] {kind} ");
    stderr
        .lines()
        .filter(|line| line.starts_with(&prefix) && line.contains("systemctl daemon-reload"))
        .count()
}

fn unit(description: &str) -> String {
    format!(
        "[Unit]\\nDescription={description}\\n\\n[Service]\\nExecStart=/bin/sleep infinity\\n\\n[Install]\\nWantedBy=multi-user.target\\n"
    )
}

fn playbook(fleet: &Fleet, name: &str, text: &str) -> String {
    let path = fleet.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn property(host: &TestHost, unit: &str, property: &str) -> String {
    host.ssh_ok(&format!("systemctl show -p {property} --value {unit}"))
}

#[test]
fn units_written_by_several_tasks_are_loaded_by_one_reload_before_the_first_start() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = fleet.write_inventory("app");
    let inventory = inventory.to_str().unwrap();
    let play = playbook(
        &fleet,
        "units.yml",
        &format!(
            r#"- hosts: app
  tasks:
    - systemd_unit: {{ name: reload-a.service, content: "{a}", enabled: true }}
    - systemd_unit: {{ name: reload-b.service, content: "{b}", enabled: true }}
    - service: {{ name: reload-a.service, state: started, settle: 1 }}
    - service: {{ name: reload-b.service, state: started, settle: 1 }}
"#,
            a = unit("a"),
            b = unit("b"),
        ),
    );

    let check = fleet.converge(&[&play, "-i", inventory, "--check", "--format", "json"]);
    assert_eq!(check.status.code(), Some(2), "{}", support::text(&check));
    let check = support::report_of(&check);
    let (code, apply, stderr) = converge_verbose(&fleet, &play, inventory);
    assert_eq!(code, 0, "{stderr}\n{apply:#}");
    // Both tasks list the reload their file needs, as --check does...
    assert!(support::assert_check_foresaw(&check, &apply, &host.name));
    let listed = support::changes_on(&apply, &host.name)
        .iter()
        .filter(|change| change.contains("daemon-reload (system manager)"))
        .count();
    assert_eq!(listed, 2, "{apply:#}");
    // ...and the host reloads once, before the first start.
    assert_eq!(reloads_shown(&stderr, &host.name, "|"), 1, "{stderr}");
    assert_eq!(reloads_shown(&stderr, &host.name, "$"), 0, "{stderr}");
    for name in ["reload-a.service", "reload-b.service"] {
        assert_eq!(property(host, name, "ActiveState"), "active", "{name}");
        assert_eq!(property(host, name, "NeedDaemonReload"), "no", "{name}");
    }

    let (code, again, stderr) = converge_verbose(&fleet, &play, inventory);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again["summary"]["changed"], 0, "{again:#}");
}

#[test]
fn a_failure_between_joined_reloads_still_makes_the_reload_the_earlier_task_asked_for() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = fleet.write_inventory("app");
    let inventory = inventory.to_str().unwrap();
    let first = playbook(
        &fleet,
        "first.yml",
        &format!(
            "- hosts: app\n  tasks:\n    - systemd_unit: {{ name: reload-a.service, content: \"{}\" }}\n",
            unit("a, first")
        ),
    );
    let (code, _, stderr) = converge_verbose(&fleet, &first, inventory);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        property(host, "reload-a.service", "Description"),
        "a, first"
    );

    // The new unit file, a sudoers file only visudo on the host rejects, another unit:
    // one script, whose reload for the first file was joined to the last task's.
    let second = playbook(
        &fleet,
        "second.yml",
        &format!(
            r#"- hosts: app
  tasks:
    - systemd_unit: {{ name: reload-a.service, content: "{a}" }}
    - sudoers: {{ name: app, content: "deploy ALL=(root NOPASSWD /bin/systemctl\n" }}
    - systemd_unit: {{ name: reload-b.service, content: "{b}" }}
"#,
            a = unit("a, second"),
            b = unit("b"),
        ),
    );
    let (code, report, stderr) = converge_verbose(&fleet, &second, inventory);
    assert_eq!(code, 1, "{stderr}\n{report:#}");
    let tasks = support::tasks_on(&report, &host.name);
    let statuses: Vec<&str> = tasks
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["changed", "failed"], "{report:#}");
    assert!(
        tasks[0]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "daemon-reload (system manager)"),
        "{report:#}"
    );
    // The script held one reload, after the failure; what the report lists as done is
    // done all the same: one more command made the reload, and the manager reread the
    // first file.
    assert_eq!(reloads_shown(&stderr, &host.name, "|"), 1, "{stderr}");
    assert_eq!(reloads_shown(&stderr, &host.name, "$"), 1, "{stderr}");
    assert_eq!(property(host, "reload-a.service", "NeedDaemonReload"), "no");
    assert_eq!(
        property(host, "reload-a.service", "Description"),
        "a, second"
    );
    assert!(host
        .ssh("test -e /etc/systemd/system/reload-b.service")
        .status
        .code()
        .is_some_and(|code| code != 0));
}
