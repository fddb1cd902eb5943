//! The `package` module on real hosts, from a local apt repository built on the host
//! (no test depends on a package mirror): an install on a fresh host, foreseen by
//! `--check`, then nothing to do in one command; a package removed by hand found by
//! `--check` and put back; `state: absent`; `start_services: false` keeping a packaged
//! service from starting, its `policy-rc.d` gone afterwards (also when the install
//! fails); `latest` after a refresh; a pinned version; dpkg's lock waited for; a host
//! without apt.

mod fleet;
mod support;

use std::time::{Duration, Instant};

use fleet::{Fleet, TestHost};
use support::{changes_on, converge_json, inventory, stat, tasks_on};

/// Builds the test packages on the host with `dpkg-deb`: `converge-hello` (a script)
/// at 1.0-1 and 1.0-2, `converge-daemon` (a unit its maintainer scripts enable and
/// start, as debhelper's do), and `converge-kv` (the same, with a system user of its
/// own that its postinst adds, as Redis's does).
const BUILD: &str = r#"set -eu
mkdir -p /srv/build /srv/pool /srv/repo
package() {
  d=/srv/build/$1_$2
  mkdir -p "$d/DEBIAN" "$d/usr/bin"
  printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: converge tests <tests@converge.invalid>\nDescription: a package for converge tests\n' "$1" "$2" > "$d/DEBIAN/control"
  printf '#!/bin/sh\necho %s %s\n' "$1" "$2" > "$d/usr/bin/$1"
  chmod 0755 "$d/usr/bin/$1"
}
package converge-hello 1.0-1
package converge-hello 1.0-2
package converge-daemon 1.0-1
package converge-kv 1.0-1
d=/srv/build/converge-kv_1.0-1
mkdir -p "$d/lib/systemd/system"
printf '[Unit]\nDescription=converge test store\n[Service]\nUser=converge-kv\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n' > "$d/lib/systemd/system/converge-kv.service"
printf '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  getent passwd converge-kv >/dev/null || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin converge-kv\n  deb-systemd-helper enable converge-kv.service\n  deb-systemd-invoke start converge-kv.service\nfi\n' > "$d/DEBIAN/postinst"
chmod 0755 "$d/DEBIAN/postinst"
d=/srv/build/converge-daemon_1.0-1
mkdir -p "$d/lib/systemd/system"
printf '[Unit]\nDescription=converge test daemon\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n' > "$d/lib/systemd/system/converge-daemon.service"
printf '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  deb-systemd-helper enable converge-daemon.service\n  deb-systemd-invoke start converge-daemon.service\nfi\n' > "$d/DEBIAN/postinst"
printf '#!/bin/sh\nset -e\nif [ "$1" = remove ]; then deb-systemd-invoke stop converge-daemon.service; fi\n' > "$d/DEBIAN/prerm"
chmod 0755 "$d/DEBIAN/postinst" "$d/DEBIAN/prerm"
for d in /srv/build/*; do dpkg-deb --build "$d" "/srv/pool/${d##*/}_all.deb" >/dev/null; done
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* /var/lib/apt/lists/*_*
echo 'deb [trusted=yes] file:/srv/repo ./' > /etc/apt/sources.list.d/converge-test.list"#;

/// Publishes the named `.deb` files of `/srv/pool` as the repository's whole content.
fn publish(host: &TestHost, debs: &[&str]) {
    host.ssh_ok(&format!(
        r#"set -eu; cd /srv/repo; rm -f *.deb Packages
for f in {}; do cp "/srv/pool/$f" .; done
for f in *.deb; do dpkg-deb -f "$f" >> Packages
printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)" >> Packages; done"#,
        debs.join(" ")
    ));
}

/// A playbook with one `package` task named `packages` (`params` inside its braces).
fn playbook(fleet: &Fleet, name: &str, params: &str) -> String {
    let path = fleet.dir().join(format!("{name}.yml"));
    std::fs::write(
        &path,
        format!("- hosts: app\n  tasks:\n    - name: packages\n      package: {{ {params} }}\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// dpkg's word on a package: `STATUS VERSION`, or `unknown`.
fn dpkg(host: &TestHost, name: &str) -> String {
    host.ssh_ok(&format!(
        "dpkg-query -W -f='${{db:Status-Abbrev}}${{Version}}' {name} 2>/dev/null || echo unknown"
    ))
}

fn unit(host: &TestHost) -> String {
    host.ssh_ok(
        "echo $(systemctl is-enabled converge-daemon.service; systemctl is-active converge-daemon.service; \
         if [ -e /usr/sbin/policy-rc.d ]; then echo policy-rc.d; fi)",
    )
}

/// Runs converge, expecting `code`, and returns the changes it lists for `host`.
fn run(fleet: &Fleet, host: &TestHost, args: &[&str], code: i32) -> Vec<String> {
    let (status, report) = converge_json(fleet, args);
    assert_eq!(status, code, "{report:#}");
    changes_on(&report, &host.name)
}

/// Runs converge, expecting no change, and returns the remote commands it sent `host`.
fn no_change_commands(fleet: &Fleet, host: &TestHost, args: &[&str]) -> u64 {
    let (status, report) = converge_json(fleet, args);
    assert_eq!(status, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");
    stat(&report, &host.name, "commands")
}

#[test]
fn packages_are_installed_repaired_removed_and_installed_without_starting_services() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    host.ssh_ok(BUILD);
    publish(
        host,
        &[
            "converge-hello_1.0-1_all.deb",
            "converge-daemon_1.0-1_all.deb",
        ],
    );

    // A fresh host has no package lists: --check foresees the refresh and the install
    // (exit 2) and changes nothing.
    let hello = playbook(
        &fleet,
        "hello",
        "name: converge-hello, update_cache: true, cache_valid_time: 3600",
    );
    let expected = [
        "packages: refresh apt's package lists",
        "packages: install package converge-hello",
    ];
    assert_eq!(
        run(&fleet, host, &[&hello, "-i", inventory, "--check"], 2),
        expected
    );
    assert_eq!(dpkg(host, "converge-hello"), "unknown");
    assert_eq!(run(&fleet, host, &[&hello, "-i", inventory], 0), expected);
    assert_eq!(dpkg(host, "converge-hello"), "ii 1.0-1");
    assert_eq!(host.ssh_ok("converge-hello"), "converge-hello 1.0-1");
    // The lists are fresh and the package is there: nothing to do, and finding that out
    // is the one batched read.
    assert_eq!(
        no_change_commands(&fleet, host, &[&hello, "-i", inventory]),
        1
    );

    // Removed by hand: --check finds it, at the version apt would install; apply puts
    // it back.
    host.ssh_ok("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q converge-hello >/dev/null");
    let drift = ["packages: install package converge-hello 1.0-1"];
    assert_eq!(
        run(&fleet, host, &[&hello, "-i", inventory, "--check"], 2),
        drift
    );
    assert_eq!(run(&fleet, host, &[&hello, "-i", inventory], 0), drift);
    assert_eq!(dpkg(host, "converge-hello"), "ii 1.0-1");
    assert!(run(&fleet, host, &[&hello, "-i", inventory, "--check"], 0).is_empty());

    // state: absent removes it, once.
    let absent = playbook(&fleet, "absent", "name: [converge-hello], state: absent");
    assert_eq!(
        run(&fleet, host, &[&absent, "-i", inventory], 0),
        ["packages: remove package converge-hello 1.0-1"]
    );
    assert_eq!(dpkg(host, "converge-hello"), "unknown");
    assert!(run(&fleet, host, &[&absent, "-i", inventory], 0).is_empty());

    // The daemon's package starts its service when installed...
    let daemon = playbook(&fleet, "daemon", "name: converge-daemon");
    assert_eq!(
        run(&fleet, host, &[&daemon, "-i", inventory], 0),
        ["packages: install package converge-daemon 1.0-1"]
    );
    assert_eq!(unit(host), "enabled active");
    let gone = playbook(&fleet, "gone", "name: converge-daemon, state: absent");
    run(&fleet, host, &[&gone, "-i", inventory], 0);
    assert_eq!(dpkg(host, "converge-daemon"), "unknown");
    // ...but not with start_services: false, and the policy-rc.d is gone afterwards.
    let quiet = playbook(
        &fleet,
        "quiet",
        "name: converge-daemon, start_services: false",
    );
    assert_eq!(
        run(&fleet, host, &[&quiet, "-i", inventory], 0),
        ["packages: install package converge-daemon 1.0-1 (services not started)"]
    );
    assert_eq!(unit(host), "enabled inactive");
    assert!(run(&fleet, host, &[&quiet, "-i", inventory], 0).is_empty());
    // A failed install removes it too, and puts back one the host had.
    host.ssh_ok(
        "printf '#!/bin/sh\\nexit 0\\n' > /usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d",
    );
    run(&fleet, host, &[&gone, "-i", inventory], 0);
    host.ssh_ok("mv /srv/repo/converge-daemon_1.0-1_all.deb /srv/daemon.deb");
    let (code, _) = converge_json(&fleet, &[&quiet, "-i", inventory]);
    assert_eq!(code, 1);
    assert_eq!(
        host.ssh_ok("cat /usr/sbin/policy-rc.d; ls /usr/sbin | grep -c policy-rc.d"),
        "#!/bin/sh\nexit 0\n1"
    );

    // latest: a newer version published, the refresh finds it and it is installed;
    // then a pin takes it back down.
    publish(
        host,
        &[
            "converge-hello_1.0-1_all.deb",
            "converge-hello_1.0-2_all.deb",
        ],
    );
    host.ssh_ok("apt-get install -y -q converge-hello=1.0-1 >/dev/null");
    let latest = playbook(
        &fleet,
        "latest",
        "name: converge-hello, state: latest, update_cache: true, cache_valid_time: 0",
    );
    assert_eq!(
        run(&fleet, host, &[&latest, "-i", inventory], 0),
        [
            "packages: refresh apt's package lists",
            "packages: upgrade package converge-hello 1.0-1 -> newest",
        ]
    );
    assert_eq!(dpkg(host, "converge-hello"), "ii 1.0-2");
    let newest = playbook(&fleet, "newest", "name: converge-hello, state: latest");
    assert_eq!(
        no_change_commands(&fleet, host, &[&newest, "-i", inventory]),
        1
    );
    let pinned = playbook(&fleet, "pinned", "name: converge-hello, version: 1.0-1");
    assert_eq!(
        run(&fleet, host, &[&pinned, "-i", inventory], 0),
        ["packages: install package converge-hello 1.0-2 -> 1.0-1"]
    );
    assert_eq!(dpkg(host, "converge-hello"), "ii 1.0-1");
    assert!(run(&fleet, host, &[&pinned, "-i", inventory], 0).is_empty());

    // dpkg's lock, held by another program for a few seconds, is waited for.
    host.ssh_ok(HOLD_DPKG_LOCK);
    let started = Instant::now();
    assert_eq!(
        run(&fleet, host, &[&absent, "-i", inventory], 0),
        ["packages: remove package converge-hello 1.0-1"]
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(dpkg(host, "converge-hello"), "unknown");

    // A host without apt: the task fails saying so, and what the host is.
    host.ssh_ok("mv /usr/bin/apt-get /usr/bin/apt-get.away");
    let (code, report) = converge_json(&fleet, &[&hello, "-i", inventory, "--check"]);
    host.ssh_ok("mv /usr/bin/apt-get.away /usr/bin/apt-get");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        tasks_on(&report, &host.name)[0]["message"],
        "apt is not on this host (debian 12; no other package manager found): the package module installs with apt, on Debian and Ubuntu"
    );
}

/// Takes dpkg's frontend lock as apt does (an `fcntl` write lock), holds it for four
/// seconds in the background, and returns once it is held.
const HOLD_DPKG_LOCK: &str = r#"rm -f /tmp/locked; setsid perl -MFcntl -e '
open(my $f, ">>", "/var/lib/dpkg/lock-frontend") or die "open: $!";
my $lock = pack("s s x4 q q i x4", F_WRLCK, 0, 0, 0, 0);
fcntl($f, F_SETLKW, $lock) or die "lock: $!";
open(my $done, ">", "/tmp/locked") or die; close $done; sleep 4' </dev/null >/dev/null 2>&1 &
i=0; until [ -e /tmp/locked ]; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.1; done"#;

/// The status of each task, in order.
fn statuses(tasks: &[serde_json::Value]) -> Vec<&str> {
    tasks
        .iter()
        .map(|task| task["status"].as_str().unwrap())
        .collect()
}

/// A package's units and the users its maintainer scripts add cannot be known before it
/// is installed, nor the programs it ships: on a fresh host, --check lists the install and
/// marks the tasks that need them pending on it (exit 2, not 1); apply converges; then
/// --check finds nothing.
#[test]
fn check_mode_is_pending_on_a_new_packages_unit_and_user_and_apply_converges() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    host.ssh_ok(BUILD);
    publish(host, &["converge-kv_1.0-1_all.deb"]);
    let path = fleet.dir().join("kv.yml");
    std::fs::write(
        &path,
        "- hosts: app\n  tasks:\n    - name: kv package\n      package: { name: converge-kv, update_cache: true, cache_valid_time: 3600, start_services: false }\n    - name: kv config\n      file: { path: /etc/converge-kv.conf, content: \"port=7000\\n\", owner: converge-kv, mode: \"0640\" }\n    - name: kv service\n      service: { name: converge-kv, state: started, enabled: true }\n    - name: kv report unit\n      systemd_unit: { name: converge-kv-report.service, content: \"[Unit]\\nDescription=kv report\\n[Service]\\nType=oneshot\\nExecStart=/usr/bin/converge-kv\\n\" }\n",
    )
    .unwrap();
    let kv = path.to_str().unwrap();

    let (code, report) = converge_json(&fleet, &[kv, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    let tasks = tasks_on(&report, &host.name);
    assert_eq!(
        statuses(&tasks),
        ["changed", "pending", "pending", "pending"],
        "{report:#}"
    );
    assert_eq!(
        tasks[1]["message"],
        "depends on package converge-kv, not yet installed: user converge-kv does not exist yet"
    );
    assert_eq!(
        tasks[2]["message"],
        "depends on package converge-kv, not yet installed: unit converge-kv.service does not exist yet"
    );
    assert_eq!(
        tasks[3]["message"],
        "depends on package converge-kv, not yet installed: program /usr/bin/converge-kv does not exist yet"
    );
    assert_eq!(
        changes_on(&report, &host.name),
        [
            "kv package: refresh apt's package lists",
            "kv package: install package converge-kv (services not started)",
        ]
    );
    assert_eq!(stat(&report, &host.name, "pending"), 3);
    assert_eq!(dpkg(host, "converge-kv"), "unknown");

    let (code, report) = converge_json(&fleet, &[kv, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        statuses(&tasks_on(&report, &host.name)),
        ["changed", "changed", "changed", "changed"],
        "{report:#}"
    );
    assert_eq!(
        host.ssh_ok("stat -c '%U %a' /etc/converge-kv.conf; systemctl is-active converge-kv.service; ps -o user= -C sleep"),
        "converge-kv 640\nactive\nconverge-kv"
    );

    let (code, report) = converge_json(&fleet, &[kv, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");
    assert_eq!(stat(&report, &host.name, "pending"), 0);
}
