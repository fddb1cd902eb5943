//! `--skip-tags` and `--start-at-task` on a real host: the tasks left out change
//! nothing there, the others run.

mod fleet;
mod support;

use fleet::Fleet;
use support::{converge_json, inventory};

const PLAYBOOK: &str = r#"- hosts: app
  tasks:
    - name: first
      file: { path: /etc/ts-first, content: "1\n" }
    - name: slow one
      file: { path: /etc/ts-slow, content: "2\n" }
      tags: [slow]
    - name: last
      file: { path: /etc/ts-last, content: "3\n" }
- hosts: app
  tasks:
    - name: second play
      file: { path: /etc/ts-second, content: "4\n" }
"#;

#[test]
fn skipped_tags_and_tasks_before_the_start_do_not_run() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let host = &fleet.hosts()[0];
    let playbook = fleet.dir().join("ts.yml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    let playbook = playbook.to_str().unwrap();
    let present =
        "for f in first slow last second; do test -e /etc/ts-$f && printf '%s ' $f; done; true";

    let (code, run) = converge_json(
        &fleet,
        &[
            playbook,
            "-i",
            inventory,
            "--start-at-task",
            "slow one",
            "--skip-tags",
            "slow",
        ],
    );
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(host.ssh_ok(present), "last second");

    let (code, run) = converge_json(&fleet, &[playbook, "-i", inventory, "--skip-tags", "slow"]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(host.ssh_ok(present), "first last second");
}
