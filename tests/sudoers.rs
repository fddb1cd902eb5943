//! The `sudoers` module on a real host: the `sudo -l` proof after a write, and what
//! happens when sudo refuses what the new file says (another rule overrides it): the
//! previous file is put back byte for byte, or the new one removed, and the failure says
//! what sudo grants. Wildcards in arguments are installed only when asked for.

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use support::{inventory, text};

const RULES: &str = "/etc/sudoers.d/app";

/// The content, owner, group and mode of `path`, and any temporary file beside it.
fn state(host: &TestHost, path: &str) -> String {
    host.ssh_ok(&format!(
        "if [ -e {path} ]; then stat -c '%U:%G %a' {path}; sha256sum < {path}; else echo missing; fi; ls -A /etc/sudoers.d | grep -c '^\\.converge' || true"
    ))
}

#[test]
fn a_refused_proof_puts_the_previous_file_back_and_says_what_sudo_grants() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    // A rule read after converge's file takes the command away again.
    host.ssh_ok(concat!(
        "useradd -m deploy && ",
        "printf 'deploy ALL=(root) !/bin/systemctl restart sidekiq\\n' > /etc/sudoers.d/zz-deny && ",
        "chmod 0440 /etc/sudoers.d/zz-deny && ",
        "printf '# hand-written, kept byte for byte \\ndeploy ALL=(root) NOPASSWD: /bin/true' > /etc/sudoers.d/app && ",
        "chmod 0440 /etc/sudoers.d/app"
    ));
    let before = state(host, RULES);
    let playbook = fleet.dir().join("sudoers.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - name: deploy may restart sidekiq\n      sudoers: { name: app, user: deploy, commands: [/bin/systemctl restart sidekiq] }\n",
    )
    .unwrap();
    let run = || fleet.converge(&[playbook.to_str().unwrap(), "-i", inventory]);

    let output = run();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("sudo refuses to let deploy run `/bin/systemctl restart sidekiq` as root; the previous /etc/sudoers.d/app was put back. sudo -l -U deploy lists:\n"),
        "{}",
        text(&output)
    );
    assert!(
        stdout.contains("(root) !/bin/systemctl restart sidekiq"),
        "{}",
        text(&output)
    );
    assert_eq!(
        state(host, RULES),
        before,
        "the previous file is back as it was"
    );

    // No file before: the new one is removed again.
    host.ssh_ok("rm /etc/sudoers.d/app");
    let output = run();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("/etc/sudoers.d/app was removed (there was none before)"),
        "{}",
        text(&output)
    );
    assert_eq!(state(host, RULES), "missing\n0");

    // Without the overriding rule the same task installs its file and proves it.
    host.ssh_ok("rm /etc/sudoers.d/zz-deny");
    let output = run();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        host.ssh_ok("cat /etc/sudoers.d/app"),
        "# Managed by converge; changes made here will be reverted.\ndeploy ALL=(ALL) NOPASSWD: /bin/systemctl restart sidekiq"
    );
}

#[test]
fn wildcards_in_arguments_only_when_asked_for() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    host.ssh_ok("useradd -m deploy");
    let playbook = fleet.dir().join("wildcards.yml");
    for (allow, code) in [("false", 3), ("true", 0)] {
        std::fs::write(
            &playbook,
            format!("- hosts: app\n  tasks:\n    - sudoers: {{ name: logs, user: deploy, allow_wildcards: {allow}, commands: [\"/bin/cat /var/log/app/*\"] }}\n"),
        )
        .unwrap();
        let output = fleet.converge(&[playbook.to_str().unwrap(), "-i", inventory]);
        assert_eq!(output.status.code(), Some(code), "{}", text(&output));
    }
    assert_eq!(
        host.ssh_ok("cat /etc/sudoers.d/logs"),
        "# Managed by converge; changes made here will be reverted.\ndeploy ALL=(ALL) NOPASSWD: /bin/cat /var/log/app/*"
    );
}
