//! Templated parameters of every type on real hosts: a mode, a boolean, a number and
//! lists come from variables, converge, and leave no drift for `--check`; a rendered
//! value that does not fit is an input error pointing at the playbook.

mod fleet;
mod support;

use fleet::Fleet;
use support::{changes_on, converge_json, inventory, text};

const PLAYBOOK: &str = r#"- hosts: app
  vars:
    m: "0640"
    e: true
    settle_seconds: 0
    second_group: tp-dev
    user_groups: [tp-ops, "{{ second_group }}"]
  tasks:
    - group: { name: tp-ops }
    - group: { name: tp-dev }
    - user: { name: tp-user, groups: "{{ user_groups }}" }
    - user: { name: tp-other, groups: [tp-ops, "{{ second_group }}"] }
    - file: { path: /etc/tp.conf, content: "x\n", mode: "{{ m }}" }
    - systemd_unit:
        name: tp.service
        enabled: "{{ e }}"
        state: started
        settle: "{{ settle_seconds }}"
        content: |
          [Unit]
          Description=templated parameters
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
"#;

#[test]
fn templated_modes_booleans_numbers_and_lists_converge_without_drift() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    let playbook = fleet.dir().join("templated.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let playbook = playbook.to_str().unwrap();

    let (code, apply) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{apply:#}");
    assert!(
        changes_on(&apply, &host.name)
            .iter()
            .any(|change| change.contains("enable tp.service")),
        "{apply:#}"
    );
    assert_eq!(
        host.ssh_ok("stat -c %a /etc/tp.conf; id -nG tp-user; id -nG tp-other; systemctl is-enabled tp.service"),
        "640\ntp-user tp-ops tp-dev\ntp-other tp-ops tp-dev\nenabled"
    );

    let (code, check) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "drift left after apply: {check:#}");
    assert!(changes_on(&check, &host.name).is_empty(), "{check:#}");

    // `-e` values are strings: "false" is a boolean where one is wanted.
    let (code, check) = converge_json(
        &fleet,
        &[playbook, "-i", inventory, "--check", "-e", "e=false"],
    );
    assert_eq!(code, 2, "{check:#}");
    assert_eq!(
        changes_on(&check, &host.name),
        ["systemd_unit tp.service: disable tp.service"],
        "{check:#}"
    );

    // A rendered value that does not fit: exit 3 before any host is contacted, at the
    // value's line and column, naming the value and its template.
    let output = fleet.converge(&[playbook, "-i", inventory, "-e", "m=0999"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: play `app`, host {}: {playbook}:13:57: task `file /etc/tp.conf`: invalid mode \"0999\": write 3 or 4 octal digits, e.g. \"0644\" (rendered from \"{{{{ m }}}}\")\n",
            host.name
        )
    );
}
