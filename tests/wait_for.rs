//! `wait_for` on a real host: a port already listened on is `ok` at no cost, a path
//! made in the background is waited for, check mode says what it would wait for, and
//! a wait past its timeout fails naming what it waited for.

mod fleet;
mod support;

use fleet::Fleet;
use support::{changes_on, converge_json, inventory, stat, tasks_on};

#[test]
fn waits_for_ports_and_paths() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    // sshd on the test host listens on the port converge reaches it by.
    let playbook = fleet.dir().join("wf.yml");
    std::fs::write(
        &playbook,
        format!(
            "- hosts: app\n  tasks:\n    - wait_for: {{ port: {port}, timeout: 5 }}\n    - command:\n        cmd: \"setsid sh -c 'sleep 2; touch /tmp/wf-ready' >/dev/null 2>&1 < /dev/null &\"\n        creates: /tmp/wf-ready\n    - wait_for: {{ path: /tmp/wf-ready, timeout: 30 }}\n",
            port = host.port
        ),
    )
    .unwrap();
    let playbook = playbook.to_str().unwrap();

    let (code, check) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{check:#}");
    assert!(
        changes_on(&check, &host.name)
            .iter()
            .any(|c| c.ends_with("wait for /tmp/wf-ready to exist (at most 30 s)")),
        "{check:#}"
    );

    let (code, apply) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{apply:#}");
    let statuses: Vec<String> = tasks_on(&apply, &host.name)
        .iter()
        .map(|task| task["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["ok", "changed", "changed"], "{apply:#}");
    assert_eq!(host.ssh_ok("test -e /tmp/wf-ready && echo there"), "there");

    let (code, again) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "changed"), 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "commands"), 1, "{again:#}");

    let late = fleet.dir().join("wf-late.yml");
    std::fs::write(
        &late,
        "- hosts: app\n  tasks:\n    - wait_for: { path: /tmp/wf-never, timeout: 1 }\n",
    )
    .unwrap();
    let output = fleet.converge(&[late.to_str().unwrap(), "-i", inventory]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("timed out after 1 s waiting for /tmp/wf-never to exist"),
        "{}",
        support::text(&output)
    );
}
