//! Variables from files and filters on a real host: a play's `vars_files` (one chosen
//! per run by a templated path), `-e @FILE` and `-e '{json}'` with their types, play
//! variables built from each other in any order, and Ansible's filters writing a JSON
//! file and a `/etc/shadow` hash that the host's own crypt(3) agrees with. A second run
//! changes nothing.

mod fleet;
mod support;

use fleet::Fleet;
use support::{changes_on, converge_json, inventory, text};

const PLAYBOOK: &str = r#"- hosts: app
  vars:
    greeting: "{{ name | upper }} on {{ port }}"
    name: vf
  vars_files:
    - vars/common.yml
    - "vars/{{ stage }}.yml"
  tasks:
    - file:
        path: /etc/vf.json
        content: "{{ settings | combine({'greeting': greeting, 'port': port | int}) | to_nice_json }}\n"
    - user:
        name: vf-user
        password: "{{ 'secret' | password_hash('sha512', 'vfsalt') }}"
    - file:
        path: "/etc/{{ conf_path | basename }}"
        content: "{{ workers }} {{ queues | join(',') }} {{ conf_path | dirname | quote }}\n"
"#;

#[test]
fn vars_files_extra_vars_files_and_filters_converge_without_drift() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    let dir = fleet.dir();
    std::fs::create_dir_all(dir.join("vars")).unwrap();
    std::fs::write(
        dir.join("vars/common.yml"),
        "settings: {mode: common, port: 1}\nport: \"{{ base_port + 1 }}\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("vars/production.yml"), "base_port: 8000\n").unwrap();
    std::fs::write(
        dir.join("extra.yml"),
        "conf_path: /srv/my app/vf.conf\nqueues: [default, mailers]\n",
    )
    .unwrap();
    let playbook = dir.join("vf.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let playbook = playbook.to_str().unwrap();
    let extra = format!("@{}", dir.join("extra.yml").display());
    let args = [
        playbook,
        "-i",
        inventory,
        "-e",
        &extra,
        "-e",
        r#"{"stage": "production", "workers": 3}"#,
    ];

    let (code, apply) = converge_json(&fleet, &args);
    assert_eq!(code, 0, "{apply:#}");
    assert_eq!(
        host.ssh_ok("cat /etc/vf.json"),
        "{\n    \"greeting\": \"VF on 8001\",\n    \"mode\": \"common\",\n    \"port\": 8001\n}"
    );
    assert_eq!(
        host.ssh_ok("cat /etc/vf.conf"),
        "3 default,mailers '/srv/my app'"
    );
    // The host's own crypt(3) computes the same hash from the password and the salt.
    let shadow = host.ssh_ok("getent shadow vf-user | cut -d: -f2");
    let crypt = host.ssh_ok(r#"perl -e 'print crypt("secret", "\$6\$vfsalt\$")'"#);
    assert!(shadow.starts_with("$6$vfsalt$"), "{shadow}");
    assert_eq!(shadow, crypt);

    let (code, check) = converge_json(&fleet, &[&args[..], &["--check"]].concat());
    assert_eq!(code, 0, "drift left after apply: {check:#}");
    assert!(changes_on(&check, &host.name).is_empty(), "{check:#}");

    // A vars file that is not YAML: exit 3 before any host is contacted, at its line.
    std::fs::write(dir.join("vars/common.yml"), "settings: {mode: [\n").unwrap();
    let output = fleet.converge(&args);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "play `app`: vars_files: {}:2:1: ",
            dir.join("vars/common.yml").display()
        )),
        "{}",
        text(&output)
    );
}
