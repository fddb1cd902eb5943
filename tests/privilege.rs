//! Privilege on a real host: logged in as an ordinary user, `become: true` converges
//! `playbooks/sidekiq.yml` through `sudo -n`, every file lands with the owner and mode
//! the playbook asks for, and the next run changes nothing. A user whose sudo asks for
//! a password fails at once with a message that says so, instead of hanging on a
//! prompt nobody can answer. A file's temporary copy, watched from the host while a
//! large write streams in, is never readable by others.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use fleet::{Fleet, TestHost, SUDO, VISUDO};
use support::{changes_on, stat, text, Converge};

const SIDEKIQ: &str = "playbooks/sidekiq.yml";

/// Upper bound for a run that must not wait on a prompt: far above what a run takes,
/// only there so that a hang fails the test instead of stalling the suite.
const HANG_BOUND_SECONDS: &str = "120";

/// Makes `user` able to log in with the test key, with `rule` (if any) in
/// `/etc/sudoers.d/USER` and `password` (if any) set.
fn add_login(host: &TestHost, user: &str, rule: Option<&str>, password: Option<&str>) {
    let mut script = format!(
        "set -e
useradd --create-home --shell /bin/bash {user}
install -d -m 0700 -o {user} -g {user} /home/{user}/.ssh
install -m 0600 -o {user} -g {user} /root/.ssh/authorized_keys /home/{user}/.ssh/authorized_keys
"
    );
    if let Some(rule) = rule {
        let _ = writeln!(
            script,
            "printf '%s\\n' '{rule}' > /etc/sudoers.d/{user}; chmod 0440 /etc/sudoers.d/{user}; {VISUDO} -c >/dev/null"
        );
    }
    if let Some(password) = password {
        let _ = writeln!(script, "echo '{user}:{password}' | chpasswd");
    }
    host.ssh_ok(&script);
}

/// An inventory with the fleet's one host in group `app`, logging in as `user`.
fn inventory(fleet: &Fleet, user: &str) -> PathBuf {
    let host = &fleet.hosts()[0];
    let key = fleet.home().join(".ssh/id_ed25519");
    let yaml = format!(
        "all:\n  vars:\n    sidekiq_exec: /bin/sleep infinity\n  children:\n    app:\n      hosts:\n        {}: {{ host: 127.0.0.1, port: {}, user: {user}, identity_file: {} }}\n",
        host.name,
        host.port,
        key.display()
    );
    let path = fleet.dir().join(format!("inventory-{user}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

fn json(output: &Output) -> serde_json::Value {
    support::report_of(output)
}

#[test]
fn become_through_passwordless_sudo_converges_and_a_password_prompt_fails_fast() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    add_login(host, "ops", Some("ops ALL=(ALL) NOPASSWD: ALL"), None);
    add_login(
        host,
        "ops2",
        Some("ops2 ALL=(ALL) ALL"),
        Some("s3cret-Pa55"),
    );
    // The logins really are ordinary users, and ops2's sudo really wants a password.
    assert_eq!(
        host.ssh_ok(&format!(
            "runuser -u ops -- {SUDO} -n id -un; runuser -u ops -- id -u"
        )),
        "root\n1000"
    );
    let asked = host.ssh(&format!("runuser -u ops2 -- {SUDO} -n true"));
    let said = String::from_utf8_lossy(&asked.stderr);
    assert!(
        // sudo's words, or sudo-rs's.
        said.contains("a password is required")
            || said.contains("interactive authentication is required"),
        "{}",
        text(&asked)
    );

    // A password prompt: failed, quickly and clearly, and nothing was done.
    let inventory_ops2 = inventory(&fleet, "ops2");
    let output = Converge::on(&fleet)
        .through("timeout", &["--kill-after=10", HANG_BOUND_SECONDS])
        .run(&[SIDEKIQ, "-i", inventory_ops2.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "not a clean failure (124: still waiting after {HANG_BOUND_SECONDS} s):\n{}",
        text(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "failed: [{0}] sudo on {0} asks ops2 for a password; become uses `sudo -n`, which cannot answer a prompt: give ops2 passwordless sudo, or connect as root",
            host.name
        )),
        "{stdout}"
    );
    assert!(!host.ssh("getent passwd deploy").status.success());
    let report = json(
        &Converge::on(&fleet)
            .through("timeout", &["--kill-after=10", HANG_BOUND_SECONDS])
            .run(&[
                SIDEKIQ,
                "-i",
                inventory_ops2.to_str().unwrap(),
                "--format",
                "json",
            ]),
    );
    assert_eq!(stat(&report, &host.name, "failed"), 1, "{report:#}");
    assert_eq!(stat(&report, &host.name, "changed"), 0, "{report:#}");

    // Passwordless sudo: the whole playbook, as root, from an ordinary login.
    let inventory_ops = inventory(&fleet, "ops");
    let args = [
        SIDEKIQ,
        "-i",
        inventory_ops.to_str().unwrap(),
        "--format",
        "json",
    ];
    let output = Converge::on(&fleet)
        .through("timeout", &["--kill-after=10", HANG_BOUND_SECONDS])
        .run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    assert!(stat(&report, &host.name, "changed") >= 5, "{report:#}");
    assert_eq!(host.ssh_ok("systemctl is-active sidekiq"), "active");
    assert_eq!(host.ssh_ok("systemctl is-enabled sidekiq"), "enabled");
    assert_eq!(
        host.ssh_ok(
            "stat -c '%n %U:%G %a' /opt/app /opt/app/releases/1 /opt/app/releases/1/worker.rb \
             /opt/app/current /etc/default/sidekiq \
             /etc/systemd/system/sidekiq.service /etc/sudoers.d/sidekiq"
        ),
        "/opt/app deploy:deploy 755\n\
         /opt/app/releases/1 deploy:deploy 755\n\
         /opt/app/releases/1/worker.rb deploy:deploy 644\n\
         /opt/app/current deploy:deploy 777\n\
         /etc/default/sidekiq root:deploy 640\n\
         /etc/systemd/system/sidekiq.service root:root 644\n\
         /etc/sudoers.d/sidekiq root:root 440"
    );
    assert_eq!(
        host.ssh_ok("cat /etc/default/sidekiq"),
        "RAILS_ENV=production\nMALLOC_ARENA_MAX=2\nREDIS_URL=unix:///run/redis/redis-server.sock"
    );
    assert!(host.ssh_ok(&format!("{VISUDO} -c")).contains("parsed OK"));
    host.ssh_ok(&format!(
        "runuser -u deploy -- {SUDO} -n /bin/systemctl restart sidekiq"
    ));
    assert_eq!(
        host.ssh_ok("find /etc /opt /tmp /home -xdev -name '.converge.*' 2>/dev/null | wc -l"),
        "0",
        "temporary files left behind"
    );
    // Nothing was written as ops, nor left in its home.
    assert_eq!(
        host.ssh_ok(
            "find / -xdev -user ops ! -path '/home/ops*' ! -path '/proc/*' 2>/dev/null | wc -l"
        ),
        "0"
    );

    let output = Converge::on(&fleet)
        .through("timeout", &["--kill-after=10", HANG_BOUND_SECONDS])
        .run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    assert_eq!(
        changes_on(&report, &host.name),
        Vec::<String>::new(),
        "the second run changed something"
    );
    assert_eq!(stat(&report, &host.name, "changed"), 0);

    never_readable_by_others_in_between(&fleet, host, &inventory_ops);
}

/// Watches the temporary file of a large write under `become` from the host's side:
/// while the content streams in, and until the rename, neither it nor the private
/// directory it is made in is ever readable by others.
fn never_readable_by_others_in_between(fleet: &Fleet, host: &TestHost, inventory: &Path) {
    // 16 MiB take long enough to arrive that a watcher polling every few milliseconds
    // sees the temporary file many times.
    let dir = fleet.dir().join("big");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("secret.env"),
        "TOKEN=0123456789abcdef\n".repeat(16 << 16),
    )
    .unwrap();
    std::fs::write(
        dir.join("site.yml"),
        "- hosts: app\n  become: true\n  tasks:\n    - file: { path: /etc/default/big-secret, src: secret.env, owner: root, group: deploy, mode: \"0640\" }\n",
    )
    .unwrap();
    let watcher = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            host.ssh(
                "touch /run/watch.started
timeout 120 sh -c 'while [ ! -e /run/watch.stop ]; do
  for f in /etc/default/.converge.* /etc/default/.converge.*/new; do [ -e \"$f\" ] && stat -c \"%a %U:%G\" -- \"$f\"; done
done' 2>/dev/null | sort | uniq -c",
            )
        });
        host.ssh_ok("i=0; until [ -e /run/watch.started ] || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done; test -e /run/watch.started");
        let output = Converge::on(fleet)
            .through("timeout", &["--kill-after=10", HANG_BOUND_SECONDS])
            .run(&[
                dir.join("site.yml").to_str().unwrap(),
                "-i",
                inventory.to_str().unwrap(),
            ]);
        host.ssh_ok("touch /run/watch.stop");
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        watcher.join().unwrap()
    });
    let seen = String::from_utf8_lossy(&watcher.stdout).into_owned();
    assert!(
        !seen.trim().is_empty(),
        "the watcher never saw the temporary file: {}",
        text(&watcher)
    );
    for line in seen.lines() {
        let mode = line.split_whitespace().nth(1).unwrap();
        assert!(
            mode.ends_with('0') && ["600", "640", "700"].contains(&mode),
            "the temporary file was seen as {line:?}:\n{seen}"
        );
    }
    assert_eq!(
        host.ssh_ok("stat -c '%U:%G %a %s' /etc/default/big-secret; ls -A /etc/default | grep -c converge || true"),
        format!("root:deploy 640 {}\n0", 23 * (16 << 16))
    );
}
