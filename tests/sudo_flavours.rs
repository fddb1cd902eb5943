//! Whatever sudo a host has (sudo, Debian's sudo-rs package alone, or sudo-rs
//! installed as sudo), a sudoers rule is validated, installed and proven with it,
//! `become` works through it from a login that is not root, `--check` is exact, and
//! the facts name it. Run on every release of the matrix (`scripts/test.sh`).

mod fleet;
mod support;

use std::fmt::Write as _;

use fleet::{Fleet, TestHost, SUDO};
use support::{changes_on, converge_json, text};

/// A login `ops` with passwordless sudo, reached with the fleet's key.
fn add_ops(host: &TestHost) {
    host.ssh_ok(
        "useradd --create-home --shell /bin/sh ops
install -d -m 0700 -o ops -g ops /home/ops/.ssh
install -m 0600 -o ops -g ops /root/.ssh/authorized_keys /home/ops/.ssh/authorized_keys
printf 'ops ALL=(ALL:ALL) NOPASSWD: ALL\\n' > /etc/sudoers.d/ops
chmod 0440 /etc/sudoers.d/ops",
    );
}

fn inventory(fleet: &Fleet, user: &str) -> String {
    let key = fleet.home().join(".ssh/id_ed25519");
    let mut yaml = format!(
        "all:\n  vars: {{ user: {user}, identity_file: {} }}\n  hosts:\n",
        key.display()
    );
    for host in fleet.hosts() {
        let _ = writeln!(
            yaml,
            "    {}: {{ host: 127.0.0.1, port: {} }}",
            host.name, host.port
        );
    }
    let path = fleet.dir().join(format!("inventory-{user}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path.to_str().unwrap().to_owned()
}

const PLAYBOOK: &str = "- hosts: all
  become: true
  tasks:
    - user: { name: deploy, shell: /bin/sh }
    - name: worker unit
      systemd_unit:
        name: worker.service
        content: \"[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n\"
        enabled: true
        state: started
    - name: let deploy restart the worker
      sudoers: { name: worker, user: deploy, units: [worker.service], verbs: [restart, status] }
    - name: what converge knows
      file:
        path: /etc/converge-facts
        content: \"{{ converge_sudo_flavour }} {{ converge_sudo_version }} systemd {{ converge_systemd_version }}\\n\"
";

#[test]
fn become_sudoers_and_their_proof_work_with_the_hosts_own_sudo_and_check_is_exact() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    add_ops(host);
    let inventory = inventory(&fleet, "ops");
    let playbook = fleet.dir().join("site.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let playbook = playbook.to_str().unwrap();

    let (code, checked) = converge_json(&fleet, &[playbook, "-i", &inventory, "--check"]);
    assert_eq!(code, 2, "{checked}");
    let (code, applied) = converge_json(&fleet, &[playbook, "-i", &inventory]);
    assert_eq!(code, 0, "{applied}");
    assert_eq!(
        changes_on(&checked, &host.name),
        changes_on(&applied, &host.name),
        "check mode listed other changes than apply made"
    );
    assert!(
        applied.to_string().contains("verified with sudo -l")
            || changes_on(&applied, &host.name)
                .iter()
                .any(|change| change.contains("verify with sudo -l")),
        "{applied}"
    );
    let output = fleet.converge(&[playbook, "-i", &inventory]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("changed=0"), "{}", text(&output));

    // The rule works with the host's sudo, through every systemctl the host has.
    for systemctl in ["/bin/systemctl", "/usr/bin/systemctl"] {
        if host.ssh(&format!("test -x {systemctl}")).status.success() {
            host.ssh_ok(&format!(
                "runuser -u deploy -- {SUDO} -n {systemctl} restart worker.service"
            ));
        }
    }
    let refused = host.ssh(&format!(
        "runuser -u deploy -- {SUDO} -n /bin/systemctl stop worker.service"
    ));
    assert!(!refused.status.success(), "deploy may stop the worker");

    // The facts name the sudo and systemd the host really has.
    let says = host.ssh_ok(&format!("{SUDO} -V 2>&1 | head -n 1"));
    let flavour = if says.starts_with("sudo-rs") {
        "sudo-rs"
    } else {
        "sudo"
    };
    let systemd = host.ssh_ok("systemctl --version | head -n 1 | cut -d' ' -f2");
    let facts = host.ssh_ok("cat /etc/converge-facts");
    assert!(
        facts.starts_with(&format!("{flavour} ")) && facts.ends_with(&format!("systemd {systemd}")),
        "facts say {facts:?}; the host says {says:?} and systemd {systemd}"
    );
}

#[test]
fn a_host_without_sudo_says_so_in_check_mode_and_apply() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    add_ops(host);
    host.ssh_ok(
        "for f in /usr/bin/sudo /usr/bin/sudo-rs /usr/sbin/visudo /usr/bin/visudo /usr/bin/visudo-rs; do
  if [ -e \"$f\" ] || [ -h \"$f\" ]; then mv \"$f\" \"$f.away\"; fi
done",
    );
    let playbook = fleet.dir().join("site.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let playbook = playbook.to_str().unwrap();
    let as_ops = inventory(&fleet, "ops");
    let as_root = inventory(&fleet, "root");
    for mode in [&["--check"][..], &[]] {
        let mut args = vec![playbook, "-i", &as_ops];
        args.extend_from_slice(mode);
        let output = fleet.converge(&args);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        assert!(
            text(&output).contains("become needs sudo, and neither sudo nor sudo-rs is installed"),
            "{mode:?}: {}",
            text(&output)
        );
    }
    let output = fleet.converge(&[playbook, "-i", &as_root, "--check"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains(
            "sudo is not installed on this host (neither sudo nor sudo-rs provides it): install sudo or sudo-rs before a sudoers task"
        ),
        "{}",
        text(&output)
    );
}
