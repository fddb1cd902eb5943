//! The `link` module on real hosts: a link made, re-pointed without ever being absent,
//! drift found by `--check` and repaired, removed, and the refusals (a real directory
//! without `force`, a directory on the way that is a user's symbolic link).

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use support::{changes_on, converge_json, inventory, refused};

/// A playbook with one `link` task (`params` inside its braces), written beside the
/// fleet's other files.
fn playbook(fleet: &Fleet, name: &str, params: &str) -> String {
    let path = fleet.dir().join(format!("{name}.yml"));
    std::fs::write(
        &path,
        format!(
            "- hosts: app\n  tasks:\n    - name: current release\n      link: {{ {params} }}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn link_state(host: &TestHost, path: &str) -> String {
    host.ssh_ok(&format!(
        "if [ -h {path} ]; then stat -c '%U:%G' {path}; readlink {path}; elif [ -e {path} ]; then stat -c %F {path}; else echo missing; fi"
    ))
}

#[test]
fn links_are_made_re_pointed_atomically_repaired_removed_and_refused_where_unsafe() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    host.ssh_ok("useradd -m deploy && mkdir -p /srv/app/releases/1 /srv/app/releases/2");
    let release = |n: u32| {
        playbook(
            &fleet,
            &format!("release-{n}"),
            &format!("path: /srv/app/current, target: releases/{n}, owner: deploy, group: deploy"),
        )
    };
    let (one, two) = (release(1), release(2));

    // Made, owned with chown -h, and then nothing to do.
    let (code, report) = converge_json(&fleet, &[&one, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        ["current release: link /srv/app/current -> releases/1"]
    );
    assert_eq!(
        link_state(host, "/srv/app/current"),
        "deploy:deploy\nreleases/1"
    );
    let (code, report) = converge_json(&fleet, &[&one, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");

    // Re-pointed while a loop on the host reads the link without pause: it always
    // answers, first the old target, then the new one.
    host.ssh_ok(concat!(
        "rm -f /tmp/gaps /tmp/saw1 /tmp/saw2 /tmp/stop; ",
        "setsid sh -c 'while [ ! -e /tmp/stop ]; do ",
        "t=$(readlink /srv/app/current) || t=missing; ",
        "case $t in releases/1) : > /tmp/saw1 ;; releases/2) : > /tmp/saw2 ;; *) echo \"$t\" >> /tmp/gaps ;; esac; ",
        "done; : > /tmp/stopped' </dev/null >/dev/null 2>&1 & ",
        "until [ -e /tmp/saw1 ]; do sleep 0.05; done"
    ));
    let (code, report) = converge_json(&fleet, &[&two, "-i", inventory]);
    host.ssh_ok("until [ -e /tmp/saw2 ]; do sleep 0.05; done; : > /tmp/stop; until [ -e /tmp/stopped ]; do sleep 0.05; done");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        ["current release: link /srv/app/current -> releases/2"]
    );
    assert_eq!(
        host.ssh_ok("cat /tmp/gaps 2>/dev/null || echo none"),
        "none",
        "the link was missing or wrong for a moment during the switch"
    );
    assert_eq!(
        link_state(host, "/srv/app/current"),
        "deploy:deploy\nreleases/2"
    );

    // Re-pointed by hand: --check finds it (exit 2), apply repairs it, then no drift.
    host.ssh_ok("ln -sfn releases/1 /srv/app/current");
    let (code, report) = converge_json(&fleet, &[&two, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        ["current release: link /srv/app/current -> releases/2"]
    );
    let (code, _) = converge_json(&fleet, &[&two, "-i", inventory]);
    assert_eq!(code, 0);
    assert_eq!(
        link_state(host, "/srv/app/current"),
        "deploy:deploy\nreleases/2"
    );
    let (code, report) = converge_json(&fleet, &[&two, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");

    // state: absent removes the link, and not what it points at.
    let absent = playbook(&fleet, "absent", "path: /srv/app/current, state: absent");
    let (code, report) = converge_json(&fleet, &[&absent, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        changes_on(&report, &host.name),
        ["current release: remove symbolic link /srv/app/current"]
    );
    assert_eq!(link_state(host, "/srv/app/current"), "missing");
    assert_eq!(link_state(host, "/srv/app/releases/2"), "directory");

    // A real directory in the way is refused, and kept, unless force says otherwise.
    host.ssh_ok("mkdir /srv/app/current && touch /srv/app/current/kept");
    refused(
        &fleet,
        &[&two, "-i", inventory],
        "/srv/app/current is a directory; expected a symbolic link (force: true replaces it)",
    );
    host.ssh_ok("test -f /srv/app/current/kept");
    let forced = playbook(
        &fleet,
        "forced",
        "path: /srv/app/current, target: releases/2, force: true",
    );
    let (code, report) = converge_json(&fleet, &[&forced, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        link_state(host, "/srv/app/current"),
        "root:root\nreleases/2"
    );

    // A directory on the way that is a user's symbolic link is never followed.
    host.ssh_ok(concat!(
        "mkdir /home/deploy/elsewhere && chown deploy: /home/deploy/elsewhere && ",
        "ln -s /home/deploy/elsewhere /home/deploy/app && chown -h deploy: /home/deploy/app"
    ));
    let theirs = playbook(
        &fleet,
        "theirs",
        "path: /home/deploy/app/current, target: /srv/app/releases/2",
    );
    refused(
        &fleet,
        &[&theirs, "-i", inventory],
        "will not touch /home/deploy/app/current: /home/deploy/app is a symbolic link",
    );
    assert_eq!(host.ssh_ok("ls -A /home/deploy/elsewhere"), "");
}
