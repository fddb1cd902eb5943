//! `lineinfile` and `blockinfile` on real hosts: an sshd configuration edited (lines
//! replaced, inserted, removed, a block added) with its other bytes, owner and mode
//! kept, `--check` on the fresh host listing every change the apply then makes, a
//! second run with nothing to do (one remote command), a line edited by hand found by
//! `--check` (exit 2) and repaired, and the refusals (a missing file without `create`,
//! a directory on the way that is a user's symbolic link).

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use support::{changes_on, converge_json, inventory, refused, stat, tasks_on};

/// A playbook with `tasks` (YAML list items, indented by four spaces), written beside
/// the fleet's other files.
fn playbook(fleet: &Fleet, name: &str, tasks: &str) -> String {
    let path = fleet.dir().join(format!("{name}.yml"));
    std::fs::write(&path, format!("- hosts: app\n  tasks:\n{tasks}")).unwrap();
    path.to_str().unwrap().to_owned()
}

const SSHD: &str = r#"    - name: no root logins
      lineinfile: { path: /srv/sshd_config, regexp: '^#?PermitRootLogin\b', line: PermitRootLogin no }
    - name: our port
      lineinfile: { path: /srv/sshd_config, regexp: '^#?Port\s', line: Port 2222 }
    - name: keepalive after the port
      lineinfile: { path: /srv/sshd_config, line: ClientAliveInterval 30, insert_after: '^Port\s' }
    - name: no X11
      lineinfile: { path: /srv/sshd_config, regexp: '^X11Forwarding', state: absent }
    - name: deploy uses keys
      blockinfile:
        path: /srv/sshd_config
        block: |
          Match User deploy
            PasswordAuthentication no
    - name: windows line endings
      lineinfile: { path: /srv/crlf.conf, regexp: '^b=', line: b=3 }
    - name: a fresh file
      lineinfile: { path: /srv/fresh.conf, line: a=1, create: true }
    - name: edited before it exists
      lineinfile: { path: /srv/fresh.conf, line: b=2 }
    - name: created
      blockinfile: { path: /srv/new.conf, block: "x=1", create: true, mode: "0600" }
"#;

fn count(host: &TestHost, pattern: &str, path: &str) -> String {
    host.ssh_ok(&format!("LC_ALL=C grep -c -e '{pattern}' {path} || true"))
}

#[test]
fn lines_and_blocks_are_edited_in_place_kept_repaired_and_refused_where_unsafe() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    // The host's own sshd_config, with a Latin-1 comment (not UTF-8) and an X11 line,
    // owned root:adm 0640; and a CRLF file.
    host.ssh_ok(concat!(
        "cp /etc/ssh/sshd_config /srv/sshd_config && ",
        "printf '# caf\\351 cr\\350me\\nX11Forwarding yes\\n' >> /srv/sshd_config && ",
        "chown root:adm /srv/sshd_config && chmod 0640 /srv/sshd_config && ",
        "printf 'a=1\\r\\nb=2\\r\\n' > /srv/crlf.conf && useradd -m deploy"
    ));
    let site = playbook(&fleet, "site", SSHD);
    let expected = [
        "no root logins: update /srv/sshd_config",
        "our port: update /srv/sshd_config",
        "keepalive after the port: update /srv/sshd_config",
        "no X11: update /srv/sshd_config",
        "deploy uses keys: update /srv/sshd_config",
        "windows line endings: update /srv/crlf.conf",
        "a fresh file: create /srv/fresh.conf",
        "edited before it exists: update /srv/fresh.conf",
        "created: create /srv/new.conf",
    ];

    // --check on the fresh host lists every change the apply then makes, and a task
    // on a file an earlier task would create is planned against that content (no
    // "does not exist").
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), expected);
    assert_eq!(
        host.ssh_ok("test -e /srv/fresh.conf || test -e /srv/new.conf || echo none"),
        "none"
    );
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), expected);

    // The file is what sshd accepts, every edit in its place, its other bytes, owner
    // and mode kept.
    host.ssh_ok("/usr/sbin/sshd -t -f /srv/sshd_config");
    assert_eq!(count(host, "^PermitRootLogin no$", "/srv/sshd_config"), "1");
    assert_eq!(
        count(host, "^#\\{0,1\\}PermitRootLogin", "/srv/sshd_config"),
        "1"
    );
    assert_eq!(
        host.ssh_ok("grep -A1 '^Port ' /srv/sshd_config"),
        "Port 2222\nClientAliveInterval 30"
    );
    assert_eq!(count(host, "^X11Forwarding", "/srv/sshd_config"), "0");
    assert_eq!(
        host.ssh_ok("LC_ALL=C grep -c \"$(printf '# caf\\351 cr\\350me')\" /srv/sshd_config"),
        "1"
    );
    assert_eq!(
        host.ssh_ok("tail -n 4 /srv/sshd_config"),
        "# BEGIN MANAGED BY CONVERGE\nMatch User deploy\n  PasswordAuthentication no\n# END MANAGED BY CONVERGE"
    );
    assert_eq!(
        host.ssh_ok("stat -c '%U:%G %a' /srv/sshd_config /srv/new.conf"),
        "root:adm 640\nroot:root 600"
    );
    assert_eq!(
        host.ssh_ok("od -An -c /srv/crlf.conf | tr -s ' \\n' ' '"),
        "a = 1 \\r \\n b = 3 \\r \\n"
    );
    assert_eq!(host.ssh_ok("cat /srv/fresh.conf"), "a=1\nb=2");
    assert_eq!(
        host.ssh_ok("ls -A /srv | grep -c converge || true"),
        "0",
        "a private directory of the atomic write was left behind"
    );

    // Nothing to do the second time, known from the one batched read.
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");
    assert_eq!(stat(&report, &host.name, "commands"), 1, "{report:#}");

    // A line edited by hand: --check finds it (exit 2) with its diff, apply repairs it,
    // then no drift.
    host.ssh_ok("sed -i 's/^PermitRootLogin no$/PermitRootLogin yes/' /srv/sshd_config");
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        ["no root logins: update /srv/sshd_config"]
    );
    let diff = &tasks_on(&report, &host.name)[0]["diffs"][0];
    assert!(
        diff["before"]
            .as_str()
            .unwrap()
            .contains("\nPermitRootLogin yes\n")
            && diff["after"]
                .as_str()
                .unwrap()
                .contains("\nPermitRootLogin no\n"),
        "{report:#}"
    );
    assert_eq!(
        count(host, "^PermitRootLogin yes$", "/srv/sshd_config"),
        "1"
    );
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        ["no root logins: update /srv/sshd_config"]
    );
    assert_eq!(count(host, "^PermitRootLogin no$", "/srv/sshd_config"), "1");
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");

    // The block removed, markers and all.
    let absent = playbook(
        &fleet,
        "absent",
        "    - name: no block\n      blockinfile: { path: /srv/sshd_config, state: absent }\n",
    );
    let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(count(host, "MANAGED BY CONVERGE", "/srv/sshd_config"), "0");
    host.ssh_ok("/usr/sbin/sshd -t -f /srv/sshd_config");

    // A missing file without create is an error, in --check as in apply.
    let missing = playbook(
        &fleet,
        "missing",
        "    - name: missing\n      lineinfile: { path: /srv/missing.conf, line: a=1 }\n",
    );
    let why = "/srv/missing.conf does not exist (create: true creates it, or create it in an earlier task)";
    refused(&fleet, &[&missing, "-i", inventory, "--check"], why);
    refused(&fleet, &[&missing, "-i", inventory], why);
    assert_eq!(
        host.ssh_ok("test -e /srv/missing.conf || echo none"),
        "none"
    );

    // A directory on the way that is a user's symbolic link is never followed.
    host.ssh_ok(concat!(
        "mkdir /home/deploy/elsewhere && echo a=1 > /home/deploy/elsewhere/app.conf && ",
        "chown -R deploy: /home/deploy/elsewhere && ",
        "ln -s /home/deploy/elsewhere /home/deploy/app && chown -h deploy: /home/deploy/app"
    ));
    let theirs = playbook(
        &fleet,
        "theirs",
        "    - name: theirs\n      lineinfile: { path: /home/deploy/app/app.conf, line: b=2 }\n",
    );
    let why = "will not touch /home/deploy/app/app.conf: /home/deploy/app is a symbolic link";
    refused(&fleet, &[&theirs, "-i", inventory, "--check"], why);
    refused(&fleet, &[&theirs, "-i", inventory], why);
    assert_eq!(host.ssh_ok("cat /home/deploy/elsewhere/app.conf"), "a=1");
}
