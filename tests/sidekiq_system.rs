//! The Sidekiq system-service story on real hosts: converge from scratch, idempotence,
//! drift found by `--check` and repaired, sudoers safety, unreachable hosts, and
//! hostile names.

mod fleet;
mod support;

use fleet::{Fleet, TestHost, SUDO, VISUDO};
use support::{changes_on, converge_json, inventory, stat, text};

const SIDEKIQ: &str = "playbooks/sidekiq.yml";
const UNIT_PATH: &str = "/etc/systemd/system/sidekiq.service";

fn assert_sidekiq_converged(host: &TestHost) {
    assert_eq!(
        host.ssh_ok("systemctl is-active sidekiq"),
        "active",
        "{}",
        host.name
    );
    assert_eq!(host.ssh_ok("systemctl is-enabled sidekiq"), "enabled");
    assert!(host.ssh_ok(&format!("{VISUDO} -c")).contains("parsed OK"));
    assert_eq!(
        host.ssh_ok("stat -c '%U:%G %a' /etc/sudoers.d/sidekiq"),
        "root:root 440"
    );
    // deploy may restart sidekiq without a password, and do nothing else as root.
    host.ssh_ok(&format!(
        "runuser -u deploy -- {SUDO} -n /bin/systemctl restart sidekiq"
    ));
    host.ssh_ok(&format!(
        "runuser -u deploy -- {SUDO} -n systemctl restart sidekiq.service"
    ));
    support::assert_sudo_refuses(
        host,
        "deploy",
        &[
            "systemctl restart ssh",
            "id",
            "systemctl kill -s TSTP sidekiq",
            "cat /etc/shadow",
        ],
    );
}

#[test]
fn sidekiq_converges_from_scratch_then_holds_and_repairs_drift() {
    let Some(fleet) = Fleet::boot(3) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();

    let (code, report) = converge_json(&fleet, &[SIDEKIQ, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    for host in fleet.hosts() {
        assert!(stat(&report, &host.name, "changed") >= 5, "{report:#}");
        assert_sidekiq_converged(host);
    }

    let (code, report) = converge_json(&fleet, &[SIDEKIQ, "-i", inventory]);
    assert_eq!(code, 0);
    for host in fleet.hosts() {
        assert_eq!(
            changes_on(&report, &host.name),
            Vec::<String>::new(),
            "second run changed something"
        );
        assert_eq!(stat(&report, &host.name, "changed"), 0);
    }

    // Someone edits the unit, disables the service and deletes the sudoers file on app2.
    let drifted = &fleet.hosts()[1];
    drifted.ssh_ok(&format!(
        "sed -i 's/RestartSec=1/RestartSec=30/' {UNIT_PATH}"
    ));
    drifted.ssh_ok("systemctl disable sidekiq 2>/dev/null");
    drifted.ssh_ok("rm /etc/sudoers.d/sidekiq");
    let edited = drifted.ssh_ok(&format!("sha256sum {UNIT_PATH}"));

    let output = fleet.converge(&[SIDEKIQ, "-i", inventory, "--check", "--diff"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let human = String::from_utf8_lossy(&output.stdout);
    assert!(
        human.contains("-RestartSec=30") && human.contains("+RestartSec=1"),
        "{human}"
    );
    let (code, report) = converge_json(&fleet, &[SIDEKIQ, "-i", inventory, "--check"]);
    assert_eq!(code, 2);
    assert_eq!(
        changes_on(&report, &drifted.name),
        [
            "sidekiq unit: update /etc/systemd/system/sidekiq.service",
            "sidekiq unit: enable sidekiq.service",
            "sidekiq unit: daemon-reload (system manager)",
            "sidekiq unit: restart sidekiq.service",
            "let deploy control sidekiq: create /etc/sudoers.d/sidekiq (validated with visudo)",
            "let deploy control sidekiq: verify with sudo -l that deploy may run the 8 commands",
        ]
    );
    for other in [&fleet.hosts()[0], &fleet.hosts()[2]] {
        assert_eq!(changes_on(&report, &other.name), Vec::<String>::new());
    }
    // Check mode changed nothing.
    assert_eq!(drifted.ssh_ok(&format!("sha256sum {UNIT_PATH}")), edited);
    assert_eq!(
        drifted.ssh("systemctl is-enabled sidekiq").stdout,
        b"disabled\n"
    );
    assert!(!drifted
        .ssh("test -e /etc/sudoers.d/sidekiq")
        .status
        .success());

    let (code, report) = converge_json(&fleet, &[SIDEKIQ, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &drifted.name).len(), 6);
    assert_sidekiq_converged(drifted);
    assert!(drifted
        .ssh_ok(&format!("cat {UNIT_PATH}"))
        .contains("RestartSec=1\n"));

    let (code, report) = converge_json(&fleet, &[SIDEKIQ, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["changed"], 0);
}

#[test]
fn bad_sudoers_content_never_replaces_a_good_file() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let good = "deploy ALL=(root) NOPASSWD: /bin/systemctl restart sidekiq\n";
    host.ssh_ok(&format!("useradd deploy && printf '%s' '{good}' > /etc/sudoers.d/sidekiq && chmod 0440 /etc/sudoers.d/sidekiq"));
    let before = host.ssh_ok("sha256sum /etc/sudoers.d/sidekiq");
    let playbook = fleet.dir().join("bad-sudoers.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - sudoers:\n        name: sidekiq\n        content: \"deploy ALL=(root NOPASSWD /bin/systemctl\\n\"\n",
    )
    .unwrap();
    let output = fleet.converge(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .contains("visudo rejected the new content; /etc/sudoers.d/sidekiq was left unchanged"),
        "{stdout}"
    );
    assert_eq!(host.ssh_ok("sha256sum /etc/sudoers.d/sidekiq"), before);
    assert_eq!(
        host.ssh_ok("ls -A /etc/sudoers.d | grep -c converge || true"),
        "0",
        "temporary file left behind"
    );
    assert!(host.ssh_ok(&format!("{VISUDO} -c")).contains("parsed OK"));
    host.ssh_ok(&format!("{SUDO} -n true"));
}

#[test]
fn an_unreachable_host_does_not_stop_the_others() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let inventory = inventory(
        &fleet,
        &format!("        gone: {{ host: 127.0.0.1, port: {port} }}\n"),
    );
    let (code, report) = converge_json(&fleet, &[SIDEKIQ, "-i", inventory.to_str().unwrap()]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(stat(&report, "gone", "unreachable"), 1);
    for host in fleet.hosts() {
        assert_eq!(stat(&report, &host.name, "failed"), 0);
        assert_sidekiq_converged(host);
    }
    let output = fleet.converge(&[SIDEKIQ, "-i", inventory.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("unreachable: [gone] cannot connect to 127.0.0.1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gone") && stdout.contains("unreachable=1"),
        "{stdout}"
    );
}

#[test]
fn a_hostile_user_name_is_rejected_before_anything_is_sent() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let playbook = fleet.dir().join("hostile.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - directory: { path: /tmp/created-by-converge }\n    - user: { name: \"x; touch /tmp/pwned\" }\n",
    )
    .unwrap();
    let output = fleet.converge(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid user name \"x; touch /tmp/pwned\""),
        "{stderr}"
    );
    assert!(!host.ssh("test -e /tmp/pwned").status.success());
    assert!(
        !host
            .ssh("test -e /tmp/created-by-converge")
            .status
            .success(),
        "an earlier task ran"
    );
    assert!(!host.ssh("getent passwd x").status.success());
}
