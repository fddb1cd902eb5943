//! `no_log` keeps a task's secrets out of every output, and `become_user` runs a
//! task's changes as another user, on a real host.

mod fleet;
mod support;

use fleet::Fleet;
use support::{inventory, text};

const SECRET: &str = "hunter2-s3cret";

#[test]
fn no_log_hides_secrets_everywhere_and_become_user_acts_as_that_user() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let report = fleet.dir().join("report.json");
    let playbook = fleet.dir().join("secrets.yml");
    std::fs::write(
        &playbook,
        format!(
            "- hosts: app
  vars:
    db_password: {SECRET}
  tasks:
    - user: {{ name: deploy }}
    - name: database credentials
      file: {{ path: /etc/app-credentials, content: \"password={{{{ db_password }}}}\\n\", mode: \"0600\" }}
      no_log: true
    - name: written by deploy
      become_user: deploy
      command: {{ cmd: \"id -un > /tmp/who\", creates: /tmp/who }}
"
        ),
    )
    .unwrap();
    let output = fleet.converge(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory,
        "--diff",
        "-vv",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let everything = format!(
        "{}{}",
        text(&output),
        std::fs::read_to_string(&report).unwrap()
    );
    assert!(
        !everything.contains(SECRET),
        "the secret leaked:\n{everything}"
    );
    assert!(
        everything.contains("1 changes (hidden: no_log)"),
        "{everything}"
    );
    assert_eq!(
        host.ssh_ok("cat /etc/app-credentials"),
        format!("password={SECRET}")
    );
    assert_eq!(
        host.ssh_ok("stat -c '%U %a' /tmp/who; cat /tmp/who"),
        "deploy 644\ndeploy"
    );

    // A failing no_log task: its error (which would show the command) is hidden too.
    let failing = fleet.dir().join("failing.yml");
    std::fs::write(
        &failing,
        format!("- hosts: app\n  tasks:\n    - command: {{ cmd: \"echo {SECRET} >&2; exit 3\" }}\n      no_log: true\n"),
    )
    .unwrap();
    let output = fleet.converge(&[
        failing.to_str().unwrap(),
        "-i",
        inventory,
        "-vv",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        !text(&output).contains(SECRET),
        "the secret leaked:\n{}",
        text(&output)
    );
    assert!(text(&output).contains("details (hidden: no_log)"));
}
