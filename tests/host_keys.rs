//! Host key checking against real sshd host keys: `strict` (the default) needs the key in
//! `known_hosts`, plain or hashed; `accept-new` trusts an unknown key once and remembers
//! it; a changed key is refused under both, naming the host, the key's fingerprint and
//! the `known_hosts` line; `off` checks nothing. A refused host is `unreachable` (exit
//! 1), and the other host of the run is converged all the same.

mod fleet;
mod support;

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fleet::{Fleet, TestHost};
use support::{stat, text, Converge};

/// Each run makes a directory of its own on every host it reaches.
const PLAYBOOK: &str =
    "- hosts: app\n  tasks:\n    - directory: { path: \"/opt/host-keys-{{ run }}\" }\n";

/// A scratch `HOME` with the test key and this `known_hosts` content.
struct Home {
    dir: PathBuf,
    runs: Cell<usize>,
}

/// One run of converge.
struct Run {
    output: Output,
    report: Option<serde_json::Value>,
    /// The name of the directory the run makes on each host.
    label: String,
}

impl Home {
    fn new(fleet: &Fleet, name: &str, known_hosts: &str) -> Home {
        let dir = fleet.dir().join(name);
        let ssh = dir.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        for file in ["id_ed25519", "id_ed25519.pub"] {
            std::fs::copy(fleet.home().join(".ssh").join(file), ssh.join(file)).unwrap();
        }
        std::fs::write(ssh.join("known_hosts"), known_hosts).unwrap();
        Home {
            dir,
            runs: Cell::new(0),
        }
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.join(".ssh/known_hosts")
    }

    fn known_hosts_text(&self) -> String {
        std::fs::read_to_string(self.known_hosts()).unwrap()
    }

    /// Runs converge on both hosts, `first` checked with `checking`, the second with
    /// `strict`.
    fn converge(&self, fleet: &Fleet, checking: &str, format: &str) -> Run {
        self.runs.set(self.runs.get() + 1);
        let label = format!(
            "{}-{}",
            self.dir.file_name().unwrap().to_str().unwrap(),
            self.runs.get()
        );
        let run_var = format!("run={label}");
        let [first, second] = fleet.hosts() else {
            panic!("two hosts expected")
        };
        let key = self.dir.join(".ssh/id_ed25519");
        let mut inventory = String::from("all:\n  children:\n    app:\n      hosts:\n");
        for (host, checking) in [(first, checking), (second, "strict")] {
            let _ = writeln!(
                inventory,
                "        {}: {{ host: 127.0.0.1, port: {}, user: root, identity_file: {}, host_key_checking: {checking} }}",
                host.name,
                host.port,
                key.display()
            );
        }
        let path = self.dir.join("inventory.yml");
        std::fs::write(&path, inventory).unwrap();
        let playbook = self.dir.join("site.yml");
        std::fs::write(&playbook, PLAYBOOK).unwrap();
        let output = Converge::new().home(&self.dir).dir(&self.dir).run(&[
            playbook.to_str().unwrap(),
            "-i",
            path.to_str().unwrap(),
            "--format",
            format,
            "-e",
            &run_var,
        ]);
        let report = (format == "json").then(|| support::report_of(&output));
        Run {
            output,
            report,
            label,
        }
    }
}

/// The `known_hosts` lines the fleet wrote for `host` (one per host key type).
fn entries_for(fleet: &Fleet, host: &TestHost) -> String {
    let pattern = format!("[127.0.0.1]:{} ", host.port);
    std::fs::read_to_string(fleet.home().join(".ssh/known_hosts"))
        .unwrap()
        .lines()
        .filter(|line| line.starts_with(&pattern))
        .fold(String::new(), |mut entries, line| {
            entries.push_str(line);
            entries.push('\n');
            entries
        })
}

/// The SHA256 fingerprints of the keys in a `known_hosts` text, as `ssh-keygen -l` shows
/// them.
fn fingerprints(dir: &Path, known_hosts: &str) -> Vec<String> {
    let file = dir.join("fingerprints.tmp");
    std::fs::write(&file, known_hosts).unwrap();
    let output = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split_whitespace().nth(1).unwrap().to_owned())
        .collect()
}

/// A fresh ed25519 public key, `TYPE BASE64`, that no host has.
fn stranger_key(dir: &Path) -> String {
    let path = dir.join("stranger");
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `first` was refused and is unreachable; `second` was converged.
fn assert_only_first_refused(fleet: &Fleet, run: &Run) {
    let [first, second] = fleet.hosts() else {
        panic!()
    };
    let (output, report) = (&run.output, run.report.as_ref().unwrap());
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
    assert_eq!(stat(report, &first.name, "unreachable"), 1, "{report:#}");
    assert_eq!(stat(report, &second.name, "unreachable"), 0, "{report:#}");
    assert_eq!(stat(report, &second.name, "failed"), 0, "{report:#}");
    second.ssh_ok(&format!("test -d /opt/host-keys-{}", run.label));
    assert!(
        !first
            .ssh(&format!("test -e /opt/host-keys-{}", run.label))
            .status
            .success(),
        "the refused host was changed"
    );
}

/// The message converge printed for `host` in human output.
fn unreachable_line<'a>(output: &'a str, host: &TestHost) -> &'a str {
    let prefix = format!("unreachable: [{}] ", host.name);
    output
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{output}"))
}

#[test]
fn host_keys_are_checked_like_openssh_does() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [first, second] = fleet.hosts() else {
        panic!()
    };
    let first_entries = entries_for(&fleet, first);
    let second_entries = entries_for(&fleet, second);
    let first_fingerprints = fingerprints(fleet.dir(), &first_entries);
    let pattern = format!("[127.0.0.1]:{}", first.port);

    // strict, with the key known: the fleet's own HOME.
    let home = Home::new(&fleet, "known", &format!("{first_entries}{second_entries}"));
    let Run { output, report, .. } = home.converge(&fleet, "strict", "json");
    let report = report.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    for host in fleet.hosts() {
        assert_eq!(stat(&report, &host.name, "changed"), 1, "{report:#}");
    }

    // strict, no entry for the first host: refused with the fingerprint and the fix.
    let home = Home::new(&fleet, "unknown", &second_entries);
    let output = home.converge(&fleet, "strict", "human").output;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = unreachable_line(&stdout, first);
    assert!(
        line.contains(&format!(
            "host key verification failed for {}: the host key for {pattern} is not in {}",
            first.name,
            home.known_hosts().display()
        )),
        "{line}"
    );
    assert!(
        first_fingerprints
            .iter()
            .any(|fp| line.contains(fp.as_str())),
        "none of {first_fingerprints:?} in: {line}"
    );
    assert!(
        line.contains(&format!(
            "add it with `ssh-keyscan -p {} 127.0.0.1 >> ~/.ssh/known_hosts` after checking the fingerprint, or set `host_key_checking: accept-new`",
            first.port
        )),
        "{line}"
    );
    assert_only_first_refused(&fleet, &home.converge(&fleet, "strict", "json"));
    assert_eq!(home.known_hosts_text(), second_entries, "strict wrote");

    // accept-new on the unknown key: added, and then strict knows it.
    let Run { output, report, .. } = home.converge(&fleet, "accept-new", "json");
    let report = report.unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(stat(&report, &first.name, "changed"), 1, "{report:#}");
    let learned = home.known_hosts_text();
    let added = learned
        .strip_prefix(second_entries.as_str())
        .unwrap_or_else(|| panic!("accept-new rewrote the file:\n{learned}"));
    assert!(
        added.starts_with(&format!("{pattern} ")) && added.lines().count() == 1,
        "{learned}"
    );
    assert!(first_entries.contains(added.trim_end()), "{added}");
    let output = home.converge(&fleet, "strict", "json").output;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(home.known_hosts_text(), learned);

    // A changed key: refused by strict and by accept-new, which leaves the file alone.
    let stranger = stranger_key(fleet.dir());
    let changed = format!("{pattern} {stranger}\n{second_entries}");
    let home = Home::new(&fleet, "changed", &changed);
    for checking in ["strict", "accept-new"] {
        let output = home.converge(&fleet, checking, "human").output;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = unreachable_line(&stdout, first);
        assert!(
            line.contains(&format!(
                "host key verification failed for {}: REMOTE HOST IDENTIFICATION HAS CHANGED: {pattern} presented ssh-ed25519 key SHA256:",
                first.name
            )),
            "{checking}: {line}"
        );
        assert!(
            first_fingerprints
                .iter()
                .any(|fp| line.contains(fp.as_str())),
            "{checking}: none of {first_fingerprints:?} in: {line}"
        );
        assert!(
            line.contains(&format!(
                "which differs from the key recorded at line 1 of {}",
                home.known_hosts().display()
            )),
            "{checking}: {line}"
        );
        assert!(
            line.contains(&format!("`ssh-keygen -R '{pattern}'`")),
            "{checking}: {line}"
        );
        assert_only_first_refused(&fleet, &home.converge(&fleet, checking, "json"));
        assert_eq!(home.known_hosts_text(), changed, "{checking} wrote");
    }

    // Hashed entries (`ssh-keygen -H`) are honoured, known and changed alike.
    let home = Home::new(
        &fleet,
        "hashed",
        &format!("{first_entries}{second_entries}"),
    );
    hash(&home.known_hosts());
    let hashed = home.known_hosts_text();
    assert!(
        hashed.lines().all(|line| line.starts_with("|1|")) && !hashed.contains("127.0.0.1"),
        "{hashed}"
    );
    let output = home.converge(&fleet, "strict", "json").output;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let home = Home::new(&fleet, "hashed-changed", &changed);
    hash(&home.known_hosts());
    let output = home.converge(&fleet, "strict", "human").output;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = unreachable_line(&stdout, first);
    assert!(
        line.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            && line.contains("recorded at line 1 (a hashed entry) of"),
        "{line}"
    );

    // off: neither an unknown nor a changed key stops it, and nothing is written.
    for (name, known) in [
        ("off-unknown", second_entries.as_str()),
        ("off-changed", &changed),
    ] {
        let home = Home::new(&fleet, name, known);
        let output = home.converge(&fleet, "off", "json").output;
        assert_eq!(output.status.code(), Some(0), "{name}: {}", text(&output));
        assert_eq!(home.known_hosts_text(), known, "{name}: off wrote");
    }
}

/// Hashes the host names of a `known_hosts` file in place, as `ssh-keygen -H` does.
fn hash(path: &Path) {
    let output = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}
