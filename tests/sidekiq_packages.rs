//! The flagship playbooks on fresh hosts, for real: `playbooks/sidekiq.yml` and
//! `playbooks/sidekiq-user.yml` install Redis and Sidekiq from Debian's package mirror,
//! configure Redis before it first starts, ship the application tree and its `current`
//! link, and run Sidekiq (as a system service, and in deploy's own manager), with no
//! `command` task. `--check` first lists every change the apply then makes, except those
//! of the tasks that need what the packages bring, which are `pending`; after the apply,
//! the Sidekiq process holds a connection Redis lists as a client, and processes a job; a
//! second run changes nothing, in one remote command.

mod fleet;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use fleet::{Fleet, TestHost};
use support::{assert_check_foresaw, changes_on, converge_json, stat, tasks_on};

const SOCKET: &str = "/run/redis/redis-server.sock";

/// The tasks that need what the packages bring (redis.conf, redis-server.service, the
/// redis group), but for the Sidekiq unit (`/usr/bin/sidekiq`): `pending` in `--check`
/// on a fresh host, changed by the apply.
const NEED_THE_PACKAGES: &[&str] = &[
    "redis listens on its socket only",
    "redis socket",
    "redis socket for the redis group only",
    "redis memory limit",
    "redis running",
    "deploy may use redis's socket",
];

/// The handler notified only by tasks that are pending in `--check`: in the apply alone.
const RESTART_REDIS: &str = "restart redis: restart redis-server.service";

/// An inventory of the fleet's hosts in group `app`, with no `sidekiq_exec`: the packaged
/// worker runs. Debian 11's Sidekiq (6.0.4) does not notify systemd: there, the unit is
/// `Type=simple`, as the playbooks' header says.
fn inventory(fleet: &Fleet) -> PathBuf {
    let path = fleet.write_inventory("app");
    if std::env::var("CONVERGE_RELEASE").as_deref() == Ok("bullseye") {
        let yaml = std::fs::read_to_string(&path).unwrap();
        let yaml = yaml.replacen("all:\n", "all:\n  vars:\n    sidekiq_notify: false\n", 1);
        std::fs::write(&path, yaml).unwrap();
    }
    path
}

/// `--check`, then apply, on the fresh `host`: check exits 2 and lists what the apply
/// does, the tasks of [`NEED_THE_PACKAGES`], `unit` (the Sidekiq unit's task) and the
/// handler restarting Sidekiq pending (and changed by the apply).
fn check_then_apply(fleet: &Fleet, host: &TestHost, playbook: &str, unit: &str) {
    // The handler restarting Sidekiq, notified by the tree, the link and the environment
    // file, needs the unit too.
    let need: Vec<&str> = NEED_THE_PACKAGES
        .iter()
        .copied()
        .chain([unit, "restart sidekiq"])
        .collect();
    let inventory = inventory(fleet);
    let args = [playbook, "-i", inventory.to_str().unwrap()];
    let (code, check) = converge_json(fleet, &[&args[..], &["--check"]].concat());
    assert_eq!(code, 2, "{check:#}");
    let pending: BTreeSet<&str> = tasks_on(&check, &host.name)
        .iter()
        .filter(|task| task["status"] == "pending")
        .map(|task| {
            let message = task["message"].as_str().unwrap();
            assert!(message.starts_with("depends on package "), "{message}");
            need.iter()
                .copied()
                .find(|name| task["task"] == *name)
                .unwrap_or_else(|| panic!("pending: {task:#}"))
        })
        .collect();
    assert_eq!(pending, need.iter().copied().collect(), "{check:#}");
    assert_eq!(stat(&check, &host.name, "failed"), 0, "{check:#}");

    let (code, apply) = converge_json(fleet, &args);
    assert_eq!(code, 0, "{apply:#}");
    assert!(assert_check_foresaw(&check, &apply, &host.name));
    // Notified only by pending tasks, so not foreseen: it restarts Redis once its
    // configuration is in place.
    assert!(
        changes_on(&apply, &host.name)
            .iter()
            .any(|change| change == RESTART_REDIS),
        "{apply:#}"
    );

    // Nothing left to do, found in one remote command.
    let (code, again) = converge_json(fleet, &args);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "changed"), 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "commands"), 1, "{again:#}");
}

/// The socket inodes the process `pid` holds open, by file descriptor.
fn sockets_of(host: &TestHost, pid: &str) -> BTreeMap<String, String> {
    host.ssh_ok(&format!(
        "cd /proc/{pid}/fd && for fd in *; do echo \"$fd $(readlink $fd)\"; done"
    ))
    .lines()
    .filter_map(|line| {
        let (fd, target) = line.split_once(' ')?;
        let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
        Some((fd.to_owned(), inode.to_owned()))
    })
    .collect()
}

/// How many of the clients Redis lists are connections of the process `sidekiq_pid` (a
/// client whose socket's other end the process holds), and the client list.
fn sidekiq_clients(host: &TestHost, sidekiq_pid: &str) -> (usize, String) {
    let redis_pid = host.ssh_ok("systemctl show -p MainPID --value redis-server");
    // Redis's end of each client connection: its file descriptor, in CLIENT LIST.
    let clients = host.ssh_ok(&format!("redis-cli -s {SOCKET} CLIENT LIST"));
    let redis_sockets = sockets_of(host, &redis_pid);
    let client_inodes: BTreeSet<&String> = clients
        .lines()
        .filter_map(|line| {
            let fd = line
                .split(' ')
                .find_map(|field| field.strip_prefix("fd="))?;
            redis_sockets.get(fd)
        })
        .collect();
    // Each Unix socket's peer, from the kernel: `ss -x` lists local and peer inodes.
    let peers: BTreeMap<String, String> = host
        .ssh_ok("ss -xH")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(((*fields.get(5)?).to_owned(), (*fields.get(7)?).to_owned()))
        })
        .collect();
    let sidekiq_sockets: BTreeSet<String> = sockets_of(host, sidekiq_pid).into_values().collect();
    let connected = client_inodes
        .iter()
        .filter(|inode| {
            peers
                .get(**inode)
                .is_some_and(|peer| sidekiq_sockets.contains(peer))
        })
        .count();
    (connected, clients)
}

/// Waits, at most a minute, until `done` says yes; `what` names it for the failure.
fn poll(what: &str, mut done: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match done() {
            Ok(()) => return,
            Err(state) => assert!(Instant::now() < deadline, "{what}: {state}"),
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Proves that the Sidekiq process `sidekiq_pid` is connected to the host's Redis and
/// processes a job. (The apply's last handler restarted Redis: Sidekiq may still be
/// connecting again, so both are waited for, boundedly.)
fn assert_sidekiq_works(host: &TestHost, sidekiq_pid: &str) {
    poll(
        &format!(
            "no client of Redis is Sidekiq (pid {sidekiq_pid}) on {}",
            host.name
        ),
        || match sidekiq_clients(host, sidekiq_pid) {
            (0, clients) => Err(clients),
            _ => Ok(()),
        },
    );

    // A job pushed as any Sidekiq client pushes it: the worker records its process ID.
    let job = r#"{"class":"MarkerJob","args":["packaged"],"queue":"default","jid":"0123456789abcdef01234567","retry":false,"created_at":1,"enqueued_at":1}"#;
    host.ssh_ok(&format!(
        "redis-cli -s {SOCKET} LPUSH queue:default '{job}' >/dev/null"
    ));
    poll(&format!("the job did not run on {}", host.name), || {
        let marker = host.ssh_ok(&format!("redis-cli -s {SOCKET} GET marker:packaged"));
        if marker == sidekiq_pid {
            Ok(())
        } else {
            Err(format!("marker {marker:?}"))
        }
    });
}

#[test]
fn sidekiq_system_service_from_packages_processes_a_job() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    check_then_apply(&fleet, host, "playbooks/sidekiq.yml", "sidekiq unit");
    assert_eq!(host.ssh_ok("readlink /opt/app/current"), "releases/1");
    assert_eq!(
        host.ssh_ok("systemctl show -p User --value sidekiq"),
        "deploy"
    );
    let pid = host.ssh_ok("systemctl show -p MainPID --value sidekiq");
    assert_sidekiq_works(host, &pid);
}

#[test]
fn sidekiq_user_service_from_packages_processes_a_job() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    check_then_apply(
        &fleet,
        host,
        "playbooks/sidekiq-user.yml",
        "sidekiq user unit",
    );
    assert_eq!(
        host.ssh_ok("loginctl show-user deploy -p Linger --value"),
        "yes"
    );
    let pid = host.ssh_ok(
        "runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$(id -u deploy) \
         systemctl --user show -p MainPID --value sidekiq",
    );
    assert_sidekiq_works(host, &pid);
}
