//! Invalid input exits 3 with a message naming file, line, column and the fix, before
//! any host is contacted (these tests use an unroutable inventory to prove it).

mod fleet;
mod support;

use support::Converge;

use std::fmt::Write as _;
use std::process::Output;
use std::time::Duration;

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
    let output = Converge::new().dir(dir.path()).run(&["site.yml"]);
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
    let output = Converge::new()
        .dir(dir.path())
        .run(&["site.yml", "--check"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: site.yml:5:9: unknown key `contnet`\n  help: allowed keys here: name, content, src, template, scope, user, enabled, state, settle, probe, journal_lines\n"
    );
}

#[test]
fn undefined_variable_is_named_with_its_task() {
    let dir = scratch("- hosts: app\n  tasks:\n    - name: app dir\n      directory: { path: \"{{ app_rooot }}/current\" }\n");
    let output = Converge::new().dir(dir.path()).run(&["site.yml"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: play `app`, host app1: undefined variable `app_rooot` in task `app dir`\n"
    );
}

#[test]
fn invalid_parameters_exit_3() {
    let dir = scratch("- hosts: app\n  tasks:\n    - sudoers: { name: sidekiq.conf, user: deploy, commands: [/bin/true] }\n");
    let output = Converge::new().dir(dir.path()).run(&["site.yml"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("invalid sudoers file name \"sidekiq.conf\": sudo ignores files in /etc/sudoers.d whose name contains '.'"), "{}", stderr(&output));
}

#[test]
fn bad_command_line_exits_3() {
    let dir = scratch("- hosts: app\n  tasks: []\n");
    assert_eq!(
        Converge::new()
            .dir(dir.path())
            .run(&["site.yml", "--forks", "0"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        Converge::new()
            .dir(dir.path())
            .run(&["site.yml", "--nope"])
            .status
            .code(),
        Some(3)
    );
    assert_eq!(
        Converge::new()
            .dir(dir.path())
            .run(&["--help"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn listing_and_syntax_check_contact_no_host() {
    let dir = scratch("- name: sidekiq\n  hosts: app\n  tasks:\n    - name: deploy user\n      user: { name: deploy }\n      tags: [users]\n");
    let output = Converge::new()
        .dir(dir.path())
        .run(&["site.yml", "--list-hosts", "--list-tasks"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "play #1 (app): sidekiq\n  hosts (1):\n    app1\n  tasks:\n    deploy user  tags: [users]\n"
    );
    let output = Converge::new()
        .dir(dir.path())
        .run(&["site.yml", "--syntax-check"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn missing_playbook_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let output = Converge::new().dir(dir.path()).run(&["nope.yml"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).starts_with("error: cannot read playbook nope.yml: "));
}

#[test]
fn deeply_nested_yaml_is_refused_where_it_goes_too_deep() {
    let depth = 100_000;
    let dir = scratch(&format!(
        "- hosts: app\n  vars: {{ deep: {}{} }}\n  tasks: []\n",
        "[".repeat(depth),
        "]".repeat(depth)
    ));
    let output = Converge::new()
        .dir(dir.path())
        .bounded(Duration::from_secs(120))
        .run(&["site.yml", "--syntax-check"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: site.yml:2:144: collections nested more than 128 levels deep\n  help: converge reads YAML nested at most 128 levels deep; flatten the structure\n"
    );
}

#[test]
fn deeply_nested_inventory_is_refused_where_it_goes_too_deep() {
    let depth = 100_000;
    let dir = scratch("- hosts: app\n  tasks: []\n");
    std::fs::create_dir(dir.path().join("host_vars")).unwrap();
    std::fs::write(
        dir.path().join("host_vars/app1.yml"),
        format!("deep: {}{}\n", "{a: ".repeat(depth), "}".repeat(depth)),
    )
    .unwrap();
    let output = Converge::new()
        .dir(dir.path())
        .bounded(Duration::from_secs(120))
        .run(&["site.yml", "--syntax-check"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: ./host_vars/app1.yml:1:519: collections nested more than 128 levels deep\n"
    );
}

#[test]
fn nested_range_loops_are_refused() {
    let dir = scratch(
        "- hosts: app\n  tasks:\n    - file:\n        path: /tmp/x\n        content: \"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\"\n",
    );
    let output = Converge::new()
        .dir(dir.path())
        .bounded(Duration::from_secs(120))
        .run(&["site.yml", "--check"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: play `app`, host app1: template error in task `file /tmp/x`: the template does more than 1000000 steps of work (nested loops over large ranges?); converge stops templates there\n"
    );
}

#[test]
fn runaway_template_recursion_is_refused() {
    let dir = scratch(
        "- hosts: app\n  tasks:\n    - file:\n        path: /tmp/x\n        content: \"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}\"\n",
    );
    let output = Converge::new()
        .dir(dir.path())
        .bounded(Duration::from_secs(120))
        .run(&["site.yml", "--check"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: play `app`, host app1: template error in task `file /tmp/x`: invalid operation: recursion limit exceeded\n"
    );
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("- hosts: app\n  vars:\n    l0: &l0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let items = vec![format!("*l{}", level - 1); 9].join(", ");
        let _ = writeln!(text, "    l{level}: &l{level} [{items}]");
    }
    text.push_str("  tasks: []\n");
    let dir = scratch(&text);
    let output = Converge::new()
        .dir(dir.path())
        .bounded(Duration::from_secs(120))
        .run(&["site.yml", "--syntax-check"]);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        "error: site.yml: repetition limit exceeded\n"
    );
}
