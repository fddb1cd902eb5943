//! `gather_facts` on a real host: the hardware and network facts templates see agree
//! with the host's own tools, cost no extra round trip, and a play with
//! `gather_facts: false` leaves them undefined.

mod fleet;
mod support;

use fleet::Fleet;
use support::{converge_json, inventory, stat, text};

const PLAYBOOK: &str = r#"- hosts: app
  tasks:
    - file:
        path: /etc/gathered.json
        content: "{{ {'arch': converge_architecture, 'cpus': converge_cpu_count, 'memory_mb': converge_memory_mb, 'kernel': converge_kernel, 'family': converge_os_family, 'codename': converge_os_codename, 'interface': converge_default_interface, 'ipv4': converge_default_ipv4, 'os': converge_os, 'version': converge_os_version, 'systemd': converge_systemd_version} | to_json }}\n"
"#;

#[test]
fn gathered_facts_agree_with_the_host() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    let playbook = fleet.dir().join("gathered.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let playbook = playbook.to_str().unwrap();

    let (code, apply) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{apply:#}");
    let facts: serde_json::Value =
        serde_json::from_str(&host.ssh_ok("cat /etc/gathered.json")).unwrap();
    let own = host.ssh_ok(
        "uname -m; grep -c ^processor /proc/cpuinfo; \
         echo $(( $(sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo) / 1024 )); \
         uname -r; . /etc/os-release; echo \"$ID\"; echo \"$VERSION_CODENAME\"",
    );
    let own: Vec<&str> = own.lines().collect();
    assert_eq!(facts["arch"], own[0], "{facts}");
    assert_eq!(facts["cpus"].to_string(), own[1], "{facts}");
    assert_eq!(facts["memory_mb"].to_string(), own[2], "{facts}");
    assert_eq!(facts["kernel"], own[3], "{facts}");
    assert_eq!(facts["family"], own[4], "Debian is its own family: {facts}");
    assert_eq!(facts["codename"], own[5], "{facts}");
    assert_eq!(facts["os"], "debian");
    assert!(
        facts["systemd"].as_u64().is_some_and(|v| v >= 252),
        "{facts}"
    );
    // The default route, as the host's own `ip` sees it (none on an isolated host).
    let route = host.ssh_ok("ip -4 -o route get 1.1.1.1 2>/dev/null || true");
    match route.split_whitespace().skip_while(|w| *w != "src").nth(1) {
        Some(address) => assert_eq!(facts["ipv4"], address, "{facts}"),
        None => assert!(facts["ipv4"].is_null(), "{facts}"),
    }

    // Nothing to change: still one remote command.
    let (code, again) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "commands"), 1, "{again:#}");

    // Turned off: the facts are undefined, an input error naming one.
    let off = fleet.dir().join("off.yml");
    std::fs::write(
        &off,
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - file: { path: /etc/off, content: \"{{ converge_cpu_count }}\" }\n",
    )
    .unwrap();
    let output = fleet.converge(&[off.to_str().unwrap(), "-i", inventory]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("undefined variable `converge_cpu_count`"),
        "{}",
        text(&output)
    );
}
