//! The playbook language on a real host: `register` and `changed_when`/`failed_when`
//! on real command output, `loop` with one report entry per item, `block` with
//! `rescue` and `always`, `ignore_errors`, and check mode waiting (`pending`) on the
//! output of a command it does not run; the engine's actions, and `run_once` sharing
//! its result with the other host; `debug` showing a registered command's output and
//! `fail` with `when` stopping one host and not the other; `until` running a command
//! again, `delay` seconds apart, until its output says it is ready.

mod fleet;
mod support;

use fleet::Fleet;
use serde_json::Value;
use support::{converge_json, inventory, stat, tasks_on};

const PLAYBOOK: &str = r#"
- hosts: app
  tasks:
    - name: workspace
      directory: { path: /srv/lang }
    - name: read release
      command: { cmd: "cat /etc/debian_version" }
      register: release
      changed_when: false
    - name: record release
      file: { path: /srv/lang/release, content: "{{ release.stdout }} {{ release.rc }}\n" }
    - name: queues
      directory: { path: "/srv/lang/{{ queue.name }}" }
      loop: [{ name: default }, { name: mailers }]
      loop_control: { loop_var: queue, label: "{{ queue.name }}" }
    - name: probe
      command: { cmd: "test -e /srv/lang/flag" }
      register: flag
      failed_when: flag.rc not in [0, 1]
      changed_when: false
    - name: guarded
      block:
        - name: fail on purpose
          command: { cmd: "echo boom >&2; exit 4" }
          register: boom
        - name: never
          file: { path: /srv/lang/never, content: x }
      rescue:
        - name: rescued
          file: { path: /srv/lang/rescued, content: "{{ boom.rc }} {{ boom.stderr }} {{ flag.rc }}\n" }
      always:
        - name: always
          file: { path: /srv/lang/always, content: "yes\n" }
    - name: ignored
      command: { cmd: "exit 3" }
      ignore_errors: true
    - name: after
      file: { path: /srv/lang/after, content: "yes\n" }
"#;

fn statuses(report: &Value, host: &str) -> Vec<String> {
    tasks_on(report, host)
        .iter()
        .map(|task| {
            let item = task["item"]
                .as_str()
                .map(|item| format!(" ({item})"))
                .unwrap_or_default();
            format!(
                "{}{item}: {}",
                task["task"].as_str().unwrap(),
                task["status"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn register_loop_block_and_ignore_errors_on_a_real_host() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    let path = fleet.dir().join("language.yml");
    std::fs::write(&path, PLAYBOOK).unwrap();
    let playbook = path.to_str().unwrap();

    // Check mode on a fresh host: the release file waits on output it cannot know.
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    let checked = statuses(&report, &host.name);
    assert!(
        checked.contains(&"record release: pending".to_owned()),
        "{checked:?}"
    );
    assert_eq!(
        host.ssh_ok("test -e /srv/lang && echo made || echo absent"),
        "absent"
    );

    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        statuses(&report, &host.name),
        [
            "workspace: changed",
            "read release: ok",
            "record release: changed",
            "queues (default): changed",
            "queues (mailers): changed",
            "probe: ok",
            "fail on purpose: rescued",
            "rescued: changed",
            "always: changed",
            "ignored: ignored",
            "after: changed",
        ]
    );
    let release = host.ssh_ok("cat /etc/debian_version");
    assert_eq!(host.ssh_ok("cat /srv/lang/release"), format!("{release} 0"));
    assert_eq!(host.ssh_ok("cat /srv/lang/rescued"), "4 boom 1");
    assert_eq!(
        host.ssh_ok(
            "ls -d /srv/lang/default /srv/lang/mailers /srv/lang/never 2>/dev/null || true"
        ),
        "/srv/lang/default\n/srv/lang/mailers"
    );
    for (field, count) in [("failed", 0), ("rescued", 1), ("ignored", 1)] {
        assert_eq!(stat(&report, &host.name, field), count, "{field}");
    }

    // Again: what is converged stays ok; the unguarded commands run again.
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    let again = statuses(&report, &host.name);
    for ok in [
        "workspace: ok",
        "record release: ok",
        "queues (default): ok",
        "queues (mailers): ok",
        "rescued: ok",
        "always: ok",
        "after: ok",
    ] {
        assert!(again.contains(&ok.to_owned()), "{ok} in {again:?}");
    }
}

const ACTIONS: &str = r#"
- hosts: app
  tasks:
    - name: facts
      set_fact: { marker: "/srv/actions/{{ inventory_hostname }}" }
    - name: sane
      assert: { that: "'/srv/actions/' in marker", success_msg: "marker {{ marker }}" }
    - name: workspace
      directory: { path: /srv/actions }
    - name: mark
      file: { path: "{{ marker }}", content: "x\n" }
      notify: count
    - meta: flush_handlers
    - name: counted before this task
      command: { cmd: "cat /srv/actions/count" }
      register: count
      changed_when: false
    - name: once
      file: { path: /srv/actions/once, content: "{{ count.stdout }}\n" }
      run_once: true
    - name: leader
      command: { cmd: "hostname" }
      register: leader
      run_once: true
      changed_when: false
    - name: follow
      file: { path: /srv/actions/leader, content: "{{ leader.stdout }}\n" }
  handlers:
    - name: count
      command: { cmd: "echo handled > /srv/actions/count" }
"#;

#[test]
fn set_fact_assert_flush_handlers_and_run_once_on_real_hosts() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [first, second] = fleet.hosts() else {
        panic!()
    };
    let path = fleet.dir().join("actions.yml");
    std::fs::write(&path, ACTIONS).unwrap();
    let (code, report) = converge_json(&fleet, &[path.to_str().unwrap(), "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        statuses(&report, &first.name),
        [
            "facts: ok",
            "sane: ok",
            "workspace: changed",
            "mark: changed",
            "count: changed",
            "counted before this task: ok",
            "once: changed",
            "leader: ok",
            "follow: changed",
        ]
    );
    assert_eq!(
        statuses(&report, &second.name)[6..],
        ["once: skipped", "leader: skipped", "follow: changed"]
    );
    // The second host got the first's registered result.
    let leader = first.ssh_ok("hostname");
    for host in [first, second] {
        assert_eq!(host.ssh_ok("cat /srv/actions/leader"), leader);
    }
    assert_eq!(first.ssh_ok("cat /srv/actions/once"), "handled");
    assert_eq!(
        second.ssh_ok("test -e /srv/actions/once && echo yes || echo no"),
        "no"
    );
    assert_eq!(
        second.ssh_ok(&format!("cat /srv/actions/{}", second.name)),
        "x"
    );
}

const DEBUG_FAIL: &str = r#"
- hosts: app
  tasks:
    - name: role
      command: { cmd: "cat /etc/lang-role" }
      register: role
      changed_when: false
    - name: say
      debug: { msg: "{{ inventory_hostname }} is a {{ role.stdout }}" }
    - name: lines
      debug: { var: role.stdout_lines }
    - name: no replicas
      fail: { msg: "{{ inventory_hostname }}: {{ role.stdout }} refused" }
      when: role.stdout == 'replica'
    - name: after
      file: { path: /etc/lang-after, content: "{{ role.stdout }}\n" }
"#;

#[test]
fn debug_shows_registered_output_and_fail_with_when_stops_one_host() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [primary, replica] = fleet.hosts() else {
        panic!()
    };
    primary.ssh_ok("echo primary > /etc/lang-role");
    replica.ssh_ok("echo replica > /etc/lang-role");
    let path = fleet.dir().join("debug_fail.yml");
    std::fs::write(&path, DEBUG_FAIL).unwrap();
    let (code, report) = converge_json(&fleet, &[path.to_str().unwrap(), "-i", inventory]);
    assert_eq!(code, 1, "a host failed: {report:#}");
    let messages = |host: &str| -> Vec<String> {
        tasks_on(&report, host)
            .iter()
            .map(|task| {
                format!(
                    "{}: {} {}",
                    task["task"].as_str().unwrap(),
                    task["status"].as_str().unwrap(),
                    task["message"].as_str().unwrap_or("-")
                )
            })
            .collect()
    };
    assert_eq!(
        messages(&primary.name),
        [
            "role: ok -".to_owned(),
            format!("say: ok {} is a primary", primary.name),
            "lines: ok role.stdout_lines = [\"primary\"]".to_owned(),
            "no replicas: skipped -".to_owned(),
            "after: changed -".to_owned(),
        ]
    );
    assert_eq!(
        messages(&replica.name),
        [
            "role: ok -".to_owned(),
            format!("say: ok {} is a replica", replica.name),
            "lines: ok role.stdout_lines = [\"replica\"]".to_owned(),
            format!("no replicas: failed {}: replica refused", replica.name),
        ]
    );
    assert_eq!(stat(&report, &primary.name, "failed"), 0);
    assert_eq!(stat(&report, &replica.name, "failed"), 1);
    assert_eq!(primary.ssh_ok("cat /etc/lang-after"), "primary");
    assert_eq!(
        replica.ssh_ok("test -e /etc/lang-after && echo yes || echo no"),
        "no",
        "the failed host ran nothing after the failure"
    );
}

const RETRIED: &str = r#"
- hosts: app
  tasks:
    - name: count up
      command:
        cmd: "n=$(cat /etc/lang-count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /etc/lang-count; echo $n"
      register: counter
      until: counter.stdout == '3'
      retries: 4
      delay: 1
    - name: attempts
      file: { path: /etc/lang-attempts, content: "{{ counter.attempts }} {{ counter.stdout }}\n" }
"#;

#[test]
fn until_runs_a_command_again_until_it_holds_on_a_real_host() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    let path = fleet.dir().join("retried.yml");
    std::fs::write(&path, RETRIED).unwrap();
    let playbook = path.to_str().unwrap();

    // Check mode cannot know the output the condition reads: pending, nothing run.
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(
        statuses(&report, &host.name),
        ["count up: pending", "attempts: pending"]
    );
    assert_eq!(
        host.ssh_ok("test -e /etc/lang-count && echo ran || echo absent"),
        "absent"
    );

    let started = std::time::Instant::now();
    let (code, report) = converge_json(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "two delays of a second between three attempts"
    );
    assert_eq!(
        statuses(&report, &host.name),
        ["count up: changed", "attempts: changed"]
    );
    assert_eq!(host.ssh_ok("cat /etc/lang-count"), "3");
    assert_eq!(host.ssh_ok("cat /etc/lang-attempts"), "3 3");
    let notes = &tasks_on(&report, &host.name)[0]["notes"];
    assert_eq!(
        notes,
        &serde_json::json!(["ran 3 times (until)"]),
        "{report:#}"
    );
}
