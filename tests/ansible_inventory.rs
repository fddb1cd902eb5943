//! An inventory laid out as Ansible users keep one, used as it is on real hosts: an INI
//! file with groups, `[group:children]`, `[group:vars]` and a range, next to
//! `group_vars/` (a file and a directory) and `host_vars/`, read through `-i DIR`.
//! Where each host is reached (its port) comes from `host_vars/` alone, so a host that
//! received a wrong variable would not even be reached.

mod fleet;
mod support;

use std::fs;
use std::path::Path;

use fleet::Fleet;
use support::{converge_json, stat};

const PLAYBOOK: &str = "\
- hosts: prod
  tasks:
    - name: what this host was told
      file:
        path: /root/vars.txt
        content: \"{{ env }} {{ tier }} {{ color }} {{ ntp }} {{ inventory_hostname }}\\n\"
        mode: \"0600\"
";

fn write(dir: &Path, files: &[(&str, String)]) {
    for (path, content) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

#[test]
fn an_ansible_inventory_directory_converges_as_written() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [first, second] = fleet.hosts() else {
        unreachable!()
    };
    let inventory = fleet.dir().join("inventory");
    let key = fleet.home().join(".ssh/id_ed25519");
    write(
        &inventory,
        &[
            (
                "hosts",
                "# production\n\
                 [app]\n\
                 app[1:2]\n\
                 \n\
                 [db]\n\
                 \n\
                 [prod:children]\n\
                 app\n\
                 db\n\
                 \n\
                 [app:vars]\n\
                 tier=app-ini\n\
                 color=app-ini\n\
                 \n\
                 [prod:vars]\n\
                 env=prod-ini\n"
                    .to_owned(),
            ),
            ("README.md", "Not an inventory: [skipped\n".to_owned()),
            (
                "group_vars/all.yml",
                format!(
                    "ansible_host: 127.0.0.1\nansible_user: root\n\
                     ansible_ssh_private_key_file: {}\ncolor: all-dir\nntp: all-dir\n",
                    key.display()
                ),
            ),
            ("group_vars/prod/10-env.yml", "env: prod-dir\n".to_owned()),
            ("group_vars/prod/20-ntp.yaml", "ntp: prod-dir\n".to_owned()),
            (
                "host_vars/app1.yml",
                format!("ansible_port: {}\n", first.port),
            ),
            (
                "host_vars/app2",
                format!("ansible_port: {}\ntier: host-dir\n", second.port),
            ),
        ],
    );
    let playbook = fleet.dir().join("site.yml");
    fs::write(&playbook, PLAYBOOK).unwrap();

    let (code, report) = converge_json(
        &fleet,
        &[
            playbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(stat(&report, "app1", "changed"), 1, "{report:#}");
    // group_vars/ beat the INI file's [group:vars] (group_vars/all included), and
    // host_vars/ beat everything from groups: Ansible's precedence.
    assert_eq!(
        first.ssh_ok("cat /root/vars.txt"),
        "prod-dir app-ini all-dir prod-dir app1"
    );
    assert_eq!(
        second.ssh_ok("cat /root/vars.txt"),
        "prod-dir host-dir all-dir prod-dir app2"
    );
}
