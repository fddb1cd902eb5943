//! Bytes from a host reach the operator's terminal with control characters escaped, and
//! the JSON report exactly: a hostile file shown by `--diff`, and a failing command's
//! error output, on a real host.

mod fleet;
mod support;

use fleet::Fleet;
use support::{inventory, text};

#[test]
fn host_bytes_are_escaped_on_the_terminal_and_exact_in_the_report() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    // Set the window title, clear the screen, return to the line's start, ring the bell.
    host.ssh_ok(r"printf 'motd \033]0;owned\007\033[2J\rhidden\n' > /etc/motd-hostile");
    let report = fleet.dir().join("report.json");
    let playbook = fleet.dir().join("terminal.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - file: { path: /etc/motd-hostile, content: \"motd\\n\" }\n    - command: { cmd: \"printf 'bad \\\\033[31mred\\\\007\\\\rend' >&2; exit 1\" }\n",
    )
    .unwrap();
    let output = fleet.converge(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory,
        "--check",
        "--diff",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains(['\x1b', '\x07', '\r']),
        "raw control characters on the terminal:\n{stdout:?}"
    );
    assert!(
        // The diff treats the CR as a line end of its own; it is shown, escaped.
        stdout.contains("    -motd \\x1b]0;owned\\x07\\x1b[2J\\r-hidden\n"),
        "{stdout}"
    );
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        document["plays"][0]["hosts"][0]["tasks"][0]["diffs"][0]["before"],
        "motd \x1b]0;owned\x07\x1b[2J\rhidden\n"
    );

    // Without --check the command runs and fails: its error output is escaped too.
    let output = fleet.converge(&[
        playbook.to_str().unwrap(),
        "-i",
        inventory,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains(['\x1b', '\x07', '\r']), "{stdout:?}");
    assert!(stdout.contains("bad \\x1b[31mred\\x07\\rend"), "{stdout}");
    let document = std::fs::read_to_string(&report).unwrap();
    assert!(
        document.contains(r"bad \u001b[31mred\u0007\rend"),
        "{document}"
    );
}
