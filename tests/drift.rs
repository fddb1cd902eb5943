//! Drift on real hosts: `--check` predicts exactly what the following apply does (on
//! fresh and on drifted hosts), rollouts stop at a failing batch, the deploy flow's
//! signal is only reported in check mode, installed sudo rules are proven, and lines
//! and blocks edited in files converge does not own, drop-ins, removed units and
//! accounts with their keys and passwords are predicted exactly.

mod fleet;
mod support;

use fleet::{Fleet, TestHost, SUDO};
use serde_json::Value;
use support::{assert_check_foresaw, changes_on, converge_json, inventory, stat, tasks_on, text};

const SIDEKIQ: &str = "playbooks/sidekiq.yml";
const DEPLOY: &str = "playbooks/deploy.yml";

/// `--check` and then apply: both must list the same changes per host (but for tasks
/// pending on a package, see [`assert_check_foresaw`]), and a run after them must list
/// none.
fn assert_check_is_exact(fleet: &Fleet, args: &[&str]) -> Value {
    let mut check_args = args.to_vec();
    check_args.push("--check");
    let (check_code, check) = converge_json(fleet, &check_args);
    let (apply_code, apply) = converge_json(fleet, args);
    assert_eq!(apply_code, 0, "{apply:#}");
    let mut predicted = false;
    for host in fleet.hosts() {
        predicted |= assert_check_foresaw(&check, &apply, &host.name);
    }
    assert_eq!(check_code, if predicted { 2 } else { 0 });
    let (code, after) = converge_json(fleet, &[args, &["--check"]].concat());
    assert_eq!(code, 0, "drift left after apply: {after:#}");
    apply
}

/// A worker that, like Sidekiq, handles TSTP ("quiet") itself and says so.
const WORKER: &str = "sidekiq_exec=/bin/sh -c 'trap \"touch /tmp/sidekiq-quieted\" TSTP; while :; do sleep 0.2; done'";

fn quieted(host: &TestHost) -> bool {
    host.ssh("for i in 1 2 3 4 5 6 7 8 9 10; do test -e /tmp/sidekiq-quieted && exit 0; sleep 0.3; done; exit 1")
        .status
        .success()
}

#[test]
fn check_mode_is_exact_on_fresh_and_drifted_hosts_and_rollouts_stop_at_a_failing_batch() {
    let Some(fleet) = Fleet::boot(3) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [app1, app2, app3] = fleet.hosts() else {
        panic!()
    };

    // Fresh hosts: the whole chain (user, directories owned by it, unit, handler).
    let apply = assert_check_is_exact(&fleet, &[SIDEKIQ, "-i", inventory, "-e", WORKER]);
    let handlers: Vec<Value> = tasks_on(&apply, &app1.name)
        .into_iter()
        .filter(|t| t["handler"] == true && t["task"] == "restart sidekiq")
        .collect();
    assert_eq!(handlers.len(), 1, "the restart handler ran once: {apply:#}");

    // Drift of several kinds at once on one host, another kind on a second.
    app1.ssh_ok("systemctl stop sidekiq && ln -sfn releases/0 /opt/app/current && printf 'RAILS_ENV=staging\\n' > /etc/default/sidekiq");
    app2.ssh_ok("usermod -s /bin/sh deploy && chmod 0644 /etc/sudoers.d/sidekiq");
    let apply = assert_check_is_exact(&fleet, &[SIDEKIQ, "-i", inventory, "-e", WORKER]);
    assert_eq!(
        changes_on(&apply, &app1.name),
        [
            "current release: link /opt/app/current -> releases/1",
            "sidekiq environment: update /etc/default/sidekiq",
            "sidekiq unit: start sidekiq.service",
            "restart sidekiq: restart sidekiq.service",
        ]
    );
    assert_eq!(
        changes_on(&apply, &app2.name),
        [
            "deploy user: set shell /bin/bash for user deploy",
            "let deploy control sidekiq: set mode 0440 on /etc/sudoers.d/sidekiq",
        ]
    );
    assert_eq!(changes_on(&apply, &app3.name), Vec::<String>::new());

    // The deploy flow: in check mode TSTP is reported, never sent.
    let (code, check) = converge_json(
        &fleet,
        &[DEPLOY, "-i", inventory, "--tags", "quiet", "--check"],
    );
    assert_eq!(code, 2);
    assert_eq!(
        changes_on(&check, &app1.name),
        ["quiet sidekiq: send TSTP to sidekiq.service"]
    );
    assert!(!quieted(app1), "TSTP was sent in check mode");
    let (code, report) = converge_json(&fleet, &[DEPLOY, "-i", inventory, "--tags", "quiet"]);
    assert_eq!(code, 0, "{report:#}");
    for host in fleet.hosts() {
        assert!(quieted(host), "{} did not get TSTP", host.name);
    }

    // A rollout whose first batch fails does not reach the next batch.
    let before = app3.ssh_ok("systemctl show -p MainPID --value sidekiq");
    app1.ssh_ok("systemctl disable --now sidekiq 2>/dev/null; rm /etc/systemd/system/sidekiq.service && systemctl daemon-reload");
    let (code, report) = converge_json(&fleet, &[DEPLOY, "-i", inventory, "--tags", "restart"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(stat(&report, &app1.name, "failed"), 1);
    assert_eq!(
        changes_on(&report, &app2.name),
        ["restart sidekiq: restart sidekiq.service"]
    );
    let skipped = tasks_on(&report, &app3.name);
    assert_eq!(skipped.len(), 1, "{report:#}");
    assert_eq!(skipped[0]["status"], "skipped");
    assert_eq!(
        skipped[0]["message"],
        "not run: 1 of 2 hosts in an earlier batch failed (max_fail_percentage 0)"
    );
    assert_eq!(
        app3.ssh_ok("systemctl show -p MainPID --value sidekiq"),
        before,
        "app3 was restarted"
    );
}

#[test]
fn sudo_rules_are_proven_on_the_host() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let output = fleet.converge(&[SIDEKIQ, "-i", inventory, "-e", WORKER]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = fleet.converge(&[SIDEKIQ, "-i", inventory, "-e", WORKER]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("verified with sudo -l: deploy may run all 8 commands"),
        "{stdout}"
    );

    // The deploy flow's rule: quiet (TSTP, as deploy tools and converge send it).
    let quiet = fleet.dir().join("quiet.yml");
    std::fs::write(
        &quiet,
        "- hosts: app\n  tasks:\n    - sudoers: { name: sidekiq-quiet, user: deploy, units: [sidekiq.service], verbs: [quiet] }\n",
    )
    .unwrap();
    let output = fleet.converge(&[quiet.to_str().unwrap(), "-i", inventory]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    for command in [
        "systemctl kill -s TSTP sidekiq",
        "systemctl kill --kill-who=main -s TSTP sidekiq.service",
    ] {
        // Sudo's own verdict for deploy: running the signal itself is not what is under
        // test (whole-cgroup signals also fail in these containers, sudo or not).
        host.ssh_ok(&format!("runuser -u deploy -- {SUDO} -n -l {command}"));
    }
    assert!(!host
        .ssh(&format!(
            "runuser -u deploy -- {SUDO} -n -l systemctl kill -s KILL sidekiq"
        ))
        .status
        .success());

    // A later sudoers file takes the right away again: converge names what sudo refuses.
    host.ssh_ok("printf 'deploy ALL=(ALL) !/bin/systemctl restart sidekiq\\n' > /etc/sudoers.d/zz-deny && chmod 0440 /etc/sudoers.d/zz-deny");
    let output = fleet.converge(&[SIDEKIQ, "-i", inventory, "-e", WORKER]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("sudo refuses to let deploy run `/bin/systemctl restart sidekiq` although /etc/sudoers.d/sidekiq is in place"),
        "{stdout}"
    );
}

/// Lines and blocks in files converge does not own, on a file an earlier task of the
/// same run creates, and on one it edits.
const LINES: &str = r#"- hosts: app
  tasks:
    - name: redis binds to loopback
      lineinfile: { path: /srv/redis.conf, regexp: '^#?bind\s', line: bind 127.0.0.1, create: true, mode: "0640" }
    - name: redis limits
      blockinfile: { path: /srv/redis.conf, block: "maxmemory 64mb\nmaxmemory-policy noeviction\n", insert_before: '^bind\s' }
    - name: no root logins
      lineinfile: { path: /srv/sshd_config, regexp: '^#?PermitRootLogin\b', line: PermitRootLogin no }
    - name: deploy uses keys
      blockinfile: { path: /srv/sshd_config, block: "Match User deploy\n  PasswordAuthentication no" }
"#;

#[test]
fn check_mode_is_exact_for_lines_and_blocks_on_fresh_and_drifted_hosts() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    host.ssh_ok("cp /etc/ssh/sshd_config /srv/sshd_config");
    let playbook = fleet.dir().join("lines.yml");
    std::fs::write(&playbook, LINES).unwrap();
    let args = [playbook.to_str().unwrap(), "-i", inventory];

    let apply = assert_check_is_exact(&fleet, &args);
    assert_eq!(
        changes_on(&apply, &host.name),
        [
            "redis binds to loopback: create /srv/redis.conf",
            "redis limits: update /srv/redis.conf",
            "no root logins: update /srv/sshd_config",
            "deploy uses keys: update /srv/sshd_config",
        ]
    );

    // A line edited by hand, a block deleted, a mode changed.
    host.ssh_ok(concat!(
        "sed -i 's/^bind 127.0.0.1$/bind 0.0.0.0/' /srv/redis.conf && chmod 0644 /srv/redis.conf && ",
        "sed -i '/^# BEGIN MANAGED BY CONVERGE$/,/^# END MANAGED BY CONVERGE$/d' /srv/sshd_config"
    ));
    let apply = assert_check_is_exact(&fleet, &args);
    assert_eq!(
        changes_on(&apply, &host.name),
        [
            "redis binds to loopback: update /srv/redis.conf",
            "deploy uses keys: update /srv/sshd_config",
        ]
    );
    assert_eq!(
        host.ssh_ok("stat -c %a /srv/redis.conf; grep -c '^bind 127.0.0.1$' /srv/redis.conf"),
        "640\n1"
    );
}

const UNITS_AND_ACCOUNTS: &str = r#"- hosts: app
  tasks:
    - name: app group
      group: { name: app, gid: 2501 }
    - name: deploy user
      user:
        name: deploy
        uid: 2502
        groups: [app]
        password: "$6$convergetest$0YlZJx2zkzHqWMR/Au0UFdRdDtX8bArBhE8Ct8PKy5myFWnpGyY43b9hcR2Q49tzzd1wzz3q/srhD1F7yBrH.."
        authorized_keys:
          - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVwD1c7YZbHhCuKo1Jm4KXQKxTczPk4iX0h0YQKq2Yb deploy@laptop
    - name: worker unit
      systemd_unit:
        name: worker.service
        enabled: true
        state: started
        content: |
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=multi-user.target
    - name: worker limits
      systemd_dropin:
        unit: worker.service
        name: limits
        content: |
          [Service]
          LimitNOFILE=4096
    - name: old unit
      systemd_unit: { name: old.service, state: absent }
"#;

#[test]
fn check_mode_is_exact_for_drop_ins_removed_units_and_accounts_on_fresh_and_drifted_hosts() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    let install_old = "printf '[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/old.service && systemctl daemon-reload && systemctl enable --now old.service";
    host.ssh_ok(install_old);
    let playbook = fleet.dir().join("units.yml");
    std::fs::write(&playbook, UNITS_AND_ACCOUNTS).unwrap();
    let args = [playbook.to_str().unwrap(), "-i", inventory];

    let apply = assert_check_is_exact(&fleet, &args);
    assert_eq!(
        changes_on(&apply, &host.name),
        [
            "app group: create group app",
            "deploy user: 4 changes (hidden: no_log)",
            "worker unit: create /etc/systemd/system/worker.service",
            "worker unit: enable worker.service",
            "worker unit: daemon-reload (system manager)",
            "worker unit: start worker.service",
            "worker limits: create directory /etc/systemd/system/worker.service.d",
            "worker limits: create /etc/systemd/system/worker.service.d/limits.conf",
            "worker limits: daemon-reload (system manager)",
            "worker limits: restart worker.service",
            "old unit: stop old.service",
            "old unit: disable old.service",
            "old unit: remove regular file /etc/systemd/system/old.service",
            "old unit: daemon-reload (system manager)",
        ]
    );

    // The drop-in deleted, the worker stopped, a key and the password changed by hand,
    // the old unit back.
    host.ssh_ok(&format!(
        "rm /etc/systemd/system/worker.service.d/limits.conf && systemctl stop worker.service && echo ssh-ed25519 AAAA other >> /home/deploy/.ssh/authorized_keys && usermod -p '!' deploy && {install_old}"
    ));
    // (Whether the worker's manager owes a reload after the drop-in vanished is
    // systemd's to say; check mode reads it as apply does.)
    let apply = assert_check_is_exact(&fleet, &args);
    let changes = changes_on(&apply, &host.name);
    for expected in [
        "deploy user: 2 changes (hidden: no_log)",
        "worker unit: start worker.service",
        "worker limits: create /etc/systemd/system/worker.service.d/limits.conf",
        "worker limits: restart worker.service",
        "old unit: remove regular file /etc/systemd/system/old.service",
    ] {
        assert!(
            changes.iter().any(|c| c == expected),
            "{expected}: {changes:#?}"
        );
    }
    assert_eq!(
        host.ssh_ok("systemctl show -p LimitNOFILE -p ActiveState worker.service | sort"),
        "ActiveState=active\nLimitNOFILE=4096"
    );
}

/// A tree shipped for a user an earlier task of the same run creates, and a later task
/// that manages one of the files the copy would write.
const TREE: &str = "- hosts: app
  tasks:
    - name: deploy user
      user: { name: deploy }
    - name: app tree
      copy: { src: app, dest: /srv/app, owner: deploy, group: deploy, delete: true }
    - name: runner owned
      file: { path: /srv/app/bin/run, owner: deploy }
";

#[test]
fn check_mode_is_exact_for_copied_trees_on_fresh_and_drifted_hosts() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    let app = fleet.dir().join("files/app");
    std::fs::create_dir_all(app.join("bin")).unwrap();
    std::fs::write(app.join("bin/run"), "#!/bin/sh\n").unwrap();
    std::fs::write(app.join("blob"), [0xffu8, 0xfe, 0x00]).unwrap();
    let playbook = fleet.dir().join("tree.yml");
    std::fs::write(&playbook, TREE).unwrap();
    let args = [playbook.to_str().unwrap(), "-i", inventory];

    let apply = assert_check_is_exact(&fleet, &args);
    assert_eq!(
        changes_on(&apply, &host.name),
        [
            "deploy user: create user deploy",
            "app tree: create directory /srv/app",
            "app tree: create directory /srv/app/bin",
            "app tree: create /srv/app/bin/run",
            "app tree: create /srv/app/blob",
        ]
    );

    // A file deleted, the binary edited, an extra directory.
    host.ssh_ok("rm /srv/app/bin/run && printf x > /srv/app/blob && mkdir /srv/app/tmp");
    let apply = assert_check_is_exact(&fleet, &args);
    assert_eq!(
        changes_on(&apply, &host.name),
        [
            "app tree: create /srv/app/bin/run",
            "app tree: update /srv/app/blob",
            "app tree: remove directory /srv/app/tmp",
        ]
    );
}
