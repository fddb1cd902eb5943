//! Accounts with fixed IDs and SSH keys on real hosts: `uid`, `gid`, `create_home` and
//! `authorized_keys` (the user's own `~/.ssh/authorized_keys`, 0600 in a 0700 `~/.ssh`,
//! holding exactly the keys given) converge, log the user in, are found drifted by
//! `--check` and repaired.

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use support::{changes_on, converge_json, inventory, ssh_as, text};

/// `openssl passwd -6` of a test password: a secret converge must never show.
const HASH: &str =
    "$6$convergetest$0YlZJx2zkzHqWMR/Au0UFdRdDtX8bArBhE8Ct8PKy5myFWnpGyY43b9hcR2Q49tzzd1wzz3q/srhD1F7yBrH..";

const OTHER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGVwD1c7YZbHhCuKo1Jm4KXQKxTczPk4iX0h0YQKq2Yb old@desktop";

/// Runs `id -un` on `host` logged in as `user` with the fleet's key.
fn login(fleet: &Fleet, host: &TestHost, user: &str) -> String {
    let output = ssh_as(fleet, host, user, "id -un")
        .output()
        .expect("run ssh");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn ids_and_authorized_keys_converge_log_in_and_are_repaired() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    let key = std::fs::read_to_string(fleet.home().join(".ssh/id_ed25519.pub")).unwrap();
    let key = key.trim();
    let playbook = fleet.dir().join("accounts.yml");
    std::fs::write(
        &playbook,
        format!(
            "- hosts: app\n  tasks:\n    - name: app group\n      group: {{ name: app, gid: 2501 }}\n    - name: deploy user\n      user:\n        name: deploy\n        uid: 2502\n        shell: /bin/bash\n        groups: [app]\n        authorized_keys:\n          - {key}\n    - name: service account\n      user: {{ name: svc, create_home: false, password: \"{HASH}\" }}\n"
        ),
    )
    .unwrap();
    let playbook = playbook.to_str().unwrap();

    // Fresh host: --check lists what the apply then does.
    let fresh = [
        "app group: create group app",
        "deploy user: create user deploy",
        "deploy user: create directory /home/deploy/.ssh",
        "deploy user: create /home/deploy/.ssh/authorized_keys",
        "service account: 2 changes (hidden: no_log)",
    ];
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), fresh);
    assert!(!report.to_string().contains(HASH));
    let output = fleet.converge(&[playbook, "-i", inventory, "-vv"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(!text(&output).contains(HASH), "{}", text(&output));
    assert_eq!(
        host.ssh_ok("getent shadow svc | cut -d: -f2"),
        HASH,
        "the password hash is set"
    );
    assert_eq!(
        host.ssh_ok("getent group app | cut -d: -f3; id -u deploy; id -Gn deploy"),
        "2501\n2502\ndeploy app"
    );
    assert_eq!(
        host.ssh_ok("stat -c '%U:%G %a' /home/deploy/.ssh /home/deploy/.ssh/authorized_keys"),
        "deploy:deploy 700\ndeploy:deploy 600"
    );
    assert_eq!(host.ssh_ok("cat /home/deploy/.ssh/authorized_keys"), key);
    assert_eq!(login(&fleet, host, "deploy"), "deploy");
    assert_eq!(
        host.ssh_ok("getent passwd svc >/dev/null && test ! -e /home/svc && echo no home"),
        "no home"
    );
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");

    // A key added by hand, a loosened ~/.ssh, a renumbered group and a locked
    // password: found, repaired.
    host.ssh_ok(&format!(
        "echo '{OTHER_KEY}' >> /home/deploy/.ssh/authorized_keys && chmod 755 /home/deploy/.ssh && groupmod --gid 2600 app && usermod -p '!' svc"
    ));
    let drift = [
        "app group: set gid 2501 for group app",
        "deploy user: set mode 0700 on /home/deploy/.ssh",
        "deploy user: update /home/deploy/.ssh/authorized_keys",
        "service account: 1 changes (hidden: no_log)",
    ];
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), drift);
    assert!(!report.to_string().contains(HASH));
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), drift);
    assert_eq!(host.ssh_ok("cat /home/deploy/.ssh/authorized_keys"), key);
    assert_eq!(
        host.ssh_ok("stat -c %a /home/deploy/.ssh; getent group app | cut -d: -f3; getent shadow svc | cut -d: -f2"),
        format!("700\n2501\n{HASH}")
    );
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{report:#}");
}
