//! The test hosts themselves: real systemd, logind, sudo, and isolation between hosts.

mod fleet;
// The builder `Fleet::converge` runs the binary with.
mod support;

use fleet::{Fleet, SUDO, VISUDO};

#[test]
fn hosts_boot_real_systemd_and_are_independent() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [a, b] = fleet.hosts() else {
        panic!("expected 2 hosts")
    };
    assert_ne!(a.port, b.port);

    for host in [a, b] {
        let state = host.ssh("systemctl is-system-running --wait");
        let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
        assert!(
            state == "running" || state == "degraded",
            "{} is {state:?}; failed units: {}",
            host.name,
            host.ssh_ok("systemctl --failed --no-legend --plain")
        );
        assert_eq!(host.ssh_ok("hostname"), host.name);
        assert_eq!(host.ssh_ok("id -un"), "root");
        let visudo = host.ssh_ok(&format!("{VISUDO} -c"));
        assert!(visudo.contains("parsed OK"), "visudo -c said: {visudo}");
        // A login through sshd is a logind session.
        let sessions = host.ssh_ok("loginctl list-sessions --no-legend");
        assert!(sessions.contains("root"), "loginctl sessions: {sessions:?}");
        host.ssh_ok("systemctl is-active --quiet ssh.service dbus.service systemd-logind.service");
        host.ssh_ok(&format!("{SUDO} -n true"));
    }

    // Each host writes to its own throwaway layer over the shared image.
    a.ssh_ok("echo hello > /etc/converge-smoke && mkdir -p /srv/only-a");
    assert_eq!(a.ssh_ok("cat /etc/converge-smoke"), "hello");
    b.ssh_ok("test ! -e /etc/converge-smoke && test ! -e /srv/only-a");
    assert_ne!(
        a.ssh_ok("cat /etc/machine-id"),
        b.ssh_ok("cat /etc/machine-id")
    );

    // The harness's own files for the converge binary.
    let ssh_dir = fleet.home().join(".ssh");
    let known_hosts = std::fs::read_to_string(ssh_dir.join("known_hosts")).unwrap();
    for host in [a, b] {
        assert!(known_hosts.contains(&format!("[127.0.0.1]:{} ssh-ed25519 ", host.port)));
    }
    assert!(ssh_dir.join("id_ed25519").is_file());
    let inventory = std::fs::read_to_string(fleet.write_inventory("web")).unwrap();
    assert!(
        inventory.contains(&format!("port: {}", b.port)),
        "{inventory}"
    );
    assert!(fleet.dir().is_dir());
}

#[test]
fn a_killed_host_refuses_connections() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    host.ssh_ok("true");
    host.kill();
    let out = host.ssh("true");
    assert!(!out.status.success(), "ssh to a killed host succeeded");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", host.port)).is_err(),
        "port {} still open after kill",
        host.port
    );
}
