//! `systemd_unit` with `state: absent` on real hosts: a running, enabled unit is
//! stopped, disabled, its file removed and its manager reloaded, exactly as `--check`
//! said; a second run has nothing to do; the same in a user's manager.

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use support::{changes_on, converge_json, inventory};

/// A playbook with one `systemd_unit` task for worker.service (`params` below `name`).
fn playbook(fleet: &Fleet, name: &str, params: &str) -> String {
    let path = fleet.dir().join(format!("{name}.yml"));
    std::fs::write(
        &path,
        format!(
            "- hosts: app\n  tasks:\n    - name: deploy user\n      user: {{ name: deploy, shell: /bin/bash }}\n    - name: lingering\n      linger: {{ user: deploy }}\n    - name: worker\n      systemd_unit:\n        name: worker.service\n{params}"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn installed(fleet: &Fleet, name: &str, scope: &str, target: &str) -> String {
    playbook(
        fleet,
        name,
        &format!("{scope}        enabled: true\n        state: started\n        content: |\n          [Service]\n          ExecStart=/bin/sleep infinity\n          [Install]\n          WantedBy={target}\n"),
    )
}

/// What `systemctl show` says of worker.service, system or deploy's.
fn worker(host: &TestHost, user: bool, property: &str) -> String {
    let systemctl = if user {
        "runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$(id -u deploy) systemctl --user"
    } else {
        "systemctl"
    };
    host.ssh_ok(&format!("{systemctl} show -p {property} worker.service"))
}

#[test]
fn absent_units_are_stopped_disabled_removed_and_reloaded_as_check_mode_says() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };

    for (user, scope, dir, target) in [
        (false, "", "/etc/systemd/system", "multi-user.target"),
        (
            true,
            "        scope: user\n        user: deploy\n",
            "/home/deploy/.config/systemd/user",
            "default.target",
        ),
    ] {
        let suffix = if user { " (user deploy)" } else { "" };
        let manager = if user {
            "deploy's user manager"
        } else {
            "system manager"
        };
        let install = installed(&fleet, "install", scope, target);
        let (code, report) = converge_json(&fleet, &[&install, "-i", inventory]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(worker(host, user, "ActiveState"), "ActiveState=active");
        assert_eq!(worker(host, user, "UnitFileState"), "UnitFileState=enabled");

        let absent = playbook(&fleet, "absent", &format!("{scope}        state: absent\n"));
        let removal = [
            format!("worker: stop worker.service{suffix}"),
            format!("worker: disable worker.service{suffix}"),
            format!("worker: remove regular file {dir}/worker.service"),
            format!("worker: daemon-reload ({manager})"),
        ];
        let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory, "--check"]);
        assert_eq!(code, 2, "{report:#}");
        assert_eq!(changes_on(&report, &host.name), removal);
        assert_eq!(worker(host, user, "ActiveState"), "ActiveState=active");
        let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(changes_on(&report, &host.name), removal);
        assert_eq!(worker(host, user, "LoadState"), "LoadState=not-found");
        assert_eq!(worker(host, user, "ActiveState"), "ActiveState=inactive");
        assert_eq!(
            host.ssh_ok(&format!(
                "ls {dir}/worker.service {dir}/*.wants/worker.service 2>/dev/null | wc -l"
            )),
            "0"
        );
        // Nothing left to do, and --check agrees.
        let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory]);
        assert_eq!(code, 0, "{report:#}");
        assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");
        let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory, "--check"]);
        assert_eq!(code, 0, "{report:#}");
    }
}
