//! Malformed and hostile input, one table, one real host: every case is refused with the
//! error class it belongs to, and the host is left exactly as it was.
//!
//! - Input errors (exit 3) are found before anything is contacted: the host's sshd must
//!   not have seen a single new connection, although every inventory points at it and
//!   every playbook's first task would change it.
//! - Errors only the host can detect (exit 1: visudo rejecting a sudoers file, a group
//!   that does not exist) fail the task and change nothing either.
//!
//! After each case the host's state is fingerprinted again (files changed since the
//! suite began, the listings and hashes of the files converge manages) and compared
//! with the fingerprint before it. Huge files are not refused: they are written
//! exactly, which the last part checks.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use fleet::{Fleet, TestHost};
use support::{text, Converge};

/// How a case must end.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Exit 3 with this on stderr, and no connection to the host.
    Input(&'static str),
    /// Exit 1 with this in the report on stdout: the host refused it.
    Host(&'static str),
}

/// Where a case's inventory comes from.
enum Inventory {
    /// `inventory.yml` listing the test host in group `app`.
    Host,
    /// This YAML, written as `inventory.yml` (`PORT` and `KEY` replaced).
    Yaml(&'static str),
    /// This INI, written as `inventory` (`PORT` and `KEY` replaced).
    Ini(&'static str),
}

struct Case {
    name: &'static str,
    playbook: Vec<u8>,
    inventory: Inventory,
    /// Files beside the playbook.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Arguments after the playbook.
    args: Vec<&'static str>,
    expect: Expect,
}

/// The first task of most playbooks: it would change the host, so a case that ran
/// anything at all would show in the fingerprint.
const CANARY: &str = "    - directory: { path: /opt/bad-input-canary }\n";

/// A play on `app` whose tasks are the canary, then `tasks` (YAML list items).
fn play(tasks: &str) -> Vec<u8> {
    format!("- hosts: app\n  tasks:\n{CANARY}{tasks}").into_bytes()
}

/// A playbook given whole.
fn raw(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn case(name: &'static str, playbook: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        playbook,
        inventory: Inventory::Host,
        files: Vec::new(),
        args: Vec::new(),
        expect,
    }
}

impl Case {
    fn with_inventory(mut self, inventory: Inventory) -> Case {
        self.inventory = inventory;
        self
    }

    fn with_file(mut self, name: &'static str, content: &[u8]) -> Case {
        self.files.push((name, content.to_vec()));
        self
    }

    fn with_args(mut self, args: &[&'static str]) -> Case {
        self.args = args.to_vec();
        self
    }
}

/// A YAML value nested `depth` lists deep.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Nine levels of aliases, each nine times the one before: 387 million strings if
/// expanded.
fn alias_bomb() -> Vec<u8> {
    let mut text = String::from("- hosts: app\n  vars:\n    l0: &l0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let previous = format!("*l{}", level - 1);
        let items = [previous.as_str(); 9].join(", ");
        let _ = writeln!(text, "    l{level}: &l{level} [{items}]");
    }
    text.push_str("  tasks:\n");
    text.push_str(CANARY);
    text.into_bytes()
}

#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    use Expect::{Host, Input};
    let sudoers = |entry: &str| {
        play(&format!(
            "    - sudoers: {{ name: app, user: deploy, commands: [{entry:?}] }}\n"
        ))
    };
    vec![
        // YAML and structure.
        case(
            "unclosed flow mapping",
            play("    - file: { path: /tmp/x\n"),
            Input("site.yml:5:1: invalid YAML: "),
        ),
        case(
            "tab indentation",
            raw("- hosts: app\n\ttasks: []\n"),
            Input("site.yml:2:1: found a tab character that violates indentation"),
        ),
        case(
            "duplicate key",
            play("    - file: { path: /tmp/a, path: /tmp/b, content: x }\n"),
            Input("site.yml:4:13: key `path` is given twice"),
        ),
        case(
            "a map instead of a list of plays",
            raw("hosts: app\ntasks: []\n"),
            Input("site.yml:1:1: invalid type: map, expected a sequence"),
        ),
        case(
            "play without hosts",
            raw("- tasks:\n    - directory: { path: /opt/bad-input-canary }\n"),
            Input("site.yml:1:3: missing required key `hosts`"),
        ),
        case(
            "tasks as a map",
            raw("- hosts: app\n  tasks: { directory: { path: /opt/bad-input-canary } }\n"),
            Input("site.yml:2:10: invalid type: map, expected a sequence"),
        ),
        case(
            "unknown play key",
            raw("- hosts: app\n  taks: []\n"),
            Input("site.yml:2:3: unknown key `taks`"),
        ),
        case(
            "unknown module",
            play("    - synchronize: { src: a, dest: /tmp/b }\n"),
            Input("site.yml:4:7: unknown key `synchronize`"),
        ),
        case(
            "two modules in one task",
            play("    - file: { path: /tmp/a, content: x }\n      directory: { path: /tmp/b }\n"),
            Input("site.yml:4:7: a task has exactly one module, but this one has `file` and `directory`"),
        ),
        case(
            "a task without a module",
            play("    - name: nothing\n"),
            Input("site.yml:4:7: this task has no module"),
        ),
        case(
            "unknown module parameter",
            play("    - systemd_unit: { name: app.service, contnet: x }\n"),
            Input("site.yml:4:42: unknown key `contnet`"),
        ),
        case(
            "yes is not a boolean",
            raw("- hosts: app\n  become: yes\n  tasks:\n    - directory: { path: /opt/bad-input-canary }\n"),
            Input("site.yml:2:11: invalid type: string \"yes\", expected a boolean"),
        ),
        case(
            "negative serial",
            raw("- hosts: app\n  serial: -1\n  tasks:\n    - directory: { path: /opt/bad-input-canary }\n"),
            Input("site.yml:2:11: invalid type: integer `-1`"),
        ),
        case(
            "serial zero",
            raw("- hosts: app\n  serial: 0\n  tasks:\n    - directory: { path: /opt/bad-input-canary }\n"),
            Input("play `app`: serial must be at least 1"),
        ),
        case(
            "unknown state",
            play("    - directory: { path: /tmp/d, state: gone }\n"),
            Input("unknown variant `gone`, expected `present` or `absent`"),
        ),
        case(
            "alias expansion bomb",
            alias_bomb(),
            Input("site.yml: repetition limit exceeded"),
        ),
        case(
            "nesting 5000 deep",
            raw(&format!("- hosts: app\n  vars: {{ deep: {} }}\n  tasks: []\n", nested(5000))),
            Input("site.yml:2:144: collections nested more than 128 levels deep"),
        ),
        case(
            "playbook that is not UTF-8",
            [play(""), b"    - file: { path: /tmp/x, content: \"a\xffb\" }\n".to_vec()].concat(),
            Input("cannot read playbook site.yml: stream did not contain valid UTF-8"),
        ),
        case(
            "notify without such a handler",
            play("    - file: { path: /tmp/x, content: x }\n      notify: nobody\n"),
            Input("notifies `nobody`, but play `app` has no handler of that name"),
        ),
        // Templates.
        case(
            "undefined variable",
            play("    - name: app dir\n      directory: { path: \"{{ app_rooot }}/current\" }\n"),
            Input("undefined variable `app_rooot` in task `app dir`"),
        ),
        case(
            "template syntax error",
            play("    - file: { path: /tmp/x, content: \"{{ unclosed\" }\n"),
            Input("template error in task `file /tmp/x`: syntax error: unexpected end of input"),
        ),
        case(
            "undefined variable in when",
            play("    - file: { path: /tmp/x, content: x }\n      when: \"{{ nope }}\"\n"),
            Input("undefined variable `nope` in the `when` of task `file /tmp/x`"),
        ),
        case(
            "missing template file",
            play("    - file: { path: /tmp/x, template: missing.j2 }\n"),
            Input("cannot read template file missing.j2: not found"),
        ),
        case(
            "undefined variable in a template file",
            play("    - file: { path: /tmp/x, template: app.j2 }\n"),
            Input("undefined variable `worker_count`"),
        )
        .with_file("app.j2", b"workers={{ worker_count }}\n"),
        case(
            "nested loops over large ranges",
            play("    - file: { path: /tmp/x, content: \"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\" }\n"),
            Input("template error in task `file /tmp/x`: the template does more than 1000000 steps of work (nested loops over large ranges?); converge stops templates there"),
        ),
        case(
            "an invalid name in a no_log task",
            play("    - user: { name: \"hunter2 s3cret\" }\n      no_log: true\n"),
            Input("task `user`: `name` is invalid (details hidden: no_log)"),
        ),
        case(
            "a range of a hundred million",
            play("    - file: { path: /tmp/x, content: \"{{ range(100000000) | length }}\" }\n"),
            Input("range has too many elements"),
        ),
        // Modes.
        case(
            "mode as a decimal number",
            play("    - file: { path: /tmp/x, content: x, mode: 644 }\n"),
            Input("mode 644 is a number; write it as a quoted octal string, e.g. mode: \"0644\""),
        ),
        case(
            "mode with a digit 8",
            play("    - file: { path: /tmp/x, content: x, mode: \"0888\" }\n"),
            Input("invalid mode \"0888\": write 3 or 4 octal digits"),
        ),
        case(
            "mode of five digits",
            play("    - file: { path: /tmp/x, content: x, mode: \"77777\" }\n"),
            Input("invalid mode \"77777\": write 3 or 4 octal digits"),
        ),
        case(
            "symbolic mode",
            play("    - directory: { path: /tmp/d, mode: \"u+rwx\" }\n"),
            Input("invalid mode \"u+rwx\": write 3 or 4 octal digits"),
        ),
        // Account names.
        case(
            "user name with a dot",
            play("    - user: { name: de.ploy }\n"),
            Input("invalid user name \"de.ploy\": use a lowercase letter or _ first"),
        ),
        case(
            "user name with a tilde",
            play("    - user: { name: \"~deploy\" }\n"),
            Input("invalid user name \"~deploy\""),
        ),
        case(
            "user name with a slash",
            play("    - user: { name: \"deploy/../root\" }\n"),
            Input("invalid user name \"deploy/../root\""),
        ),
        case(
            "user name with a space and a semicolon",
            play("    - user: { name: \"x; touch /tmp/pwned\" }\n"),
            Input("invalid user name \"x; touch /tmp/pwned\""),
        ),
        case(
            "user name with a newline",
            play("    - user: { name: \"deploy\\nroot\" }\n"),
            Input("invalid user name \"deploy\\nroot\""),
        ),
        case(
            "group name with a semicolon",
            play("    - group: { name: \"sudo;id\" }\n"),
            Input("invalid group name \"sudo;id\""),
        ),
        case(
            "owner and group in one",
            play("    - file: { path: /tmp/x, content: x, owner: \"root:root\" }\n"),
            Input("invalid user name \"root:root\""),
        ),
        case(
            "home with a colon",
            play("    - user: { name: deploy, home: \"/home/deploy:/bin/sh\" }\n"),
            Input("invalid path \"/home/deploy:/bin/sh\": it contains ':', which separates the fields of /etc/passwd"),
        ),
        case(
            "linger for an upper-case user",
            play("    - linger: { user: Root }\n"),
            Input("invalid user name \"Root\""),
        ),
        // Unit names.
        case(
            "unit name climbing out of /etc/systemd/system",
            play("    - systemd_unit: { name: \"../../passwd.service\", content: x }\n"),
            Input("invalid unit name \"../../passwd.service\": use only ASCII letters, digits and : - _ . \\ @"),
        ),
        case(
            "unit name with a slash",
            play("    - systemd_unit: { name: \"a/b.service\", content: x }\n"),
            Input("invalid unit name \"a/b.service\""),
        ),
        case(
            "unit name like an option",
            play("    - service: { name: \"-H.service\", state: restarted }\n"),
            Input("invalid unit name \"-H.service\""),
        ),
        case(
            "unit name that is only an instance",
            play("    - systemd_unit: { name: \"@.service\", content: x }\n"),
            Input("invalid unit name \"@.service\": it needs a name before the @"),
        ),
        case(
            "unit name with non-ASCII letters",
            play("    - systemd_unit: { name: \"sidekíq.service\", content: x }\n"),
            Input("invalid unit name \"sidekíq.service\""),
        ),
        case(
            "unit name without a type",
            play("    - systemd_unit: { name: sidekiq, content: x }\n"),
            Input("invalid unit name \"sidekiq\": it needs a type suffix such as .service or .timer"),
        ),
        case(
            "service name with a command",
            play("    - service: { name: \"ssh; reboot\", state: restarted }\n"),
            Input("invalid unit name \"ssh; reboot.service\""),
        ),
        case(
            "service name with a newline",
            play("    - service: { name: \"ssh\\nreboot\", state: restarted }\n"),
            Input("invalid unit name \"ssh\\nreboot.service\""),
        ),
        case(
            "signal with a command",
            play("    - service: { name: ssh, signal: \"KILL; id\" }\n"),
            Input("invalid signal \"KILL; id\""),
        ),
        // sudoers.
        case(
            "sudoers file name with a dot",
            play("    - sudoers: { name: app.conf, user: deploy, commands: [/bin/true] }\n"),
            Input("invalid sudoers file name \"app.conf\": sudo ignores files in /etc/sudoers.d whose name contains '.'"),
        ),
        case(
            "sudoers file name ending in a tilde",
            play("    - sudoers: { name: \"app~\", content: \"\" }\n"),
            Input("invalid sudoers file name \"app~\": sudo ignores files in /etc/sudoers.d whose name ends in '~'"),
        ),
        case(
            "sudoers file name climbing out of /etc/sudoers.d",
            play("    - sudoers: { name: \"../sudoers\", content: \"\" }\n"),
            Input("invalid sudoers file name \"../sudoers\""),
        ),
        case(
            "sudoers file name with a space",
            play("    - sudoers: { name: \"app rules\", content: \"\" }\n"),
            Input("invalid sudoers file name \"app rules\": use only ASCII letters, digits, _ and -"),
        ),
        case(
            "sudoers command without a path",
            sudoers("systemctl restart app"),
            Input("`commands` entry \"systemctl restart app\" must be one line starting with an absolute path"),
        ),
        case(
            "sudoers command with a second line",
            sudoers("/bin/true\nALL ALL=(ALL) NOPASSWD: ALL"),
            Input("`commands` entry \"/bin/true\\nALL ALL=(ALL) NOPASSWD: ALL\" must be one line"),
        ),
        case(
            "sudoers command with a second command",
            sudoers("/bin/ls, /bin/sh"),
            Input("`commands` entry \"/bin/ls, /bin/sh\" has an unescaped `,`, which sudo reads as the start of another command"),
        ),
        case(
            "sudoers command with a second rule",
            sudoers("/bin/ls : ALL=(ALL) NOPASSWD: ALL"),
            Input("has an unescaped `:`, which sudo reads as the start of another rule"),
        ),
        case(
            "sudoers command cut short by a comment",
            sudoers("/bin/rm #/tmp/app.pid"),
            Input("has an unescaped `#`, which sudo reads as the start of a comment"),
        ),
        case(
            "sudoers command with a wildcard in its arguments",
            sudoers("/bin/cat /var/log/app/*"),
            Input("site.yml:4:7: task `sudoers app`: `commands` entry \"/bin/cat /var/log/app/*\" has a sudo wildcard (`*`) in its arguments, which matches more than it shows"),
        ),
        case(
            "sudoers command with a regular expression in its arguments",
            sudoers("/bin/cat ^/var/log/.*$"),
            Input("has a sudo regular expression (`^...$`) in its arguments"),
        ),
        case(
            "sudoers command that is a directory",
            sudoers("/usr/bin/"),
            Input("`commands` entry \"/usr/bin/\" names the directory /usr/bin/, which sudo reads as every program in it; name one program, e.g. /usr/bin/NAME"),
        ),
        case(
            "sudoers wildcard in the program, even with allow_wildcards",
            play("    - sudoers: { name: app, user: deploy, allow_wildcards: true, commands: [\"/usr/bin/* /etc/motd\"] }\n"),
            Input("has a sudo wildcard (`*`) in its program path, which would let the user run every program it matches"),
        ),
        case(
            "sudoers wildcard from an inventory variable",
            play("    - sudoers: { name: app, user: deploy, commands: [\"/bin/cat {{ log_dir }}/*\"] }\n"),
            Input("task `sudoers app`: `commands` entry \"/bin/cat /var/log/app/*\" has a sudo wildcard (`*`)"),
        )
        .with_args(&["-e", "log_dir=/var/log/app"]),
        case(
            "sudoers runas list",
            play("    - sudoers: { name: app, user: deploy, runas: \"root, ALL\", commands: [/bin/true] }\n"),
            Input("invalid user name \"root, ALL\""),
        ),
        case(
            "sudoers verb that is not one",
            play("    - sudoers: { name: app, user: deploy, units: [app.service], verbs: [reboot] }\n"),
            Input("`verbs` has \"reboot\"; allowed: start, stop, restart, reload, status, quiet"),
        ),
        case(
            "sudoers unit with a command",
            play("    - sudoers: { name: app, user: deploy, units: [\"app.service; id\"], verbs: [start] }\n"),
            Input("invalid unit name \"app.service; id\""),
        ),
        // Paths.
        case(
            "relative path",
            play("    - file: { path: tmp/x, content: x }\n"),
            Input("invalid path \"tmp/x\": it must be absolute (start with /)"),
        ),
        case(
            "path starting with a tilde",
            play("    - file: { path: \"~/x\", content: x }\n"),
            Input("invalid path \"~/x\": it must be absolute (start with /)"),
        ),
        case(
            "path climbing with ..",
            play("    - file: { path: /tmp/../etc/shadow, content: x }\n"),
            Input("invalid path \"/tmp/../etc/shadow\": it contains a .. component"),
        ),
        case(
            "the root directory",
            play("    - directory: { path: /, mode: \"0777\" }\n"),
            Input("invalid path \"/\": it is the root directory"),
        ),
        case(
            "file path naming a directory",
            play("    - file: { path: /etc/, content: x }\n"),
            Input("invalid path \"/etc/\": it ends in / or /., so it names a directory, not a file"),
        ),
        case(
            "path with a newline",
            play("    - directory: { path: \"/tmp/a\\n/etc\" }\n"),
            Input("invalid path \"/tmp/a\\n/etc\": it contains a NUL or newline character"),
        ),
        case(
            "relative creates",
            play("    - command: { cmd: \"touch /tmp/x\", creates: tmp/x }\n"),
            Input("invalid path \"tmp/x\": it must be absolute (start with /)"),
        ),
        case(
            "empty command",
            play("    - command: { cmd: [] }\n"),
            Input("`cmd` is empty"),
        ),
        // Content.
        case(
            "unit src that is not UTF-8",
            play("    - systemd_unit: { name: x.service, src: blob.bin }\n"),
            Input("cannot read src file blob.bin: it is not UTF-8 text (only file and copy take any bytes)"),
        )
        .with_file("blob.bin", b"\x7fELF\xff\xfe\x00\x01"),
        case(
            "copy src that is not a directory",
            play("    - copy: { src: blob.bin, dest: /srv/app }\n"),
            Input("cannot read src file blob.bin: not found"),
        )
        .with_file("blob.bin", b"x"),
        case(
            "copy without src",
            play("    - copy: { dest: /srv/app }\n"),
            Input("task `copy`: `src` is required: the directory beside the playbook to copy"),
        ),
        case(
            "copy with a tree written by hand",
            play("    - copy: { src: app, dest: /srv/app, tree: { directories: [], files: [] } }\n"),
            Input("`tree` is not a parameter: name the directory to copy in `src`"),
        ),
        case(
            "missing src",
            play("    - file: { path: /tmp/x, src: missing.txt }\n"),
            Input("cannot read src file missing.txt: not found"),
        ),
        case(
            "content and src",
            play("    - file: { path: /tmp/x, content: x, src: a.txt }\n"),
            Input("give only one of content, src and template (this task has content and src)"),
        )
        .with_file("a.txt", b"a\n"),
        // Inventories.
        case("port zero", play(""), Input("host bad1: invalid port 0: expected an integer from 1 to 65535"))
            .with_inventory(Inventory::Yaml(
                "all:\n  children:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: 0, identity_file: KEY }\n",
            )),
        case("port too large", play(""), Input("host bad1: invalid port 70000"))
            .with_inventory(Inventory::Yaml(
                "all:\n  children:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: 70000 }\n",
            )),
        case("port with letters", play(""), Input("host bad1: invalid port \"22a\""))
            .with_inventory(Inventory::Yaml(
                "all:\n  children:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: \"22a\" }\n",
            )),
        case("unknown connection", play(""), Input("host bad1: invalid connection \"telnet\": expected one of ssh, local"))
            .with_inventory(Inventory::Yaml(
                "all:\n  children:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: PORT, connection: telnet }\n",
            )),
        case("unknown host_key_checking", play(""), Input("host bad1: invalid host_key_checking \"maybe\": expected one of strict, accept-new, off"))
            .with_inventory(Inventory::Yaml(
                "all:\n  children:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: PORT, host_key_checking: maybe, identity_file: KEY }\n",
            )),
        case("host_key_checking as a boolean", play(""), Input("host bad1: invalid host_key_checking false"))
            .with_inventory(Inventory::Yaml(
                "all:\n  children:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: PORT, host_key_checking: false, identity_file: KEY }\n",
            )),
        case("inventory with a YAML error", play(""), Input("inventory.yml:6:1: did not find expected ',' or '}'"))
            .with_inventory(Inventory::Yaml(
                "all:\n  children:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: PORT\n",
            )),
        case("inventory with an unknown key", play(""), Input("inventory.yml:2:3: all: unknown field `chidren`"))
            .with_inventory(Inventory::Yaml(
                "all:\n  chidren:\n    app:\n      hosts:\n        bad1: { host: 127.0.0.1, port: PORT }\n",
            )),
        case("INI inventory with a broken section", play(""), Input("inventory:1: malformed section header `[app`"))
            .with_inventory(Inventory::Ini("[app\nbad1 ansible_host=127.0.0.1 ansible_port=PORT\n")),
        case("INI inventory with a bad port", play(""), Input("host bad1: invalid ansible_port \"abc\""))
            .with_inventory(Inventory::Ini("[app]\nbad1 ansible_host=127.0.0.1 ansible_port=abc\n")),
        case("INI host without key=value", play(""), Input("inventory:2: expected key=value after the host name, found `novalue`"))
            .with_inventory(Inventory::Ini("[app]\nbad1 ansible_host=127.0.0.1 novalue\n")),
        // The command line.
        case("-e without =", play(""), Input("-e \"app_root\": expected KEY=VALUE"))
            .with_args(&["-e", "app_root"]),
        case("-e without a key", play(""), Input("-e \"=/opt\": expected KEY=VALUE"))
            .with_args(&["-e", "=/opt"]),
        case("--forks 0", play(""), Input("invalid value '0' for '--forks <N>': 0 is not in 1..=65535"))
            .with_args(&["--forks", "0"]),
        case("unknown option", play(""), Input("unexpected argument '--nope'"))
            .with_args(&["--nope"]),
        case("--limit matching nothing", play(""), Input("no inventory host matches --limit `web*`"))
            .with_args(&["--limit", "web*"]),
        case("unknown output format", play(""), Input("invalid value 'xml' for '--format <FORMAT>'"))
            .with_args(&["--format", "xml"]),
        // What only the host can tell.
        case(
            "sudoers content with a syntax error",
            raw("- hosts: app\n  tasks:\n    - sudoers: { name: app, content: \"deploy ALL=(root NOPASSWD /bin/systemctl\\n\" }\n"),
            Host("visudo rejected the new content; /etc/sudoers.d/app was left unchanged"),
        ),
        case(
            "sudoers template with an unbalanced parenthesis",
            raw("- hosts: app\n  vars: { who: root }\n  tasks:\n    - sudoers: { name: app, template: app.sudoers.j2 }\n"),
            Host("visudo rejected the new content; /etc/sudoers.d/app was left unchanged"),
        )
        .with_file("app.sudoers.j2", b"{{ who }} ALL=(ALL NOPASSWD: ALL\n"),
        case(
            "owner that does not exist",
            raw("- hosts: app\n  tasks:\n    - file: { path: /tmp/x, content: x, owner: nosuchuser }\n"),
            Host("user nosuchuser does not exist"),
        ),
        case(
            "supplementary group that does not exist",
            raw("- hosts: app\n  tasks:\n    - user: { name: deploy, groups: [nosuchgroup] }\n"),
            Host("group nosuchgroup does not exist"),
        ),
        case(
            "service that does not exist",
            raw("- hosts: app\n  tasks:\n    - service: { name: nosuch, state: restarted }\n"),
            Host("unit nosuch.service does not exist on the host"),
        ),
        case(
            "file in a directory that does not exist",
            raw("- hosts: app\n  tasks:\n    - file: { path: /nonexistent/app.conf, content: x }\n"),
            Host("directory /nonexistent does not exist"),
        ),
        case(
            "file where a directory is",
            raw("- hosts: app\n  tasks:\n    - file: { path: /etc/sudoers.d, content: x }\n"),
            Host("/etc/sudoers.d is a directory; expected a regular file"),
        ),
    ]
}

/// Files converge could touch, and what must not change.
const FINGERPRINT: &str = r"
find /etc /home /opt /root /srv /tmp /usr/local /var/lib/systemd/linger /var/spool -xdev \
    -path '/tmp/systemd-private-*' -prune -o ! -type d -newer /run/bad-input.mark -print | sort
find /etc /etc/sudoers.d /etc/systemd/system /etc/default /home /opt /tmp /root /var/lib/systemd/linger \
    -mindepth 1 -maxdepth 1 -printf '%p %y %u %g %m\n' | sort
sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/sudoers /etc/sudoers.d/* /etc/systemd/system/*.service 2>&1
systemctl list-units --all --plain --no-legend --type=service | awk '{print $1, $3, $4}'
";

/// Every connection the host's sshd has logged, as the client ports, except this
/// session's own: it waits until its own login is in the journal, so every earlier
/// connection is too.
const CONNECTIONS: &str = r#"
own=${SSH_CLIENT#* }; own=${own%% *}
i=0
while ! journalctl -q -o cat -u ssh.service | grep -q "port $own ssh2" && [ "$i" -lt 200 ]; do
  sleep 0.05; i=$((i + 1))
done
journalctl -q -o cat -u ssh.service | grep -o 'port [0-9]*' | sort -u | grep -vx "port $own"
"#;

struct Snapshot {
    state: String,
    connections: Vec<String>,
}

fn snapshot(host: &TestHost) -> Snapshot {
    let output = host.ssh(&format!(
        "{FINGERPRINT}\necho '--- connections'\n{CONNECTIONS}"
    ));
    let all = String::from_utf8_lossy(&output.stdout).into_owned();
    let (state, connections) = all
        .split_once("--- connections\n")
        .unwrap_or_else(|| panic!("no fingerprint from {}: {}", host.name, text(&output)));
    Snapshot {
        state: state.to_owned(),
        connections: connections.lines().map(str::to_owned).collect(),
    }
}

/// The lines of `after` that are not in `before`, and the other way round.
fn difference(before: &str, after: &str) -> String {
    let mut diff = String::new();
    for line in before.lines().filter(|l| !after.lines().any(|a| a == *l)) {
        let _ = writeln!(diff, "- {line}");
    }
    for line in after.lines().filter(|l| !before.lines().any(|b| b == *l)) {
        let _ = writeln!(diff, "+ {line}");
    }
    diff
}

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let key = fleet.home().join(".ssh/id_ed25519");
    let key = key.to_str().unwrap();
    let port = host.port.to_string();
    let fill = |template: &str| template.replace("PORT", &port).replace("KEY", key);
    let default_inventory = fill(&format!(
        "all:\n  children:\n    app:\n      hosts:\n        {}: {{ host: 127.0.0.1, port: PORT, user: root, identity_file: KEY }}\n",
        host.name
    ));
    host.ssh_ok("touch /run/bad-input.mark && sleep 1.1");

    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut before = snapshot(host);
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let dir = fleet.dir().join(format!("case-{index:02}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("site.yml"), &case.playbook).unwrap();
        match case.inventory {
            Inventory::Host => std::fs::write(dir.join("inventory.yml"), &default_inventory),
            Inventory::Yaml(text) => std::fs::write(dir.join("inventory.yml"), fill(text)),
            Inventory::Ini(text) => std::fs::write(dir.join("inventory"), fill(text)),
        }
        .unwrap();
        for (name, content) in &case.files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        let mut args = vec!["site.yml"];
        args.extend(&case.args);
        let output = Converge::on(&fleet).dir(&dir).run(&args);
        let after = snapshot(host);

        let (code, stream, wanted) = match case.expect {
            Expect::Input(message) => (3, &output.stderr, message),
            Expect::Host(message) => (1, &output.stdout, message),
        };
        let stream = String::from_utf8_lossy(stream);
        let mut problems = Vec::new();
        if output.status.code() != Some(code) {
            problems.push(format!(
                "exit status {:?}, expected {code}",
                output.status.code()
            ));
        }
        if !stream.contains(wanted) {
            problems.push(format!("the message does not contain {wanted:?}"));
        }
        if after.state != before.state {
            problems.push(format!(
                "the host changed:\n{}",
                difference(&before.state, &after.state)
            ));
        }
        if matches!(case.expect, Expect::Input(_)) {
            // The previous snapshot's own connection is new to this one; any other
            // new connection came from converge.
            let new: Vec<&String> = after
                .connections
                .iter()
                .filter(|c| !before.connections.contains(c))
                .collect();
            if new.len() > 1 {
                problems.push(format!("converge connected to the host: {new:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {index} ({}):\n  {}\n{}",
                case.name,
                problems.join("\n  "),
                text(&output)
            ));
        }
        before = after;
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );

    huge_files_are_written_exactly(&fleet, host, &default_inventory);
}

/// Several megabytes of content, inline and from `src`, are not refused: they arrive
/// byte for byte, and the next run finds nothing to change.
fn huge_files_are_written_exactly(fleet: &Fleet, host: &TestHost, inventory: &str) {
    let dir = fleet.dir().join("huge");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("inventory.yml"), inventory).unwrap();
    // 6 MiB inline, as a YAML block scalar; 8 MiB of multi-byte text without a final
    // newline from `src`.
    let line = "0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ $x '\"`\\\n";
    let inline: String = line.repeat(6 * 1024 * 1024 / line.len());
    let mut playbook = String::from(
        "- hosts: app\n  tasks:\n    - file:\n        path: /opt/huge-inline\n        mode: \"0600\"\n        content: |\n",
    );
    for l in inline.lines() {
        let _ = writeln!(playbook, "          {l}");
    }
    playbook.push_str("    - file: { path: /opt/huge-src, src: huge.txt }\n");
    std::fs::write(dir.join("site.yml"), playbook).unwrap();
    std::fs::write(dir.join("inline.expected"), &inline).unwrap();
    let unit = "žluťoučký kůň — 日本語 — ";
    let mut from_src = unit.repeat(8 * 1024 * 1024 / unit.len());
    from_src.push_str("end");
    std::fs::write(dir.join("huge.txt"), &from_src).unwrap();

    let output = Converge::on(fleet).dir(&dir).run(&["site.yml"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        host.ssh_ok("sha256sum /opt/huge-inline /opt/huge-src | cut -c1-64"),
        format!(
            "{}\n{}",
            sha256(&dir.join("inline.expected")),
            sha256(&dir.join("huge.txt"))
        )
    );
    assert_eq!(
        host.ssh_ok("stat -c '%a %s' /opt/huge-inline /opt/huge-src"),
        format!("600 {}\n644 {}", inline.len(), from_src.len())
    );
    let output = Converge::on(fleet)
        .dir(&dir)
        .run(&["site.yml", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = support::report_of(&output);
    assert_eq!(report["summary"]["changed"], 0, "{report:#}");
}
