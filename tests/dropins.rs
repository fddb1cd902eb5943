//! The `systemd_dropin` module on real hosts: a packaged unit overridden while it runs
//! (the override is in effect, the unit restarted once however many drop-ins change),
//! a second run with nothing to do, a drop-in deleted by hand found by `--check` and
//! repaired, `state: absent`, and a drop-in for a user's unit in the user's manager.

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use support::{changes_on, converge_json, inventory, tasks_on};

/// A unit as a package installs it (in `/usr/lib`), counting its starts.
const PACKAGED_UNIT: &str = "[Unit]
Description=worker
[Service]
ExecStartPre=/bin/sh -c 'echo started >> /var/log/worker.starts'
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
";

/// A playbook beside the fleet's other files.
fn playbook(fleet: &Fleet, name: &str, yaml: &str) -> String {
    let path = fleet.dir().join(format!("{name}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_owned()
}

/// One drop-in task for worker.service with `params` inside its mapping.
fn dropin_task(title: &str, params: &str) -> String {
    format!("    - name: {title}\n      systemd_dropin:\n        unit: worker.service\n{params}")
}

fn limits(value: u32) -> String {
    dropin_task(
        "worker limits",
        &format!("        name: limits\n        content: |\n          [Service]\n          LimitNOFILE={value}\n"),
    )
}

fn shown(host: &TestHost, property: &str) -> String {
    host.ssh_ok(&format!("systemctl show -p {property} worker.service"))
}

fn starts(host: &TestHost) -> usize {
    host.ssh_ok("cat /var/log/worker.starts").lines().count()
}

#[test]
fn drop_ins_override_a_running_packaged_unit_restart_it_once_and_are_repaired_and_removed() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    host.ssh_ok(&format!(
        "cat > /usr/lib/systemd/system/worker.service <<'EOF'\n{PACKAGED_UNIT}EOF\nsystemctl daemon-reload && systemctl enable --now worker.service"
    ));
    let packaged_limit = shown(host, "LimitNOFILE");
    assert_ne!(packaged_limit, "LimitNOFILE=12345");
    assert_eq!(starts(host), 1);

    // The drop-in is written, the manager reloaded and the running unit restarted.
    let one = playbook(
        &fleet,
        "limits",
        &format!("- hosts: app\n  tasks:\n{}", limits(12345)),
    );
    let (code, report) = converge_json(&fleet, &[&one, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        [
            "worker limits: create directory /etc/systemd/system/worker.service.d",
            "worker limits: create /etc/systemd/system/worker.service.d/limits.conf",
            "worker limits: daemon-reload (system manager)",
            "worker limits: restart worker.service",
        ]
    );
    assert_eq!(shown(host, "LimitNOFILE"), "LimitNOFILE=12345");
    assert_eq!(starts(host), 2);
    assert_eq!(
        host.ssh_ok("stat -c '%U:%G %a' /etc/systemd/system/worker.service.d /etc/systemd/system/worker.service.d/limits.conf"),
        "root:root 755\nroot:root 644"
    );
    let (code, report) = converge_json(&fleet, &[&one, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");
    assert_eq!(starts(host), 2);

    // Deleted by hand: --check finds it (exit 2) and changes nothing; apply repairs it.
    host.ssh_ok("rm /etc/systemd/system/worker.service.d/limits.conf");
    let repair = [
        "worker limits: create /etc/systemd/system/worker.service.d/limits.conf",
        "worker limits: daemon-reload (system manager)",
        "worker limits: restart worker.service",
    ];
    let (code, report) = converge_json(&fleet, &[&one, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), repair);
    assert_eq!(starts(host), 2);
    let (code, report) = converge_json(&fleet, &[&one, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), repair);
    assert_eq!(shown(host, "LimitNOFILE"), "LimitNOFILE=12345");
    assert_eq!(starts(host), 3);
    let (code, report) = converge_json(&fleet, &[&one, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{report:#}");

    // Two drop-ins changed in one play, both notifying the unit's restart handler: the
    // unit restarts once, at the end, and runs with both.
    let both = playbook(
        &fleet,
        "both",
        &format!(
            "- hosts: app\n  tasks:\n{}      notify: restart worker\n{}      notify: restart worker\n  handlers:\n    - name: restart worker\n      service: {{ name: worker, state: restarted }}\n",
            limits(23456),
            dropin_task(
                "worker environment",
                "        name: environment.conf\n        content: |\n          [Service]\n          Environment=GREETING=hello\n"
            ),
        ),
    );
    let (code, report) = converge_json(&fleet, &[&both, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        [
            "worker limits: update /etc/systemd/system/worker.service.d/limits.conf",
            "worker limits: daemon-reload (system manager)",
            "worker environment: create /etc/systemd/system/worker.service.d/environment.conf",
            "worker environment: daemon-reload (system manager)",
            "restart worker: restart worker.service",
        ]
    );
    assert_eq!(shown(host, "LimitNOFILE"), "LimitNOFILE=23456");
    assert_eq!(shown(host, "Environment"), "Environment=GREETING=hello");
    assert_eq!(starts(host), 4);

    // state: absent removes one drop-in, reloads and restarts; the packaged unit and
    // the other drop-in stay.
    let absent = playbook(
        &fleet,
        "absent",
        &format!(
            "- hosts: app\n  tasks:\n{}",
            dropin_task(
                "worker limits",
                "        name: limits\n        state: absent\n"
            )
        ),
    );
    let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    let removal = [
        "worker limits: remove regular file /etc/systemd/system/worker.service.d/limits.conf",
        "worker limits: daemon-reload (system manager)",
        "worker limits: restart worker.service",
    ];
    assert_eq!(changes_on(&report, &host.name), removal);
    let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), removal);
    assert_eq!(shown(host, "LimitNOFILE"), packaged_limit);
    assert_eq!(shown(host, "Environment"), "Environment=GREETING=hello");
    assert_eq!(shown(host, "NeedDaemonReload"), "NeedDaemonReload=no");
    assert_eq!(starts(host), 5);
    let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");

    // A user's unit gets its drop-in in the user's manager, in the user's files. Placed
    // before the unit is installed, it is in effect from the unit's first start.
    let user = playbook(
        &fleet,
        "user",
        concat!(
            "- hosts: app\n  tasks:\n",
            "    - name: deploy user\n      user: { name: deploy, shell: /bin/bash }\n",
            "    - name: lingering\n      linger: { user: deploy }\n",
            "    - name: pinger environment\n      systemd_dropin:\n        unit: pinger.service\n        name: environment\n        scope: user\n        user: deploy\n        content: |\n          [Service]\n          Environment=GREETING=hello\n",
            "    - name: pinger\n      systemd_unit:\n        name: pinger.service\n        scope: user\n        user: deploy\n        enabled: true\n        state: started\n        content: |\n          [Service]\n          ExecStart=/bin/sleep infinity\n          [Install]\n          WantedBy=default.target\n",
        ),
    );
    let (code, report) = converge_json(&fleet, &[&user, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    let planned = changes_on(&report, &host.name);
    let (code, report) = converge_json(&fleet, &[&user, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), planned);
    let dropin = "/home/deploy/.config/systemd/user/pinger.service.d/environment.conf";
    assert!(
        planned.contains(&format!("pinger environment: create {dropin}")),
        "{planned:#?}"
    );
    let warnings = &tasks_on(&report, &host.name)[2]["warnings"];
    assert_eq!(
        warnings[0],
        "pinger.service (user deploy) is not installed on the host: the drop-in applies once it is",
        "{report:#}"
    );
    assert_eq!(
        host.ssh_ok(&format!("stat -c '%U:%G %a' {dropin}")),
        "deploy:deploy 644"
    );
    let user_show = |property: &str| {
        host.ssh_ok(&format!(
            "runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$(id -u deploy) systemctl --user show -p {property} pinger.service"
        ))
    };
    assert_eq!(user_show("ActiveState"), "ActiveState=active");
    assert_eq!(user_show("Environment"), "Environment=GREETING=hello");
    let (code, report) = converge_json(&fleet, &[&user, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");
}
