//! Interrupted and concurrent runs on real hosts: one run at a time per host (the
//! second waits, then fails naming the holder), a killed run's lock does not block the
//! next, SIGINT finishes running tasks and starts no new one, and killing converge at
//! random instants, many times over, never leaves a managed file half-written nor a
//! lock that stops the next run.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleet::Fleet;
use support::{inventory, text};

/// How many times `killing_converge_anywhere_never_leaves_a_partial_file` kills a run.
const KILL_ROUNDS: usize = 80;

fn sha256(path: &std::path::Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

fn spawn(fleet: &Fleet, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_converge"))
        .args(args)
        .env("HOME", fleet.home())
        .env("NO_COLOR", "1")
        .current_dir(fleet::repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Succeeds on the host while some process holds the root lock.
const LOCK_HELD: &str = "! flock -n /run/converge.lock true";
/// Succeeds on the host when nobody holds the root lock.
const LOCK_FREE: &str = "flock -n /run/converge.lock true";

/// Waits (bounded) until `check` succeeds on the host.
fn wait_for(host: &fleet::TestHost, check: &str) {
    let script = format!("for i in $(seq 1 100); do {check} && exit 0; sleep 0.1; done; exit 1");
    assert!(
        host.ssh(&script).status.success(),
        "timed out waiting for `{check}` on {}",
        host.name
    );
}

#[test]
fn one_run_at_a_time_and_a_killed_run_does_not_block_the_next() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let slow = fleet.dir().join("slow.yml");
    std::fs::write(
        &slow,
        "- hosts: app\n  tasks:\n    - command: { cmd: sleep 4 }\n",
    )
    .unwrap();
    let quick = fleet.dir().join("quick.yml");
    std::fs::write(
        &quick,
        "- hosts: app\n  tasks:\n    - file: { path: /tmp/quick, content: \"x\\n\" }\n",
    )
    .unwrap();

    let first = spawn(&fleet, &[slow.to_str().unwrap(), "-i", inventory]);
    wait_for(host, LOCK_HELD);
    let second = fleet.converge(&[quick.to_str().unwrap(), "-i", inventory, "--lock-wait", "1"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains(
            "another converge run holds this host's lock (/run/converge.lock): converge "
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("(pid {}) as root since ", first.id())),
        "{stdout}"
    );
    assert!(
        !host.ssh("test -e /tmp/quick").status.success(),
        "the second run changed the host"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(host.ssh(LOCK_FREE).status.success(), "lock not released");

    // A run killed while it holds the lock: its connection is gone, so the lock is stale.
    let killed = spawn(&fleet, &[slow.to_str().unwrap(), "-i", inventory]);
    wait_for(host, LOCK_HELD);
    signal(&killed, "KILL");
    let _ = killed.wait_with_output();
    let output = fleet.converge(&[
        quick.to_str().unwrap(),
        "-i",
        inventory,
        "--lock-wait",
        "20",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    host.ssh_ok("test -f /tmp/quick");
}

#[test]
fn sigint_finishes_the_running_task_and_starts_no_other() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let playbook = fleet.dir().join("two-steps.yml");
    std::fs::write(
        &playbook,
        "- hosts: app\n  tasks:\n    - name: slow step\n      command: { cmd: \"sleep 3; touch /tmp/first\" }\n    - name: next step\n      file: { path: /tmp/second, content: \"x\\n\" }\n",
    )
    .unwrap();
    let child = spawn(
        &fleet,
        &[
            playbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ],
    );
    wait_for(host, "pgrep -f 'sleep 3' >/dev/null");
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("changed: [") && stdout.contains("PLAY RECAP"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("interrupted:"),
        "{}",
        text(&output)
    );
    host.ssh_ok("test -f /tmp/first");
    assert!(
        !host.ssh("test -e /tmp/second").status.success(),
        "a task started after SIGINT"
    );
    assert!(host.ssh(LOCK_FREE).status.success(), "lock not released");
}

#[test]
fn killing_converge_anywhere_never_leaves_a_partial_file() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    // Large files, so that kills land in the middle of writes too.
    let block = "0123456789abcdef".repeat(64 * 1024);
    let paths: Vec<String> = (0..4).map(|i| format!("/etc/converge-test-{i}")).collect();
    let write_playbook = |version: usize| {
        let path = fleet.dir().join(format!("version-{version}.yml"));
        let mut yaml = String::from("- hosts: app\n  tasks:\n");
        for file in &paths {
            let _ = writeln!(
                yaml,
                "    - file:\n        path: {file}\n        src: content-{version}"
            );
        }
        std::fs::write(
            fleet.dir().join(format!("content-{version}")),
            format!("version {version}\n{block}"),
        )
        .unwrap();
        std::fs::write(&path, yaml).unwrap();
        path
    };
    let playbooks = [write_playbook(1), write_playbook(2)];
    let hashes: Vec<String> = (1..=2)
        .map(|version| sha256(&fleet.dir().join(format!("content-{version}"))))
        .collect();
    let check_files = format!(
        "for f in {}; do if [ -e $f ]; then sha256sum $f | cut -c1-64; else echo absent; fi; done",
        paths.join(" ")
    );
    // A fixed sequence of delays spread over a run's lifetime (connecting, reading,
    // taking the lock, writing, giving the lock back), different each round. After
    // every kill, the next run must converge the host at once: nothing a killed run
    // leaves behind may stop it.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..KILL_ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = seed % 1500;
        let version = round % 2;
        let child = spawn(
            &fleet,
            &[playbooks[version].to_str().unwrap(), "-i", inventory],
        );
        std::thread::sleep(Duration::from_millis(delay));
        signal(&child, "KILL");
        let _ = child.wait_with_output();
        let sums = host.ssh_ok(&check_files);
        for (file, sum) in paths.iter().zip(sums.lines()) {
            assert!(
                sum == "absent" || hashes.contains(&sum.to_owned()),
                "round {round} (killed after {delay} ms): {file} is neither old nor new: {}",
                host.ssh_ok(&format!(
                    "wc -c {file}; head -c 40 {file}; ls -la /etc | grep converge"
                ))
            );
        }
        // The killed run's version, finished, so that the next round's kill (of the
        // other version) lands on files being replaced. A stale lock would make this
        // wait and fail; a live holder of the killed run is gone with its connection.
        let next = fleet.converge(&[
            playbooks[version].to_str().unwrap(),
            "-i",
            inventory,
            "--lock-wait",
            "20",
        ]);
        assert_eq!(
            next.status.code(),
            Some(0),
            "round {round} (killed after {delay} ms): the next run failed\n{}",
            text(&next)
        );
    }
    assert!(host.ssh(LOCK_FREE).status.success(), "lock not released");
}

#[test]
fn a_login_without_root_locks_in_its_own_runtime_directory_not_in_tmp() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    // `deploy` logs in with the test key and has no sudo; `mallory`, another local
    // user, gets to /tmp first with the names older versions used there.
    host.ssh_ok(
        "set -e
useradd --create-home --shell /bin/bash deploy
useradd --create-home --shell /bin/bash mallory
install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh
install -m 0600 -o deploy -g deploy /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys
runuser -u mallory -- sh -c 'echo mine > /tmp/mallory; ln -s /tmp/mallory /tmp/converge.lock'",
    );
    let key = fleet.home().join(".ssh/id_ed25519");
    let inventory = fleet.dir().join("inventory-deploy.yml");
    std::fs::write(
        &inventory,
        format!(
            "app:\n  hosts:\n    {}: {{ host: 127.0.0.1, port: {}, user: deploy, identity_file: {} }}\n",
            host.name,
            host.port,
            key.display()
        ),
    )
    .unwrap();
    let inventory = inventory.to_str().unwrap();
    let slow = fleet.dir().join("slow-deploy.yml");
    std::fs::write(
        &slow,
        "- hosts: app\n  tasks:\n    - command: { cmd: sleep 4 }\n",
    )
    .unwrap();
    let quick = fleet.dir().join("quick-deploy.yml");
    std::fs::write(
        &quick,
        "- hosts: app\n  tasks:\n    - file: { path: /home/deploy/quick, content: \"x\\n\" }\n",
    )
    .unwrap();

    let uid = host.ssh_ok("id -u deploy");
    let lock = format!("/run/user/{uid}/converge.lock");
    let first = spawn(&fleet, &[slow.to_str().unwrap(), "-i", inventory]);
    wait_for(host, &format!("[ -e {lock} ] && ! flock -n {lock} true"));
    let second = fleet.converge(&[quick.to_str().unwrap(), "-i", inventory, "--lock-wait", "1"]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains(&format!(
            "another converge run holds this host's lock ({lock}): converge "
        )) && stdout.contains(&format!("(pid {}) as deploy since ", first.id())),
        "{stdout}"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(
        host.ssh_ok(&format!("stat -c '%U %a' {lock}")),
        "deploy 600"
    );
    assert!(host.ssh(&format!("flock -n {lock} true")).status.success());
    let output = fleet.converge(&[quick.to_str().unwrap(), "-i", inventory]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // What mallory planted in /tmp was never used.
    assert_eq!(
        host.ssh_ok("cat /tmp/mallory; readlink /tmp/converge.lock"),
        "mine\n/tmp/mallory"
    );
}
