//! No injection, proven on a real host: well over a hundred hostile strings (quotes,
//! `$()`, backticks, newlines, `;`, leading dashes, globs, template braces, non-ASCII
//! UTF-8, control characters, long strings) travel through converge and arrive byte
//! for byte, as a command's argument through the remote shell, as file content, and as
//! file names in paths.
//!
//! The strings come from inventory variables, where someone other than the playbook's
//! author may write, so this also proves that such a value is data: it is not rendered
//! as a template (play variables, written by the author, are). The set is
//! generated from a fixed seed, so every run sends the same strings and a failure can
//! be reproduced.

mod fleet;
mod support;

use std::fmt::Write as _;

use fleet::{Fleet, TestHost};
use support::{text, Converge};

/// Pieces that mean something to a shell, to printf, to YAML or to a template, and some
/// that are merely unusual bytes.
const PIECES: &[&str] = &[
    "'",
    "\"",
    "\\",
    "$",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "${HOME}",
    "$HOME",
    "$1",
    "$@",
    "\n",
    "\r",
    "\t",
    " ",
    ";",
    "&&",
    "|",
    ">",
    "<",
    "*",
    "?",
    "[a-z]",
    "~",
    "#",
    "!",
    "-",
    "--",
    "-n",
    "-e",
    "%s",
    "%n",
    "%",
    "{",
    "}",
    "(",
    ")",
    "=",
    ",",
    ":",
    "é",
    "日本語",
    "🦀",
    "\u{202e}",
    "\u{200d}",
    "\u{85}",
    "\u{2028}",
    "\u{a0}",
    "\u{7f}",
    "\u{1b}[31m",
    "\u{1}",
    "a",
    "Z",
    "0",
    "touch /tmp/pwned",
    "{{",
    "}}",
    "{{ 7 * 7 }}",
    "{%",
    "%}",
    "{#",
    "\\n",
    "'\\''",
    "\"'\"'\"",
    "..",
    ".",
    "/",
];

/// Values picked by hand: the classics, before the generated ones.
const CLASSICS: &[&str] = &[
    "",
    " ",
    "'",
    "''",
    "\"",
    "\\",
    "\\\\",
    "-n",
    "-e",
    "--",
    "--help",
    "-",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "; touch /tmp/pwned",
    "x' ; touch /tmp/pwned ; '",
    "x\" ; touch /tmp/pwned ; \"",
    "a\nb",
    "\n",
    "trailing newline\n",
    "\r\n",
    "*",
    "~root",
    "$HOME",
    "{{ 7 * 7 }}",
    "{% raw %}x{% endraw %}",
    "%s%s%s%n",
    "日本語のテキスト",
    "🦀 ferris",
    "\u{202e}txt.exe",
];

/// `SplitMix64`: a tiny, well-known generator; the fixed seed makes the set stable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound as u64).unwrap()
    }
}

/// One generated value: a few pieces, sometimes with stray ASCII bytes between them.
fn generated(rng: &mut Rng) -> String {
    let mut value = String::new();
    for _ in 0..=rng.below(8) {
        if rng.below(4) == 0 {
            // Any ASCII byte but NUL, which no argument or C string can hold.
            value.push(char::from(u8::try_from(1 + rng.below(127)).unwrap()));
        } else {
            value.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    value
}

/// Long values: a few kilobytes of pieces, up to 16 KiB.
fn long(rng: &mut Rng, bytes: usize) -> String {
    let mut value = String::new();
    while value.len() < bytes {
        value.push_str(PIECES[rng.below(PIECES.len())]);
    }
    value
}

fn values() -> Vec<String> {
    let mut rng = Rng(0x00c0_ffee_5eed);
    let mut values: Vec<String> = CLASSICS.iter().map(|v| (*v).to_owned()).collect();
    values.extend((0..110).map(|_| generated(&mut rng)));
    values.extend([1024, 4096, 16 * 1024].map(|bytes| long(&mut rng, bytes)));
    values
}

/// A YAML double-quoted scalar holding exactly `value`: everything but printable ASCII
/// is escaped, so no line break or special character is folded or lost on the way.
fn yaml(value: &str) -> String {
    let mut quoted = String::from("\"");
    for ch in value.chars() {
        match ch {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            ' '..='~' => quoted.push(ch),
            ch if u32::from(ch) <= 0xffff => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(ch));
            }
            ch => {
                let _ = write!(quoted, "\\U{:08x}", u32::from(ch));
            }
        }
    }
    quoted.push('"');
    quoted
}

/// Whether `value` can be a file name in a path converge accepts.
fn file_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 200
        && value != "."
        && value != ".."
        && !value.contains(['/', '\n', '\r'])
}

/// Values per `command` task: each is one argument of one remote command line.
const PER_COMMAND: usize = 16;

/// The playbook: for value `vN`, a file whose content is the value, a file named after
/// the value (when it can be a file name), and an argument of a command that writes
/// each of its arguments through `sh` to `/tmp/inj/cmd-N`. The files come first, so
/// that their facts are read in one go before the commands (which make every fact
/// stale) run.
fn playbook(values: &[String]) -> String {
    let mut yaml_text = String::from("- hosts: app\n");
    yaml_text.push_str(
        "  tasks:\n    - directory: { path: /tmp/inj }\n    - directory: { path: /tmp/inj-names }\n",
    );
    for (index, value) in values.iter().enumerate() {
        let _ = writeln!(
            yaml_text,
            "    - file: {{ path: /tmp/inj/file-{index}, content: \"{{{{ v{index} }}}}\", mode: \"0600\" }}"
        );
        if file_name(value) {
            let _ = writeln!(
                yaml_text,
                "    - file: {{ path: \"/tmp/inj-names/{{{{ v{index} }}}}\", content: \"{index}\" }}"
            );
        }
    }
    for start in (0..values.len()).step_by(PER_COMMAND) {
        let _ = write!(
            yaml_text,
            "    - command: {{ cmd: [sh, -c, 'i=$1; shift; for v in \"$@\"; do printf %s \"$v\" > \"/tmp/inj/cmd-$i\"; i=$((i + 1)); done', sh, \"{start}\""
        );
        for index in start..values.len().min(start + PER_COMMAND) {
            let _ = write!(yaml_text, ", \"{{{{ v{index} }}}}\"");
        }
        yaml_text.push_str("] }\n");
    }
    yaml_text
}

/// The files `prefix-0` .. `prefix-(count-1)` in /tmp/inj, each followed by a NUL.
fn fetch(host: &TestHost, prefix: &str, count: usize) -> Vec<Vec<u8>> {
    let output = host.ssh(&format!(
        "i=0; while [ $i -lt {count} ]; do cat /tmp/inj/{prefix}-$i || exit 1; printf '\\0'; i=$((i + 1)); done"
    ));
    assert!(output.status.success(), "{}", text(&output));
    let mut files: Vec<Vec<u8>> = output
        .stdout
        .split(|&b| b == 0)
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(files.pop(), Some(Vec::new()), "output ends with a NUL");
    files
}

/// An inventory with the fleet's host in group `app`, and value N as variable `vN`.
fn inventory(fleet: &Fleet, values: &[String]) -> std::path::PathBuf {
    let host = &fleet.hosts()[0];
    let mut yaml_text = String::from("all:\n  vars:\n");
    for (index, value) in values.iter().enumerate() {
        let _ = writeln!(yaml_text, "    v{index}: {}", yaml(value));
    }
    let _ = write!(
        yaml_text,
        "  children:\n    app:\n      hosts:\n        {}: {{ host: 127.0.0.1, port: {}, user: root, identity_file: {} }}\n",
        host.name,
        host.port,
        yaml(&fleet.home().join(".ssh/id_ed25519").to_string_lossy())
    );
    let path = fleet.dir().join("inventory.yml");
    std::fs::write(&path, yaml_text).unwrap();
    path
}

#[test]
fn hostile_strings_arrive_unchanged() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let values = values();
    assert!(values.len() >= 100);
    let inventory = inventory(&fleet, &values);
    let playbook_path = fleet.dir().join("injection.yml");
    std::fs::write(&playbook_path, playbook(&values)).unwrap();

    let output = Converge::on(&fleet).dir(fleet.dir()).run(&[
        playbook_path.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    let mut wrong = Vec::new();
    for (kind, files) in [
        ("command argument", fetch(host, "cmd", values.len())),
        ("file content", fetch(host, "file", values.len())),
    ] {
        assert_eq!(files.len(), values.len());
        for (index, (value, arrived)) in values.iter().zip(&files).enumerate() {
            if value.as_bytes() != arrived.as_slice() {
                wrong.push(format!(
                    "{kind} v{index}: sent {value:?}, arrived {:?}",
                    String::from_utf8_lossy(arrived)
                ));
            }
        }
    }

    // File names: every eligible value names exactly one file, holding its index.
    let output = host.ssh(
        "cd /tmp/inj-names && for f in * .[!.]* ..?*; do [ -e \"$f\" ] || continue; printf '%s\\0' \"$f\"; cat \"./$f\"; printf '\\0'; done",
    );
    assert!(output.status.success(), "{}", text(&output));
    let mut fields = output.stdout.split(|&b| b == 0);
    let mut arrived = std::collections::BTreeMap::new();
    while let (Some(name), Some(content)) = (fields.next(), fields.next()) {
        arrived.insert(
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(content).into_owned(),
        );
    }
    let expected: std::collections::BTreeMap<String, String> = values
        .iter()
        .enumerate()
        .filter(|(_, value)| file_name(value))
        .map(|(index, value)| (value.clone(), index.to_string()))
        .collect();
    assert!(expected.len() >= 50, "only {} file names", expected.len());
    for (name, index) in &expected {
        match arrived.get(name) {
            Some(content) if content == index => {}
            other => wrong.push(format!("file name v{index} {name:?}: found {other:?}")),
        }
    }
    for name in arrived.keys().filter(|name| !expected.contains_key(*name)) {
        wrong.push(format!("unexpected file {name:?} in /tmp/inj-names"));
    }

    assert!(
        wrong.is_empty(),
        "{} values did not arrive unchanged:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        !host
            .ssh("test -e /tmp/pwned || test -e ~/pwned")
            .status
            .success(),
        "a value was run as a command"
    );
    assert_eq!(
        host.ssh_ok("stat -c %a /tmp/inj/file-0"),
        "600",
        "mode of a written file"
    );
}
