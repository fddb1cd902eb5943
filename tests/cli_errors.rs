//! Invalid input exits 3 with a message naming file, line, column and the fix, before
//! any host is contacted (these tests use an unroutable inventory to prove it).

use std::path::Path;
use std::process::{Command, Output};

fn converge(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_converge"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn scratch(playbook: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), playbook).unwrap();
    // Port 1 on loopback: nothing listens, so contacting it would be an unreachable
    // host (exit 1), not exit 3.
    std::fs::write(
        dir.path().join("inventory.yml"),
        "all:\n  children:\n    app:\n      hosts:\n        app1: { host: 127.0.0.1, port: 1 }\n",
    )
    .unwrap();
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let dir = scratch("- hosts: app\n  tasks:\n    - name: x\n      file: { path: /x\n");
    let output = converge(dir.path(), &["site.yml"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.starts_with("error: site.yml:5:1: invalid YAML: "),
        "{message}"
    );
    assert!(
        message.contains("help: check the indentation and quoting"),
        "{message}"
    );
}

#[test]
fn unknown_key_names_position_and_allowed_keys() {
    let dir = scratch("- hosts: app\n  tasks:\n    - systemd_unit:\n        name: sidekiq.service\n        contnet: x\n");
    let output = converge(dir.path(), &["site.yml", "--check"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: site.yml:5:9: unknown key `contnet`\n  help: allowed keys here: name, content, src, template, scope, user, enabled, state\n"
    );
}

#[test]
fn undefined_variable_is_named_with_its_task() {
    let dir = scratch("- hosts: app\n  tasks:\n    - name: app dir\n      directory: { path: \"{{ app_rooot }}/current\" }\n");
    let output = converge(dir.path(), &["site.yml"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: play `app`, host app1: undefined variable `app_rooot` in task `app dir`\n"
    );
}

#[test]
fn invalid_parameters_exit_3() {
    let dir = scratch("- hosts: app\n  tasks:\n    - sudoers: { name: sidekiq.conf, user: deploy, commands: [/bin/true] }\n");
    let output = converge(dir.path(), &["site.yml"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("invalid sudoers file name \"sidekiq.conf\": sudo ignores files in /etc/sudoers.d whose name contains '.'"), "{}", stderr(&output));
}

#[test]
fn bad_command_line_exits_3() {
    let dir = scratch("- hosts: app\n  tasks: []\n");
    assert_eq!(
        converge(dir.path(), &["site.yml", "--forks", "0"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        converge(dir.path(), &["site.yml", "--nope"]).status.code(),
        Some(3)
    );
    assert_eq!(converge(dir.path(), &["--help"]).status.code(), Some(0));
}

#[test]
fn listing_and_syntax_check_contact_no_host() {
    let dir = scratch("- name: sidekiq\n  hosts: app\n  tasks:\n    - name: deploy user\n      user: { name: deploy }\n      tags: [users]\n");
    let output = converge(dir.path(), &["site.yml", "--list-hosts", "--list-tasks"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "play #1 (app): sidekiq\n  hosts (1):\n    app1\n  tasks:\n    deploy user  tags: [users]\n"
    );
    let output = converge(dir.path(), &["site.yml", "--syntax-check"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn missing_playbook_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let output = converge(dir.path(), &["nope.yml"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).starts_with("error: cannot read playbook nope.yml: "));
}
