//! Inventory values tagged `!template` on a real host: such a value is rendered with the
//! host's other variables and its gathered facts, an untagged value beside it reaches
//! the host as written, and a tagged value naming an undefined variable is an input
//! error naming the variable and its file.

mod fleet;
mod support;

use fleet::Fleet;
use support::{converge_json, inventory, stat, text};

const PLAYBOOK: &str = "- hosts: app
  tasks:
    - file:
        path: /etc/inventory-templates
        content: \"{{ app_dir }}|{{ release_dir }}|{{ note }}\\n\"
";

#[test]
fn tagged_inventory_values_are_rendered_and_untagged_ones_stay_literal() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(
        &fleet,
        "      vars:\n        base_dir: /srv/demo\n        \
         release_dir: !template \"{{ app_dir }}/releases\"\n",
    );
    let inventory = inventory.to_str().unwrap();
    std::fs::create_dir_all(fleet.dir().join("group_vars")).unwrap();
    let group_vars = fleet.dir().join("group_vars/app.yml");
    std::fs::write(
        &group_vars,
        "app_dir: !template \"{{ base_dir }}/{{ converge_os_codename }}\"\n\
         note: \"{{ base_dir }}/{{ converge_os_codename }}\"\n",
    )
    .unwrap();
    let host = &fleet.hosts()[0];
    let playbook = fleet.dir().join("site.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let playbook = playbook.to_str().unwrap();

    let (code, apply) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{apply:#}");
    let codename = host.ssh_ok(". /etc/os-release; echo \"$VERSION_CODENAME\"");
    let codename = codename.trim();
    assert!(!codename.is_empty());
    assert_eq!(
        host.ssh_ok("cat /etc/inventory-templates"),
        format!(
            "/srv/demo/{codename}|/srv/demo/{codename}/releases|\
             {{{{ base_dir }}}}/{{{{ converge_os_codename }}}}"
        )
    );
    let (code, again) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "changed"), 0, "{again:#}");

    // A tagged value that names a variable nobody defines: an input error (exit 3)
    // before anything changes, naming the variable and the file.
    std::fs::write(
        &group_vars,
        "app_dir: !template \"{{ base_dri }}/app\"\nnote: x\n",
    )
    .unwrap();
    let output = fleet.converge(&[playbook, "-i", inventory]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let expected = format!(
        "undefined variable `base_dri` in inventory variable `app_dir` ({})",
        group_vars.display()
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&expected),
        "{}",
        text(&output)
    );
}
