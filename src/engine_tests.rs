//! The engine against scripted hosts ([`FakeHost`]): what it reads, plans, changes and
//! reports, without root, containers or a network.
//!
//! Every test goes through [`converge`], the one place that knows the engine's entry
//! points, so a change of their signatures changes one function.

use std::convert::Infallible;
use std::path::Path;

use serde_json::json;

use crate::engine::{self, HostRun, HostStats, Options, PlayOutcome, Status, TaskOutcome};
use crate::inventory::{Inventory, Vars};
use crate::playbook::Playbook;
use crate::run::{self, Cast};
use crate::transport::fake::{FakeHost, Sent};
use converge_modules::paths::PathKey;
use converge_modules::FactKey;

/// What a run did.
struct Run {
    plays: Vec<PlayOutcome>,
    stats: Vec<HostStats>,
}

impl Run {
    /// The outcomes of `host`'s tasks and handlers in every play, in order.
    fn tasks(&self, host: &str) -> Vec<&TaskOutcome> {
        self.plays
            .iter()
            .flat_map(|play| &play.hosts)
            .filter(|play| play.host == host)
            .flat_map(|play| &play.tasks)
            .collect()
    }

    /// `host`'s task statuses, in order.
    fn statuses(&self, host: &str) -> Vec<Status> {
        self.tasks(host).iter().map(|task| task.status).collect()
    }

    /// Every change line reported for `host`.
    fn changes(&self, host: &str) -> Vec<String> {
        self.tasks(host)
            .iter()
            .flat_map(|task| task.changes.clone())
            .collect()
    }

    fn stats(&self, host: &str) -> &HostStats {
        self.stats
            .iter()
            .find(|stats| stats.host == host)
            .expect("the host is in the run")
    }
}

/// How a test runs the engine.
#[derive(Default)]
struct Mode {
    check: bool,
    extra_vars: Vars,
    tags: Vec<String>,
    /// Every host's inventory variables.
    inventory_vars: Vars,
}

fn apply() -> Mode {
    Mode::default()
}

fn check() -> Mode {
    Mode {
        check: true,
        ..Mode::default()
    }
}

/// Runs `playbook` on `hosts` (inventory name, fake host) as the binary does: input
/// checked first, plays in order, locks given back, counts per host.
fn converge(playbook: &str, hosts: &[(&str, &FakeHost)], mode: Mode) -> Run {
    let playbook = Playbook::parse(playbook, Path::new("site.yml")).expect("the playbook parses");
    converge_playbook(&playbook, hosts, mode)
}

/// Runs a loaded playbook as [`converge`] does.
fn converge_playbook(playbook: &Playbook, hosts: &[(&str, &FakeHost)], mode: Mode) -> Run {
    let names: Vec<&str> = hosts.iter().map(|(name, _)| *name).collect();
    let inventory = Inventory::from_host_list(&names.join(",")).expect("host names are valid");
    let Cast {
        hosts: mut runs,
        plays,
    } = run::cast(playbook, &inventory, |host| {
        let (name, fake) = hosts
            .iter()
            .find(|(name, _)| *name == host.name)
            .expect("every inventory host is a fake one");
        Ok::<_, Infallible>(HostRun::new(
            (*name).to_owned(),
            fake.target(name),
            mode.inventory_vars.clone(),
        ))
    })
    .unwrap_or_else(|never| match never {});
    let options = Options {
        check: mode.check,
        forks: 4,
        tags: crate::playbook::TagFilter::only(mode.tags),
        extra_vars: mode.extra_vars,
        ..Options::default()
    };
    engine::check_inputs(playbook, &plays, &runs, &options).expect("the input is valid");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.forks)
        .build()
        .expect("a small pool builds");
    let outcomes: Vec<PlayOutcome> = plays
        .iter()
        .map(|(index, members)| {
            engine::run_play(&playbook.plays[*index], members, &mut runs, &options, &pool)
        })
        .collect();
    engine::release_locks(&mut runs, &pool);
    let stats = engine::stats(&runs, &outcomes);
    Run {
        plays: outcomes,
        stats,
    }
}

/// One host called `web1`.
fn on_one(playbook: &str, host: &FakeHost, mode: Mode) -> Run {
    converge(playbook, &[("web1", host)], mode)
}

const ONE_FILE: &str = r#"
- hosts: all
  tasks:
    - name: app config
      file:
        path: /etc/app.conf
        content: "port=80\n"
        mode: "0644"
"#;

fn content(host: &FakeHost, path: &str) -> Option<String> {
    host.model()
        .files
        .get(path)
        .map(|file| String::from_utf8_lossy(&file.content).into_owned())
}

fn applies(host: &FakeHost) -> usize {
    host.sent()
        .iter()
        .filter(|sent| matches!(sent, Sent::Apply { .. }))
        .count()
}

/// Whom sudo ran each change command as (`None`: the login user), in order.
fn sudo_users(host: &FakeHost) -> Vec<Option<String>> {
    host.sent()
        .into_iter()
        .filter_map(|sent| match sent {
            Sent::Apply { sudo, .. } => Some(sudo),
            Sent::Read { .. } => None,
        })
        .collect()
}

fn converged_host() -> FakeHost {
    FakeHost::new().with_file("/etc/app.conf", "port=80\n", 0o644)
}

// --- Reads and round trips ---------------------------------------------------------

#[test]
fn a_run_with_nothing_to_change_is_one_round_trip_per_host() {
    let (a, b) = (converged_host(), converged_host());
    let run = converge(ONE_FILE, &[("web1", &a), ("web2", &b)], apply());
    for (name, host) in [("web1", &a), ("web2", &b)] {
        assert_eq!(run.statuses(name), [Status::Ok]);
        assert_eq!(host.sent().len(), 1, "{:?}", host.sent());
        assert_eq!(run.stats(name).commands, 1);
    }
}

#[test]
fn the_one_read_holds_every_tasks_facts() {
    let host = FakeHost::new()
        .with_file("/etc/a.conf", "a\n", 0o644)
        .with_file("/etc/b.conf", "b\n", 0o644)
        .with_unit("app.service", true, true);
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
    - file: { path: /etc/b.conf, content: "b\n" }
    - service: { name: app.service, state: started, enabled: true }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ok; 3]);
    let reads = host.reads();
    assert_eq!(reads.len(), 1);
    for key in [
        FactKey::System,
        FactKey::Paths(PathKey::Content("/etc/a.conf".into())),
        FactKey::Paths(PathKey::Content("/etc/b.conf".into())),
    ] {
        assert!(reads[0].contains(&key), "{key} missing from {:?}", reads[0]);
    }
}

#[test]
fn gathered_facts_join_the_one_read_and_reach_templates_unless_turned_off() {
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file:
        path: /etc/m.conf
        content: "{{ converge_architecture }}/{{ converge_cpu_count }}/{{ converge_memory_mb }}/{{ converge_os_family }}\n"
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert!(host.reads()[0].contains(&FactKey::Machine));
    assert_eq!(
        content(&host, "/etc/m.conf").as_deref(),
        Some("x86_64/2/2048/debian\n")
    );

    let host = FakeHost::new();
    let run = on_one(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - file: { path: /etc/m.conf, content: \"m\\n\" }\n",
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert!(
        !host
            .reads()
            .iter()
            .flatten()
            .any(|key| *key == FactKey::Machine),
        "not read"
    );
}

#[test]
fn a_run_with_nothing_to_change_costs_one_read_which_takes_the_lock() {
    let host = converged_host();
    let run = on_one(ONE_FILE, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Ok]);
    let sent = host.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(matches!(sent[0], Sent::Read { locked: true, .. }));
    assert!(!host.model().lock_held, "the lock is given back at the end");
}

#[test]
fn changes_are_made_under_the_lock_the_first_read_took_and_confirmed_by_a_read_at_the_scripts_end()
{
    let host = FakeHost::new();
    let run = on_one(ONE_FILE, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert!(run.tasks("web1")[0].warnings.is_empty());
    let sent = host.sent();
    assert!(
        matches!(sent[0], Sent::Read { locked: true, .. }),
        "{sent:?}"
    );
    assert!(
        matches!(&sent[1], Sent::Apply { read: Some(keys), .. } if keys.contains(&FactKey::Paths(PathKey::Path("/etc/app.conf".into())))),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 2);
    assert!(!host.model().lock_held, "the lock is given back at the end");
}

#[test]
fn a_read_at_a_scripts_end_that_fails_is_made_again_on_its_own_and_fails_no_change() {
    let host = FakeHost::new().failing_on("converge-facts");
    let run = on_one(ONE_FILE, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert!(run.tasks("web1")[0].warnings.is_empty());
    let sent = host.sent();
    assert!(
        matches!(sent[1], Sent::Apply { read: None, .. }),
        "{sent:?}"
    );
    assert!(
        matches!(&sent[2], Sent::Read { locked: false, keys } if keys.contains(&FactKey::Paths(PathKey::Path("/etc/app.conf".into())))),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 3);
    assert_eq!(
        content(&host, "/etc/app.conf").as_deref(),
        Some("port=80\n")
    );
}

#[test]
fn a_host_locked_by_another_run_fails_and_the_others_converge() {
    let locked = FakeHost::new();
    locked.model().locked_by = Some("ops@laptop since 2026-01-01T00:00:00Z".into());
    let free = FakeHost::new();
    let run = converge(ONE_FILE, &[("web1", &locked), ("web2", &free)], apply());
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    let message = run.tasks("web1")[0].message.clone().unwrap_or_default();
    assert!(message.contains("ops@laptop"), "{message}");
    assert_eq!(applies(&locked), 0);
    assert_eq!(run.statuses("web2"), [Status::Changed]);
    assert_eq!(
        content(&free, "/etc/app.conf").as_deref(),
        Some("port=80\n")
    );
}

#[test]
fn changes_to_unrelated_files_cost_no_read_between_them() {
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
    - file: { path: /etc/b.conf, content: "b\n" }
    - file: { path: /etc/c.conf, content: "c\n" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed; 3]);
    // The first read, then one script: the three writes and the read that confirms them.
    assert_eq!(host.sent().len(), 2, "{:?}", host.sent());
    assert_eq!(host.reads().len(), 2, "{:?}", host.sent());
    assert_eq!(applies(&host), 1, "{:?}", host.sent());
    assert_eq!(host.applied().len(), 3);
}

#[test]
fn a_task_is_planned_against_what_the_tasks_before_it_will_have_done() {
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/app.conf, content: "x\n", mode: "0644" }
    - file: { path: /etc/app.conf, mode: "0600" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed, Status::Changed]);
    // Planned against the file the first task writes, the second only changes its
    // mode; both go in one script.
    assert_eq!(run.changes("web1").len(), 2, "{:?}", run.changes("web1"));
    assert_eq!(applies(&host), 1, "{:?}", host.sent());
    assert_eq!(host.model().files["/etc/app.conf"].mode, 0o600);
    assert!(run
        .tasks("web1")
        .iter()
        .all(|task| task.warnings.is_empty()));
}

#[test]
fn a_registered_command_ends_the_script_and_what_follows_is_planned_against_a_new_read() {
    let host = FakeHost::new().printing("cat /etc/app.conf", "x");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/app.conf, content: "x\n", mode: "0644" }
    - command: { cmd: "cat /etc/app.conf" }
      register: shown
    - file: { path: /etc/app.conf, mode: "0600" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed; 3]);
    let sent = host.sent();
    let kinds: Vec<&str> = sent
        .iter()
        .map(|sent| match sent {
            Sent::Read { .. } => "read",
            Sent::Apply { read: None, .. } => "apply",
            Sent::Apply { read: Some(_), .. } => "apply, read",
        })
        .collect();
    // The registered command ends the first script, after the write: its output is
    // known at once, and the read at the script's end that confirms the write also
    // reads what the last task needs; that task's change goes in a script of its own,
    // confirmed in turn.
    assert_eq!(kinds, ["read", "apply, read", "apply, read"], "{sent:?}");
    assert_eq!(host.applied().len(), 3, "{sent:?}");
    assert_eq!(host.model().files["/etc/app.conf"].mode, 0o600);
}

#[test]
fn a_failed_change_in_a_script_fails_its_task_and_what_was_planned_after_it_never_ran() {
    let host = FakeHost::new().failing_on("b.conf");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
      notify: reload a
    - name: b
      file: { path: /etc/b.conf, content: "b\n" }
    - file: { path: /etc/c.conf, content: "c\n" }
      notify: reload c
  handlers:
    - name: reload a
      file: { path: /etc/a.reloaded, content: "x\n" }
    - name: reload c
      file: { path: /etc/c.reloaded, content: "x\n" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed, Status::Failed]);
    let failed = run.tasks("web1")[1];
    assert_eq!(failed.task, "b");
    assert_eq!(failed.changes.len(), 1, "{:?}", failed.changes);
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("scripted failure"),
        "{:?}",
        failed.message
    );
    assert_eq!(content(&host, "/etc/a.conf").as_deref(), Some("a\n"));
    for never in ["/etc/c.conf", "/etc/a.reloaded", "/etc/c.reloaded"] {
        assert!(content(&host, never).is_none(), "{never}");
    }
    assert_eq!(applies(&host), 1, "{:?}", host.sent());
    assert_eq!(run.stats("web1").failed, 1);
}

#[test]
fn a_task_as_another_user_ends_the_script_before_it() {
    let host = FakeHost::new();
    host.model().users.insert(
        "deploy".to_owned(),
        crate::transport::fake::User {
            uid: 1000,
            home: "/home/deploy".to_owned(),
            shell: "/bin/bash".to_owned(),
            groups: Vec::new(),
        },
    );
    host.model().dirs.insert(
        "/home/deploy".to_owned(),
        ("deploy".to_owned(), "deploy".to_owned(), 0o755),
    );
    let run = on_one(
        r#"
- hosts: all
  become: true
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
    - file: { path: /home/deploy/b.conf, content: "b\n" }
      become_user: deploy
    - file: { path: /etc/c.conf, content: "c\n" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed; 3]);
    let sudo: Vec<Option<String>> = host
        .sent()
        .into_iter()
        .filter_map(|sent| match sent {
            Sent::Apply { sudo, .. } => Some(sudo),
            Sent::Read { .. } => None,
        })
        .collect();
    // The login is root: only deploy's task goes through sudo.
    assert_eq!(sudo, [None, Some("deploy".to_owned()), None]);
}

#[test]
fn a_change_that_did_not_take_is_found_by_the_confirming_read() {
    let host = FakeHost::new().ignoring("app.conf");
    let run = on_one(ONE_FILE, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    let warnings = &run.tasks("web1")[0].warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("not as predicted") && warnings[0].contains("/etc/app.conf"),
        "{warnings:?}"
    );
}

#[test]
fn a_tasks_changes_go_to_the_host_as_one_command() {
    let host = FakeHost::new().with_unit("app.service", false, false);
    let run = on_one(
        "
- hosts: all
  tasks:
    - service: { name: app.service, state: started, enabled: true }
",
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert_eq!(applies(&host), 1, "{:?}", host.sent());
    assert_eq!(host.applied().len(), 2);
    let unit = &host.model().units["app.service"];
    assert!(unit.active && unit.enabled);
}

// --- Check mode ----------------------------------------------------------------------

#[test]
fn check_mode_changes_nothing() {
    let host = FakeHost::new();
    let run = on_one(ONE_FILE, &host, check());
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert_eq!(applies(&host), 0);
    assert!(host.model().files.is_empty());
    assert_eq!(run.stats("web1").changed, 1);
}

#[test]
fn check_mode_reads_under_the_lock_and_gives_it_back() {
    let host = FakeHost::new();
    on_one(ONE_FILE, &host, check());
    assert!(matches!(host.sent()[0], Sent::Read { locked: true, .. }));
    assert!(!host.model().lock_held);
}

const SERVER: &str = r#"
- hosts: all
  tasks:
    - name: app directory
      directory: { path: /opt/app, mode: "0755" }
    - name: app config
      file: { path: /opt/app/app.conf, content: "port=80\n", mode: "0640" }
    - name: deploy user
      user: { name: deploy, shell: /bin/bash }
    - name: app service
      service: { name: app.service, state: started, enabled: true }
"#;

#[test]
fn check_mode_reports_the_changes_apply_makes() {
    let server = || FakeHost::new().with_unit("app.service", false, false);
    let (checked, applied) = (server(), server());
    let check_run = on_one(SERVER, &checked, check());
    let apply_run = on_one(SERVER, &applied, apply());
    assert_eq!(check_run.statuses("web1"), apply_run.statuses("web1"));
    assert_eq!(check_run.changes("web1"), apply_run.changes("web1"));
    assert_eq!(
        check_run.changes("web1"),
        [
            "create directory /opt/app",
            "create /opt/app/app.conf",
            "create user deploy",
            "enable app.service",
            "start app.service",
        ]
    );
}

#[test]
fn after_apply_check_mode_finds_no_drift() {
    let host = FakeHost::new().with_unit("app.service", false, false);
    on_one(SERVER, &host, apply());
    let run = on_one(SERVER, &host, check());
    assert_eq!(run.statuses("web1"), [Status::Ok; 4]);
    assert_eq!(run.stats("web1").changed, 0);
}

#[test]
fn a_second_apply_changes_nothing_in_one_round_trip() {
    let host = FakeHost::new().with_unit("app.service", false, false);
    on_one(SERVER, &host, apply());
    let before = host.sent().len();
    let run = on_one(SERVER, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Ok; 4]);
    assert_eq!(host.sent().len() - before, 1);
}

#[test]
fn check_mode_plans_later_tasks_against_earlier_predictions() {
    // The user does not exist yet: without the first task's predicted effect, a file
    // owned by that user could not be planned.
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - user: { name: deploy }
    - file: { path: /etc/app.conf, content: "x\n", owner: deploy }
"#,
        &host,
        check(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Changed],
        "{:?}",
        run.tasks("web1")
    );
    assert_eq!(applies(&host), 0);
}

#[test]
fn check_mode_predicts_a_file_it_would_write() {
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/app.conf, content: "x\n" }
    - file: { path: /etc/app.conf, content: "x\n" }
"#,
        &host,
        check(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed, Status::Ok]);
}

// --- Handlers ------------------------------------------------------------------------

const WITH_HANDLER: &str = r#"
- hosts: all
  tasks:
    - name: app config
      file: { path: /etc/app.conf, content: "port=80\n", mode: "0644" }
      notify: restart app
    - name: other config
      file: { path: /etc/other.conf, content: "x\n", mode: "0644" }
      notify: restart app
  handlers:
    - name: restart app
      service: { name: app.service, state: restarted }
"#;

fn restarts(host: &FakeHost) -> usize {
    host.applied()
        .iter()
        .filter(|argv| argv.iter().any(|word| word == "restart"))
        .count()
}

#[test]
fn a_notified_handler_runs_after_the_tasks() {
    let host = FakeHost::new()
        .with_file("/etc/other.conf", "x\n", 0o644)
        .with_unit("app.service", true, true);
    let run = on_one(WITH_HANDLER, &host, apply());
    let tasks = run.tasks("web1");
    assert_eq!(tasks.len(), 3);
    assert!(tasks[2].handler);
    assert_eq!(tasks[2].status, Status::Changed);
    assert_eq!(restarts(&host), 1);
}

#[test]
fn a_handler_nobody_notified_does_not_run() {
    let host = FakeHost::new()
        .with_file("/etc/app.conf", "port=80\n", 0o644)
        .with_file("/etc/other.conf", "x\n", 0o644)
        .with_unit("app.service", true, true);
    let run = on_one(WITH_HANDLER, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Ok, Status::Ok]);
    assert_eq!(restarts(&host), 0);
}

#[test]
fn a_handler_notified_twice_runs_once() {
    let host = FakeHost::new().with_unit("app.service", true, true);
    let run = on_one(WITH_HANDLER, &host, apply());
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Changed, Status::Changed]
    );
    assert_eq!(
        run.tasks("web1").iter().filter(|task| task.handler).count(),
        1
    );
    assert_eq!(restarts(&host), 1);
}

#[test]
fn check_mode_reports_the_handler_without_running_it() {
    let host = FakeHost::new().with_unit("app.service", true, true);
    let run = on_one(WITH_HANDLER, &host, check());
    assert_eq!(
        run.tasks("web1").iter().filter(|task| task.handler).count(),
        1
    );
    assert_eq!(restarts(&host), 0);
}

// --- Failures ------------------------------------------------------------------------

#[test]
fn a_failed_task_stops_its_host_and_the_others_converge() {
    let broken = FakeHost::new().failing_on("a.conf");
    let healthy = FakeHost::new();
    let playbook = r#"
- hosts: all
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
    - file: { path: /etc/b.conf, content: "b\n" }
"#;
    let run = converge(playbook, &[("web1", &broken), ("web2", &healthy)], apply());
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    assert!(run.tasks("web1")[0]
        .message
        .as_deref()
        .is_some_and(|message| message.contains("scripted failure")));
    assert!(content(&broken, "/etc/b.conf").is_none());
    assert_eq!(run.statuses("web2"), [Status::Changed, Status::Changed]);
    assert_eq!(run.stats("web1").failed, 1);
}

#[test]
fn an_unreachable_host_is_recorded_and_the_others_converge() {
    let gone = FakeHost::new();
    gone.model().unreachable = true;
    let healthy = FakeHost::new();
    let run = converge(ONE_FILE, &[("web1", &gone), ("web2", &healthy)], apply());
    assert_eq!(run.statuses("web1"), [Status::Unreachable]);
    assert_eq!(run.stats("web1").unreachable, 1);
    assert!(gone.sent().is_empty());
    assert_eq!(run.statuses("web2"), [Status::Changed]);
}

#[test]
fn a_host_that_failed_is_left_out_of_later_plays() {
    let broken = FakeHost::new().failing_on("app.conf");
    let healthy = FakeHost::new();
    let playbook = format!(
        "{ONE_FILE}\n- hosts: all\n  tasks:\n    - file: {{ path: /etc/motd, content: \"hi\\n\" }}\n"
    );
    let run = converge(&playbook, &[("web1", &broken), ("web2", &healthy)], apply());
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    assert_eq!(run.statuses("web2"), [Status::Changed, Status::Changed]);
    assert!(content(&broken, "/etc/motd").is_none());
}

#[test]
fn a_failed_handler_fails_its_host() {
    let host = FakeHost::new()
        .with_unit("app.service", true, true)
        .failing_on("restart");
    let run = on_one(WITH_HANDLER, &host, apply());
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Changed, Status::Failed]
    );
    assert_eq!(run.stats("web1").failed, 1);
}

// --- Rolling plays -------------------------------------------------------------------

fn fleet(count: usize) -> Vec<(String, FakeHost)> {
    (1..=count)
        .map(|index| (format!("web{index}"), FakeHost::new()))
        .collect()
}

fn rolling(header: &str, hosts: &[(String, FakeHost)]) -> Run {
    let playbook = format!(
        "- hosts: all\n{header}  tasks:\n    - file: {{ path: /etc/app.conf, content: \"x\\n\" }}\n"
    );
    let hosts: Vec<(&str, &FakeHost)> = hosts
        .iter()
        .map(|(name, host)| (name.as_str(), host))
        .collect();
    converge(&playbook, &hosts, apply())
}

#[test]
fn serial_runs_the_hosts_in_batches() {
    let hosts = fleet(3);
    let run = rolling("  serial: 1\n", &hosts);
    let rollout = run.plays[0].rollout.as_ref().expect("a rolling play");
    let batches: Vec<Vec<String>> = rollout
        .batches
        .iter()
        .map(|batch| batch.hosts.clone())
        .collect();
    assert_eq!(batches, [["web1"], ["web2"], ["web3"]]);
    assert!(rollout.stopped.is_none());
    for (name, _) in &hosts {
        assert_eq!(run.statuses(name), [Status::Changed]);
    }
}

#[test]
fn a_failing_batch_stops_the_rollout() {
    let hosts = fleet(3);
    hosts[0].1.model().failing.push("app.conf".into());
    let run = rolling("  serial: 1\n", &hosts);
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    for (name, host) in &hosts[1..] {
        assert_eq!(run.statuses(name), [Status::Skipped]);
        assert!(host.sent().is_empty(), "{name} was never contacted");
    }
    let rollout = run.plays[0].rollout.as_ref().expect("a rolling play");
    assert!(rollout.stopped.is_some());
    assert!(!rollout.batches[1].ran);
}

#[test]
fn max_fail_percentage_lets_a_rollout_go_on_within_it() {
    let hosts = fleet(4);
    hosts[0].1.model().failing.push("app.conf".into());
    let run = rolling("  serial: 2\n  max_fail_percentage: 50\n", &hosts);
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    for name in ["web2", "web3", "web4"] {
        assert_eq!(run.statuses(name), [Status::Changed], "{name}");
    }
}

#[test]
fn max_fail_percentage_stops_a_rollout_beyond_it() {
    let hosts = fleet(4);
    hosts[0].1.model().failing.push("app.conf".into());
    let run = rolling("  serial: 2\n  max_fail_percentage: 40\n", &hosts);
    assert_eq!(run.statuses("web2"), [Status::Changed]);
    for (name, host) in &hosts[2..] {
        assert_eq!(run.statuses(name), [Status::Skipped], "{name}");
        assert!(host.sent().is_empty());
    }
}

// --- Conditions, tags, variables -----------------------------------------------------

#[test]
fn a_task_whose_when_is_false_is_skipped() {
    let host = FakeHost::new();
    let mut mode = apply();
    mode.extra_vars.insert("install".into(), json!("no"));
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
      when: install == "yes"
    - file: { path: /etc/b.conf, content: "b\n" }
      when: install == "no"
"#,
        &host,
        mode,
    );
    assert_eq!(run.statuses("web1"), [Status::Skipped, Status::Changed]);
    assert!(content(&host, "/etc/a.conf").is_none());
    assert_eq!(run.stats("web1").skipped, 1);
}

#[test]
fn only_tagged_tasks_run_under_tags() {
    let host = FakeHost::new();
    let mode = Mode {
        tags: vec!["config".into()],
        ..Mode::default()
    };
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
    - file: { path: /etc/b.conf, content: "b\n" }
      tags: [config]
"#,
        &host,
        mode,
    );
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert!(content(&host, "/etc/a.conf").is_none());
    assert_eq!(content(&host, "/etc/b.conf").as_deref(), Some("b\n"));
}

#[test]
fn templates_are_rendered_per_host() {
    let (a, b) = (FakeHost::new(), FakeHost::new());
    converge(
        r#"
- hosts: all
  vars:
    greeting: hello
  tasks:
    - file: { path: /etc/motd, content: "{{ greeting }} from {{ inventory_hostname }}\n" }
"#,
        &[("web1", &a), ("web2", &b)],
        apply(),
    );
    assert_eq!(
        content(&a, "/etc/motd").as_deref(),
        Some("hello from web1\n")
    );
    assert_eq!(
        content(&b, "/etc/motd").as_deref(),
        Some("hello from web2\n")
    );
}

#[test]
fn a_play_runs_only_on_the_hosts_it_names() {
    let (a, b) = (FakeHost::new(), FakeHost::new());
    let run = converge(
        &ONE_FILE.replace("hosts: all", "hosts: web2"),
        &[("web1", &a), ("web2", &b)],
        apply(),
    );
    assert!(run.tasks("web1").is_empty());
    assert!(a.sent().is_empty());
    assert_eq!(run.statuses("web2"), [Status::Changed]);
}

#[test]
fn a_command_runs_unless_its_probe_succeeds() {
    let playbook = r#"
- hosts: all
  tasks:
    - command: { cmd: "make install", unless: "test -x /usr/local/bin/app" }
"#;
    let fresh = FakeHost::new();
    let installed = FakeHost::new();
    installed
        .model()
        .probes
        .insert("test -x /usr/local/bin/app".into(), 0);
    let run = converge(playbook, &[("web1", &fresh), ("web2", &installed)], apply());
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert!(fresh
        .applied()
        .iter()
        .any(|argv| argv.iter().any(|word| word == "make install")));
    assert_eq!(run.statuses("web2"), [Status::Ok]);
    assert_eq!(installed.sent().len(), 1);
}

// --- no_log --------------------------------------------------------------------------

#[test]
fn no_log_keeps_a_secret_out_of_outcomes() {
    let host = FakeHost::new().with_file("/etc/app.key", "old-secret\n", 0o600);
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - name: api key
      file: { path: /etc/app.key, content: "new-secret\n", mode: "0600" }
      no_log: true
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    let report = serde_json::to_string(&run.plays).expect("outcomes serialize");
    assert!(!report.contains("secret"), "{report}");
    assert_eq!(run.changes("web1"), ["1 changes (hidden: no_log)"]);
    assert_eq!(
        content(&host, "/etc/app.key").as_deref(),
        Some("new-secret\n")
    );
}

#[test]
fn no_log_hides_a_failures_details() {
    let host = FakeHost::new().failing_on("app.key");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - name: api key
      file: { path: /etc/app.key, content: "s3cr3t\n" }
      no_log: true
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    let report = serde_json::to_string(&run.plays).expect("outcomes serialize");
    assert!(
        !report.contains("s3cr3t") && !report.contains("scripted failure"),
        "{report}"
    );
}

#[test]
fn a_diff_shows_what_a_file_held_before() {
    let host = FakeHost::new().with_file("/etc/app.conf", "port=8080\n", 0o644);
    let run = on_one(ONE_FILE, &host, apply());
    let diffs = &run.tasks("web1")[0].diffs;
    assert_eq!(diffs.len(), 1);
    assert_eq!(diffs[0].before.as_deref(), Some("port=8080\n"));
    assert_eq!(diffs[0].after, "port=80\n");
}

#[test]
fn become_runs_changes_through_sudo_and_reads_as_the_login() {
    let host = FakeHost::new();
    host.model().login = "ops".into();
    let run = on_one(
        &ONE_FILE.replace("- hosts: all\n", "- hosts: all\n  become: true\n"),
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Changed]);
    assert_eq!(sudo_users(&host), [Some("root".to_owned())]);
    assert_eq!(
        content(&host, "/etc/app.conf").as_deref(),
        Some("port=80\n")
    );
}

#[test]
fn any_errors_fatal_calls_off_the_rest_of_the_rollout() {
    let (broken, healthy) = (FakeHost::new().failing_on("a.conf"), FakeHost::new());
    // One failure calls the rollout off: the next batch never starts.
    let run = converge(
        r#"
- hosts: all
  serial: 1
  any_errors_fatal: true
  tasks:
    - file: { path: /etc/a.conf, content: "a\n" }
"#,
        &[("web1", &broken), ("web2", &healthy)],
        apply(),
    );
    assert_eq!(run.statuses("web2"), [Status::Skipped]);
    assert!(healthy.sent().is_empty());
    assert!(run.plays[0]
        .rollout
        .as_ref()
        .is_some_and(|rollout| rollout.stopped.is_some()));
}

// --- Pending on a planned change -------------------------------------------------------

const PACKAGE_THEN_ITS_UNIT_AND_USER: &str = r#"
- hosts: all
  tasks:
    - package: { name: redis-server }
    - service: { name: redis-server, state: started, enabled: true }
    - file: { path: /etc/app.conf, content: "port=80\n", owner: redis, mode: "0640" }
    - file: { path: /etc/other.conf, content: "x\n", mode: "0644" }
"#;

#[test]
fn check_mode_marks_what_a_planned_package_would_provide_pending_and_goes_on() {
    let host = FakeHost::new().with_package_available("redis-server", "5:7.0.15-1");
    let run = on_one(PACKAGE_THEN_ITS_UNIT_AND_USER, &host, check());
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Pending,
            Status::Pending,
            Status::Changed
        ]
    );
    let tasks = run.tasks("web1");
    assert_eq!(
        tasks[1].message.as_deref(),
        Some("depends on package redis-server, not yet installed: unit redis-server.service does not exist yet")
    );
    assert_eq!(
        tasks[2].message.as_deref(),
        Some("depends on package redis-server, not yet installed: user redis does not exist yet")
    );
    let stats = run.stats("web1");
    assert_eq!((stats.changed, stats.pending, stats.failed), (2, 2, 0));
    assert_eq!(applies(&host), 0);
}

#[test]
fn a_missing_unit_with_no_planned_package_still_fails_in_check_mode() {
    let playbook = r"
- hosts: all
  tasks:
    - service: { name: redis-server, state: started }
";
    let run = on_one(playbook, &FakeHost::new(), check());
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    assert_eq!(
        run.tasks("web1")[0].message.as_deref(),
        Some("unit redis-server.service does not exist on the host (install it with systemd_unit, or the package that ships it, in an earlier task)")
    );
}

#[test]
fn a_task_pending_on_a_command_in_check_mode_fails_in_apply_when_the_command_did_not_provide() {
    let playbook = r#"
- hosts: all
  tasks:
    - command: { cmd: "make install" }
    - file: { path: /etc/app.conf, content: "port=80\n", owner: app }
"#;
    let check_run = on_one(playbook, &FakeHost::new(), check());
    assert_eq!(
        check_run.statuses("web1"),
        [Status::Changed, Status::Pending]
    );
    assert_eq!(
        check_run.tasks("web1")[1].message.as_deref(),
        Some("depends on command `make install`, not yet run: user app does not exist yet")
    );
    // Apply plans against what the host really is once the command ran.
    let apply_run = on_one(playbook, &FakeHost::new(), apply());
    assert_eq!(
        apply_run.statuses("web1"),
        [Status::Changed, Status::Failed]
    );
    assert_eq!(apply_run.stats("web1").pending, 0);
}

// Logic on results, loops and blocks.
mod language;
mod retries;
mod roles;
