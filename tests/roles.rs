//! Roles on real hosts: `playbooks/sidekiq-instances.yml` applies
//! `playbooks/roles/sidekiq` twice in one play (`default` and `mailers`), after its
//! dependency `roles/app` (Redis and Sidekiq from Debian's packages, the release, the
//! environment): both units run Debian's Sidekiq, each connected to Redis, and a job on
//! the `mailers` queue is run by the mailers instance; the deploy user may control both
//! and nothing else, `--check` on a fresh host foresees what apply does (but for the
//! tasks that need what the packages bring, pending), a second run changes nothing in
//! one command per host, and a new release restarts both; `--list-tasks` names each
//! role task's role. The same role in user scope (with a stand-in worker) runs both in
//! deploy's own manager. `import_tasks` and an `include_tasks` looping over a template
//! converge, are predicted by `--check`, and hold.

mod fleet;
mod support;

use fleet::{Fleet, TestHost, SUDO, VISUDO};
use support::sidekiq::{assert_connected_to_redis, assert_runs_job};
use support::{assert_check_foresaw, changes_on, converge_json, inventory, stat, text};

const INSTANCES: &str = "playbooks/sidekiq-instances.yml";

fn assert_instances_run(host: &TestHost) {
    for instance in ["default", "mailers"] {
        let unit = format!("sidekiq-{instance}.service");
        assert_eq!(
            host.ssh_ok(&format!("systemctl is-active {unit}")),
            "active"
        );
        assert_eq!(
            host.ssh_ok(&format!("systemctl is-enabled {unit}")),
            "enabled"
        );
        assert_eq!(
            host.ssh_ok(&format!("systemctl show -P User {unit}")),
            "deploy"
        );
    }
    let units = host.ssh_ok("cat /etc/systemd/system/sidekiq-default.service /etc/systemd/system/sidekiq-mailers.service");
    assert!(
        units.contains("Description=sidekiq default (default)"),
        "{units}"
    );
    assert!(
        units.contains("Description=sidekiq mailers (mailers)"),
        "{units}"
    );
    assert!(host.ssh_ok(&format!("{VISUDO} -c")).contains("parsed OK"));
}

/// The main process of the system unit `sidekiq-INSTANCE.service`, once it is
/// Debian's Sidekiq serving that instance's queue, connected to the host's Redis.
fn sidekiq_of(host: &TestHost, instance: &str) -> String {
    let unit = format!("sidekiq-{instance}.service");
    let exec = host.ssh_ok(&format!("systemctl show -P ExecStart {unit}"));
    assert!(
        exec.contains("path=/usr/bin/sidekiq ")
            && exec.contains("-r /opt/app/current/worker.rb")
            && exec.contains(&format!("-q {instance} ")),
        "{exec}"
    );
    let pid = host.ssh_ok(&format!("systemctl show -P MainPID {unit}"));
    assert_connected_to_redis(host, &pid);
    pid
}

fn assert_deploy_controls_exactly_both(host: &TestHost) {
    for allowed in [
        "/bin/systemctl restart sidekiq-default",
        "systemctl restart sidekiq-mailers.service",
        "systemctl status sidekiq-mailers.service",
    ] {
        host.ssh_ok(&format!(
            "runuser -u deploy -- {SUDO} -n {allowed} >/dev/null"
        ));
    }
    support::assert_sudo_refuses(
        host,
        "deploy",
        &[
            "systemctl restart ssh",
            "systemctl restart sidekiq-other",
            "systemctl kill sidekiq-default",
            "id",
        ],
    );
}

#[test]
fn one_role_twice_gives_two_working_sidekiqs_foreseen_then_held() {
    let Some(fleet) = Fleet::boot(2) else { return };
    // No `sidekiq_exec`: the role's own command, Debian's Sidekiq, runs.
    let inventory = support::sidekiq::inventory(&fleet);
    let inventory = inventory.to_str().unwrap();

    let (code, predicted) = converge_json(&fleet, &[INSTANCES, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{predicted:#}");
    let (code, applied) = converge_json(&fleet, &[INSTANCES, "-i", inventory]);
    assert_eq!(code, 0, "{applied:#}");
    for host in fleet.hosts() {
        assert!(assert_check_foresaw(&predicted, &applied, &host.name));
        let changes = changes_on(&applied, &host.name);
        for expected in [
            "app : application user: create user deploy",
            "sidekiq : system unit: start sidekiq-default.service",
            "sidekiq : system unit: start sidekiq-mailers.service",
            "sidekiq : let the application user control this instance: create /etc/sudoers.d/sidekiq-default (validated with visudo)",
            "sidekiq : let the application user control this instance: create /etc/sudoers.d/sidekiq-mailers (validated with visudo)",
        ] {
            assert!(changes.iter().any(|c| c == expected), "{expected}: {changes:#?}");
        }
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.starts_with("app : application user: "))
                .count(),
            1,
            "the dependency ran once: {changes:#?}"
        );
        assert_instances_run(host);
        assert_eq!(host.ssh_ok("readlink /opt/app/current"), "releases/1");
        let default = sidekiq_of(host, "default");
        let mailers = sidekiq_of(host, "mailers");
        assert_ne!(default, mailers);
        // Only the mailers instance listens on `mailers`: it runs the job.
        assert_runs_job(host, &mailers, "mailers", "mailers");
        assert_deploy_controls_exactly_both(host);
    }

    let (code, again) = converge_json(&fleet, &[INSTANCES, "-i", inventory]);
    assert_eq!(code, 0, "{again:#}");
    for host in fleet.hosts() {
        assert_eq!(changes_on(&again, &host.name), Vec::<String>::new());
        assert_eq!(stat(&again, &host.name, "changed"), 0);
        assert_eq!(stat(&again, &host.name, "commands"), 1, "{again:#}");
    }
    let output = fleet.converge(&[INSTANCES, "-i", inventory, "--check"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // The listing shows each role task with its role's name.
    let output = fleet.converge(&[INSTANCES, "-i", inventory, "--list-tasks"]);
    let listing = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        listing.matches("    sidekiq : system unit\n").count(),
        2,
        "{listing}"
    );
    assert!(
        listing.contains("    app : application user\n"),
        "{listing}"
    );

    // A new release, shipped once by the dependency, restarts both instances.
    let (code, next) = converge_json(&fleet, &[INSTANCES, "-i", inventory, "-e", "release=2"]);
    assert_eq!(code, 0, "{next:#}");
    for host in fleet.hosts() {
        let changes = changes_on(&next, &host.name);
        for instance in ["default", "mailers"] {
            let restart = format!("sidekiq : restart sidekiq: restart sidekiq-{instance}.service");
            assert!(changes.contains(&restart), "{restart}: {changes:#?}");
        }
        assert_eq!(host.ssh_ok("readlink /opt/app/current"), "releases/2");
    }
}

#[test]
fn included_tasks_loop_over_a_template_and_imported_ones_converge_on_a_real_host() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let dir = fleet.dir().join("reuse");
    std::fs::create_dir_all(dir.join("tasks")).unwrap();
    std::fs::write(
        dir.join("tasks/queue.yml"),
        "- file: { path: \"/etc/queues/{{ queue }}\", content: \"{{ queue }}\\n\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tasks/base.yml"),
        "- directory: { path: /etc/queues }\n",
    )
    .unwrap();
    let site = dir.join("site.yml");
    std::fs::write(
        &site,
        "- hosts: app\n  vars: { queues: [default, mailers, slow] }\n  tasks:\n    - import_tasks: tasks/base.yml\n    - include_tasks: tasks/queue.yml\n      loop: \"{{ queues }}\"\n      loop_control: { loop_var: queue }\n      when: queue != 'slow'\n",
    )
    .unwrap();
    let site = site.to_str().unwrap();
    let (code, predicted) = converge_json(&fleet, &[site, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{predicted:#}");
    let (code, applied) = converge_json(&fleet, &[site, "-i", inventory]);
    assert_eq!(code, 0, "{applied:#}");
    assert_eq!(
        changes_on(&predicted, &host.name),
        changes_on(&applied, &host.name)
    );
    assert_eq!(
        host.ssh_ok("ls /etc/queues | tr '\\n' ' '"),
        "default mailers"
    );
    let (code, again) = converge_json(&fleet, &[site, "-i", inventory]);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "changed"), 0, "{again:#}");
}

#[test]
fn the_role_in_user_scope_runs_both_in_deploys_manager() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let args = [INSTANCES, "-i", inventory, "-e", "sidekiq_scope=user"];
    let (code, report) = converge_json(&fleet, &args);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(host.ssh_ok("loginctl show-user deploy -P Linger"), "yes");
    for instance in ["default", "mailers"] {
        let active = host.ssh_ok(&format!(
            "runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$(id -u deploy) systemctl --user is-active sidekiq-{instance}.service"
        ));
        assert_eq!(active, "active", "{instance}");
    }
    assert!(!host
        .ssh("test -e /etc/sudoers.d/sidekiq-default")
        .status
        .success());
    let (code, again) = converge_json(&fleet, &args);
    assert_eq!(code, 0, "{again:#}");
    assert_eq!(stat(&again, &host.name, "changed"), 0, "{again:#}");
}
