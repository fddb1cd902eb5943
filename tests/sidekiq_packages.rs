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

use std::collections::BTreeSet;

use fleet::{Fleet, TestHost};
use support::{assert_check_foresaw, changes_on, converge_json, sidekiq, stat, tasks_on};

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
    let inventory = sidekiq::inventory(fleet);
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

/// Proves that the Sidekiq process `sidekiq_pid` is connected to the host's Redis and
/// processes a job.
fn assert_sidekiq_works(host: &TestHost, sidekiq_pid: &str) {
    sidekiq::assert_connected_to_redis(host, sidekiq_pid);
    sidekiq::assert_runs_job(host, sidekiq_pid, "default", "packaged");
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
