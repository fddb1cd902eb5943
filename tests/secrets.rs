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

/// Input errors (exit 3, before any host is contacted) of `no_log` tasks and plays name
/// the task and the parameter, never the value.
#[test]
fn no_log_values_stay_out_of_input_errors() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let secret = format!("{SECRET} ;*");
    let extra = format!("secret={secret}");
    for (tasks, expected) in [
        (
            "    - user: { name: \"{{ secret }}\" }\n      no_log: true\n",
            "error: play `app`, host app1: task `user`: `name` is invalid (details hidden: no_log)\n",
        ),
        (
            "    - file: { path: \"{{ secret }}\", content: x }\n      no_log: true\n",
            "error: play `app`, host app1: task `file`: `path` is invalid (details hidden: no_log)\n",
        ),
        (
            "    - name: credentials\n      file: { path: /etc/app, content: \"{{ secret }}\", owner: \"{{ secret }}\" }\n      no_log: true\n",
            "error: play `app`, host app1: task `credentials`: `owner` is invalid (details hidden: no_log)\n",
        ),
        (
            "    - sudoers: { name: app, user: deploy, commands: [\"{{ secret }}\"] }\n      no_log: true\n",
            "error: play `app`, host app1: task `sudoers`: `commands` is invalid (details hidden: no_log)\n",
        ),
        (
            "    - file: { path: /etc/app, content: \"{{ secret }} {{ secret | nosuchfilter }}\" }\n      no_log: true\n",
            "error: play `app`, host app1: task `file`: `content` has a template error (details hidden: no_log)\n",
        ),
        (
            "    - file: { path: /etc/app, content: x }\n      when: \"'{{ secret }}' is nosuchtest\"\n      no_log: true\n",
            "error: play `app`, host app1: template error in the `when` of task `file` (details hidden: no_log)\n",
        ),
    ] {
        let playbook = fleet.dir().join("input.yml");
        std::fs::write(&playbook, format!("- hosts: app\n  tasks:\n{tasks}")).unwrap();
        let output = fleet.converge(&[
            playbook.to_str().unwrap(),
            "-i",
            inventory,
            "-e",
            &extra,
            "--check",
            "-vv",
        ]);
        assert_eq!(output.status.code(), Some(3), "{}", text(&output));
        assert!(!text(&output).contains(SECRET), "the secret leaked:\n{}", text(&output));
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            expected.replace("app1", &fleet.hosts()[0].name),
            "{tasks}"
        );
    }
    // A `no_log` play's variables: the template error names the variable only.
    let playbook = fleet.dir().join("play.yml");
    std::fs::write(
        &playbook,
        format!("- hosts: app\n  no_log: true\n  vars:\n    dsn: \"{SECRET}{{{{ secret ~ }}}}\"\n  tasks: []\n"),
    )
    .unwrap();
    let output = fleet.converge(&[playbook.to_str().unwrap(), "-i", inventory, "-e", &extra]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: play `app`, host {}: template error in play variable `dsn` (details hidden: no_log)\n",
            fleet.hosts()[0].name
        )
    );
}

/// A file a `no_log` task writes is never shown as the "before" side of a later task's
/// diff: not in check mode (where the content is predicted), not after the write (where
/// it is read from the host), not on a later run.
#[test]
fn no_log_content_is_not_the_before_side_of_a_later_diff() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let report = fleet.dir().join("report.json");
    let playbook = fleet.dir().join("later.yml");
    std::fs::write(
        &playbook,
        format!(
            "- hosts: app
  tasks:
    - name: credentials
      file: {{ path: /etc/app-credentials, content: \"password={SECRET}\\n\", mode: \"0600\" }}
      no_log: true
    - name: placeholder
      file: {{ path: /etc/app-credentials, content: \"password=CHANGEME\\n\", mode: \"0600\" }}
"
        ),
    )
    .unwrap();
    for args in [&["--check"][..], &[], &[]] {
        let mut all = vec![
            playbook.to_str().unwrap(),
            "-i",
            inventory,
            "--diff",
            "-vv",
            "--report",
            report.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let output = fleet.converge(&all);
        let expected = if args.is_empty() { 0 } else { 2 };
        assert_eq!(output.status.code(), Some(expected), "{}", text(&output));
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
            everything
                .contains("diff of /etc/app-credentials hidden: a no_log task manages this file"),
            "{everything}"
        );
    }
    assert_eq!(host.ssh_ok("cat /etc/app-credentials"), "password=CHANGEME");
}
