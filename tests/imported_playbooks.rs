//! `import_playbook` on a real host: the imported plays run in place, their template
//! and `vars_files` are found beside the imported file, not the importing one, and a
//! second run changes nothing.

mod fleet;
mod support;

use fleet::Fleet;
use support::{changes_on, converge_json, inventory};

#[test]
fn imported_plays_run_with_files_from_their_own_directory() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    let dir = fleet.dir();
    let sub = dir.join("services");
    std::fs::create_dir_all(sub.join("templates")).unwrap();
    std::fs::create_dir_all(sub.join("vars")).unwrap();
    std::fs::write(sub.join("templates/ip.conf.j2"), "from={{ origin }}\n").unwrap();
    std::fs::write(sub.join("vars/ip.yml"), "origin: imported\n").unwrap();
    // A template of the same name beside the importing playbook must not be used.
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("templates/ip.conf.j2"), "wrong\n").unwrap();
    std::fs::write(
        sub.join("ip.yml"),
        "- hosts: app\n  vars_files: [vars/ip.yml]\n  tasks:\n    - file: { path: /etc/ip.conf, template: ip.conf.j2 }\n",
    )
    .unwrap();
    let playbook = dir.join("ip-site.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - file: { path: /etc/ip-first, content: \"1\\n\" }\n- import_playbook: services/ip.yml\n",
    )
    .unwrap();
    let playbook = playbook.to_str().unwrap();

    let (code, apply) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{apply:#}");
    assert_eq!(apply["plays"].as_array().unwrap().len(), 2, "{apply:#}");
    assert_eq!(
        host.ssh_ok("cat /etc/ip-first /etc/ip.conf"),
        "1\nfrom=imported"
    );
    let (code, check) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{check:#}");
    assert!(changes_on(&check, &host.name).is_empty(), "{check:#}");
}
