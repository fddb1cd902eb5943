//! The playbook language on scripted hosts: `register`, `changed_when`, `failed_when`,
//! `ignore_errors`, and what check mode says of output it cannot know.

use super::*;

#[test]
fn a_registered_output_reaches_later_conditions_and_templates() {
    let host = FakeHost::new().printing("cat /etc/release", "v2\n");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "cat /etc/release" }
      register: release
      changed_when: false
    - file: { path: /etc/app.conf, content: "{{ release.stdout }} {{ release.stdout_lines | length }} {{ release.rc }}\n" }
      when: release.rc == 0 and not release.changed
    - file: { path: /etc/skipped.conf, content: x }
      when: release.stdout == "v1"
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Ok, Status::Changed, Status::Skipped]
    );
    assert_eq!(content(&host, "/etc/app.conf").as_deref(), Some("v2 1 0\n"));
}

#[test]
fn register_costs_no_read_for_tasks_that_do_not_read_it() {
    let host = converged_host();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/app.conf, content: "port=80\n" }
      register: config
    - file: { path: /etc/app.conf, content: "port=80\n" }
      when: not config.changed
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ok, Status::Ok]);
    assert_eq!(host.sent().len(), 1, "{:?}", host.sent());
}

#[test]
fn a_task_rendered_from_a_registered_value_reads_its_facts_once_it_is_known() {
    let host = FakeHost::new()
        .printing("cat /etc/target", "/etc/b.conf")
        .with_file("/etc/b.conf", "b\n", 0o644);
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "cat /etc/target" }
      register: target
      changed_when: false
    - file: { path: "{{ target.stdout }}", content: "b\n" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ok, Status::Ok]);
    // After the command, one read for what the path needs.
    let reads = host.reads();
    assert_eq!(reads.len(), 2, "{:?}", host.sent());
    assert!(!reads[0].contains(&FactKey::Paths(PathKey::Content("/etc/b.conf".into()))));
    assert!(reads[1].contains(&FactKey::Paths(PathKey::Content("/etc/b.conf".into()))));
}

#[test]
fn changed_when_decides_with_the_tasks_own_result() {
    let host = FakeHost::new()
        .printing("migrate", "applied 0 migrations\n")
        .printing("seed", "seeded 3 rows\n");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "app migrate" }
      register: migrate
      changed_when: "'applied 0' not in migrate.stdout"
    - command: { cmd: "app seed" }
      register: seed
      changed_when: ["seed.rc == 0", "'seeded' in seed.stdout"]
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ok, Status::Changed]);
}

#[test]
fn failed_when_turns_an_exit_status_into_success_and_success_into_failure() {
    let host = FakeHost::new()
        .failing_on("grep -q")
        .printing("cat /etc/motd", "ERROR: disk\n");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "grep -q app /etc/hosts" }
      register: found
      failed_when: found.rc not in [0, 1]
      changed_when: false
    - file: { path: /etc/found, content: "rc={{ found.rc }}" }
    - command: { cmd: "grep -q other /etc/hosts" }
      failed_when: false
    - command: { cmd: "cat /etc/motd" }
      register: motd
      failed_when: "'ERROR' in motd.stdout"
    - file: { path: /etc/never, content: x }
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Ok, Status::Changed, Status::Changed, Status::Failed],
        "{:?}",
        run.tasks("web1")
    );
    assert_eq!(content(&host, "/etc/found").as_deref(), Some("rc=1"));
    assert!(run.tasks("web1")[0].message.is_none());
    assert_eq!(
        run.tasks("web1")[3].message.as_deref(),
        Some("failed_when holds: 'ERROR' in motd.stdout")
    );
    assert_eq!(run.stats("web1").failed, 1);
}

#[test]
fn an_ignored_failure_is_reported_and_the_host_goes_on() {
    // The fake host fails any command naming this tool, and nothing else.
    let host = FakeHost::new().failing_on("broken-tool");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "broken-tool --check" }
      register: broken
      ignore_errors: true
    - file: { path: /etc/after, content: "{{ broken.failed }} {{ broken.rc }}" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ignored, Status::Changed]);
    assert!(run.tasks("web1")[0]
        .message
        .as_deref()
        .is_some_and(|message| message.contains("exit status 1")));
    assert_eq!(content(&host, "/etc/after").as_deref(), Some("True 1"));
    let stats = run.stats("web1");
    assert_eq!((stats.ok, stats.ignored, stats.failed), (2, 1, 0));
}

#[test]
fn check_mode_never_guesses_a_commands_output() {
    let playbook = r#"
- hosts: all
  tasks:
    - command: { cmd: "app version" }
      register: version
    - file: { path: /etc/changed, content: x }
      when: version.changed
    - file: { path: /etc/version, content: "{{ version.stdout }}" }
    - file: { path: /etc/v2, content: x }
      when: version.rc == 0
    - command: { cmd: "app check" }
      register: checked
      changed_when: checked.rc != 0
"#;
    let run = on_one(playbook, &FakeHost::new(), check());
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Changed,
            Status::Pending,
            Status::Pending,
            Status::Pending
        ]
    );
    assert_eq!(
        run.tasks("web1")[2].message.as_deref(),
        Some("it reads `version.stdout`, which check mode cannot know before the task that registers it has run")
    );
    assert_eq!(
        run.tasks("web1")[4].message.as_deref(),
        Some("its `changed_when` reads `checked.rc`, which check mode cannot know before the task that registers it has run")
    );
    // What apply does with the same playbook.
    let host = FakeHost::new().printing("app version", "2.1\n");
    let run = on_one(playbook, &host, apply());
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Changed,
            Status::Changed,
            Status::Changed,
            Status::Ok
        ]
    );
    assert_eq!(content(&host, "/etc/version").as_deref(), Some("2.1"));
}

#[test]
fn a_registered_result_is_seen_by_later_plays_on_the_same_host() {
    let host = FakeHost::new().printing("hostname", "web-1\n");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: hostname }
      register: name
      changed_when: false
- hosts: all
  tasks:
    - file: { path: /etc/name, content: "{{ name.stdout }}" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ok, Status::Changed]);
    assert_eq!(content(&host, "/etc/name").as_deref(), Some("web-1"));
}

// --- loop ----------------------------------------------------------------------------

#[test]
fn a_looped_task_runs_and_reports_each_item() {
    let host = FakeHost::new().with_file("/etc/b.conf", "b\n", 0o644);
    let run = on_one(
        r#"
- hosts: all
  vars:
    names: [a, b, c]
  tasks:
    - file: { path: "/etc/{{ item }}.conf", content: "{{ item }}\n" }
      loop: "{{ names }}"
      when: item != "c"
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Ok, Status::Skipped]
    );
    let items: Vec<Option<&str>> = run
        .tasks("web1")
        .iter()
        .map(|task| task.item.as_deref())
        .collect();
    assert_eq!(items, [Some("a"), Some("b"), Some("c")]);
    assert_eq!(content(&host, "/etc/a.conf").as_deref(), Some("a\n"));
    assert!(content(&host, "/etc/c.conf").is_none());
    // The recap counts the task once, as changed.
    let stats = run.stats("web1");
    assert_eq!((stats.ok, stats.changed, stats.skipped), (1, 1, 0));
}

#[test]
fn a_no_log_loop_hides_its_items() {
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: "/etc/{{ item }}", content: x }
      loop: [s3cret]
      no_log: true
"#,
        &FakeHost::new(),
        apply(),
    );
    let task = run.tasks("web1")[0];
    assert_eq!(task.item.as_deref(), Some("(hidden: no_log)"));
    assert!(!format!("{task:?}").contains("s3cret"), "{task:?}");
}

#[test]
fn a_looped_task_with_nothing_to_change_joins_the_one_read() {
    let host = FakeHost::new()
        .with_file("/etc/a.conf", "a\n", 0o644)
        .with_file("/etc/b.conf", "b\n", 0o644);
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: "/etc/{{ conf.name }}.conf", content: "{{ conf.text }}\n" }
      loop:
        - { name: a, text: a }
        - { name: b, text: b }
      loop_control: { loop_var: conf, label: "{{ conf.name }}" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ok, Status::Ok]);
    assert_eq!(run.tasks("web1")[1].item.as_deref(), Some("b"));
    assert_eq!(host.sent().len(), 1, "{:?}", host.sent());
}

#[test]
fn a_registered_loop_holds_one_result_per_item() {
    let host = FakeHost::new()
        .printing("echo one", "1\n")
        .printing("echo two", "2\n");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "echo {{ item }}" }
      loop: [one, two]
      register: echoed
      changed_when: false
    - file:
        path: /etc/echoed
        content: "{{ echoed.results | map(attribute='stdout') | join(',') }} {{ echoed.results[1].item }} {{ echoed.changed }}"
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Ok, Status::Ok, Status::Changed]
    );
    assert_eq!(
        content(&host, "/etc/echoed").as_deref(),
        Some("1,2 two False")
    );
}

#[test]
fn an_empty_loop_is_skipped() {
    let run = on_one(
        r#"
- hosts: all
  vars:
    nothing: []
  tasks:
    - file: { path: "/etc/{{ item }}", content: x }
      loop: "{{ nothing }}"
"#,
        &FakeHost::new(),
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Skipped]);
    assert_eq!(run.tasks("web1")[0].message.as_deref(), Some("no items"));
}

#[test]
fn a_failed_item_fails_its_host_after_the_other_items() {
    let host = FakeHost::new().failing_on("b.conf");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: "/etc/{{ item }}.conf", content: x }
      loop: [a, b, c]
    - file: { path: /etc/after, content: x }
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Failed, Status::Changed]
    );
    assert!(content(&host, "/etc/after").is_none());
}

#[test]
fn check_mode_loops_over_what_is_known_and_waits_on_what_is_not() {
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "ls /srv" }
      register: listing
    - file: { path: "/etc/{{ item }}", content: x }
      loop: "{{ listing.stdout_lines }}"
    - file: { path: "/etc/{{ item }}", content: x }
      loop: [a]
"#,
        &FakeHost::new(),
        check(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Pending, Status::Changed]
    );
}

// --- block, rescue, always ------------------------------------------------------------

const GUARDED: &str = r#"
- hosts: all
  tasks:
    - block:
        - file: { path: /etc/a, content: a }
        - file: { path: /etc/b, content: b }
        - file: { path: /etc/c, content: c }
      rescue:
        - file: { path: /etc/rescued, content: "failed={{ broken.failed }}" }
      always:
        - file: { path: /etc/always, content: x }
    - file: { path: /etc/after, content: x }
"#;

#[test]
fn rescue_runs_when_a_block_task_fails_and_the_host_goes_on() {
    let host = FakeHost::new().failing_on("/etc b");
    let playbook = GUARDED.replace("content: b }", "content: b }\n          register: broken");
    let run = on_one(&playbook, &host, apply());
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Rescued,
            Status::Changed,
            Status::Changed,
            Status::Changed
        ],
        "{:?}",
        run.tasks("web1")
    );
    assert!(content(&host, "/etc/c").is_none());
    assert_eq!(
        content(&host, "/etc/rescued").as_deref(),
        Some("failed=True")
    );
    let stats = run.stats("web1");
    assert_eq!((stats.failed, stats.rescued), (0, 1));
}

#[test]
fn always_runs_after_a_block_that_succeeded_and_rescue_does_not() {
    let host = FakeHost::new();
    let playbook = GUARDED.replace("failed={{ broken.failed }}", "x");
    let run = on_one(&playbook, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Changed; 5]);
    assert!(content(&host, "/etc/rescued").is_none());
    assert!(content(&host, "/etc/always").is_some());
}

#[test]
fn a_failure_no_rescue_takes_runs_always_then_stops_the_host() {
    let host = FakeHost::new().failing_on("/etc b");
    let playbook = GUARDED.replace(
        "      rescue:\n        - file: { path: /etc/rescued, content: \"failed={{ broken.failed }}\" }\n",
        "",
    );
    let run = on_one(&playbook, &host, apply());
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Failed, Status::Changed]
    );
    assert!(content(&host, "/etc/always").is_some());
    assert!(content(&host, "/etc/after").is_none());
    assert_eq!(run.stats("web1").failed, 1);
}

#[test]
fn a_failing_rescue_fails_the_host_after_always() {
    let host = FakeHost::new().failing_on("/etc b").failing_on("rescued");
    let playbook = GUARDED.replace("failed={{ broken.failed }}", "x");
    let run = on_one(&playbook, &host, apply());
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Rescued,
            Status::Failed,
            Status::Changed
        ]
    );
    assert!(content(&host, "/etc/after").is_none());
}

#[test]
fn nested_blocks_rescue_at_the_nearest_rescue_and_inherit_when_and_vars() {
    let host = FakeHost::new().failing_on("/etc inner");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - block:
        - block:
            - file: { path: /etc/inner, content: x }
          rescue:
            - file: { path: "/etc/{{ name }}", content: x }
              vars: { name: "{{ prefix }}-rescued" }
        - file: { path: /etc/skipped, content: x }
          when: false
      vars: { prefix: outer }
      when: inventory_hostname == "web1"
      rescue:
        - file: { path: /etc/never, content: x }
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Rescued, Status::Changed, Status::Skipped]
    );
    assert!(content(&host, "/etc/outer-rescued").is_some());
    assert!(content(&host, "/etc/never").is_none());
}

#[test]
fn a_blocks_become_user_runs_its_tasks_as_that_user() {
    let host = FakeHost::new();
    on_one(
        r#"
- hosts: all
  tasks:
    - block:
        - command: { cmd: "whoami" }
      become_user: deploy
"#,
        &host,
        apply(),
    );
    assert_eq!(sudo_users(&host), [Some("deploy".to_owned())]);
}

// --- set_fact, debug, assert, fail, flush_handlers, run_once ---------------------------

#[test]
fn set_fact_debug_and_assert_work_on_variables_without_a_command() {
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  vars:
    workers: 3
  tasks:
    - set_fact:
        threads: "{{ workers * 2 }}"
        queues: [default, mailers]
    - debug: { msg: "{{ threads }} threads for {{ queues | join(',') }}" }
    - debug: { var: queues }
    - assert:
        that: [threads == 6, "'mailers' in queues"]
        success_msg: "sized"
    - file: { path: /etc/threads, content: "t={{ threads }}" }
      when: threads > 5
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Ok,
            Status::Ok,
            Status::Ok,
            Status::Ok,
            Status::Changed
        ]
    );
    let messages: Vec<Option<&str>> = run
        .tasks("web1")
        .iter()
        .map(|task| task.message.as_deref())
        .collect();
    assert_eq!(
        messages[..4],
        [
            None,
            Some("6 threads for default,mailers"),
            Some(r#"queues = ["default","mailers"]"#),
            Some("sized")
        ]
    );
    assert_eq!(content(&host, "/etc/threads").as_deref(), Some("t=6"));
    // The only command was the one read.
    assert_eq!(applies(&host), 1);
}

#[test]
fn a_failed_assert_and_fail_stop_the_host_with_their_message() {
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - assert: { that: "1 == 2", fail_msg: "numbers are off on {{ inventory_hostname }}" }
      ignore_errors: true
    - fail: { msg: stop here }
    - file: { path: /etc/never, content: x }
"#,
        &FakeHost::new(),
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ignored, Status::Failed]);
    assert_eq!(
        run.tasks("web1")[0].message.as_deref(),
        Some("numbers are off on web1")
    );
    assert_eq!(run.tasks("web1")[1].message.as_deref(), Some("stop here"));
}

#[test]
fn flush_handlers_runs_the_notified_handlers_before_the_next_task() {
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/a.conf, content: a }
      notify: restart a
    - meta: flush_handlers
    - file: { path: /etc/b.conf, content: b }
      notify: restart a
    - flush_handlers: true
    - file: { path: /etc/c.conf, content: c }
  handlers:
    - name: restart a
      command: { cmd: "restart-a" }
"#,
        &host,
        apply(),
    );
    let order: Vec<String> = run
        .tasks("web1")
        .iter()
        .map(|task| task.task.clone())
        .collect();
    assert_eq!(
        order,
        [
            "file /etc/a.conf",
            "restart a",
            "file /etc/b.conf",
            "restart a",
            "file /etc/c.conf"
        ]
    );
}

#[test]
fn run_once_runs_on_the_first_host_and_shares_its_result() {
    let (first, second, third) = (
        FakeHost::new().printing("make-token", "t0k3n\n"),
        FakeHost::new(),
        FakeHost::new(),
    );
    let run = converge(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/before, content: x }
    - command: { cmd: "make-token" }
      register: token
      run_once: true
    - file: { path: /etc/token, content: "{{ token.stdout }}" }
    - block:
        - command: { cmd: "migrate" }
          run_once: true
"#,
        &[("web1", &first), ("web2", &second), ("web3", &third)],
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Changed,
            Status::Changed,
            Status::Changed
        ]
    );
    for (name, host) in [("web2", &second), ("web3", &third)] {
        assert_eq!(
            run.statuses(name),
            [
                Status::Changed,
                Status::Skipped,
                Status::Changed,
                Status::Skipped
            ]
        );
        assert_eq!(
            run.tasks(name)[1].message.as_deref(),
            Some("run_once: ran on web1")
        );
        assert_eq!(content(host, "/etc/token").as_deref(), Some("t0k3n"));
        assert!(!host.applied().iter().any(|argv| argv
            .iter()
            .any(|word| word.contains("make-token") || word == "migrate")));
    }
}

#[test]
fn run_once_moves_to_the_next_host_when_the_first_failed() {
    let (first, second) = (FakeHost::new().failing_on("/etc before"), FakeHost::new());
    let run = converge(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/before, content: x }
    - command: { cmd: "migrate" }
      run_once: true
"#,
        &[("web1", &first), ("web2", &second)],
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    assert_eq!(run.statuses("web2"), [Status::Changed, Status::Changed]);
}

#[test]
fn check_mode_waits_on_unknown_output_in_assert_debug_and_set_fact() {
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "app version" }
      register: version
    - set_fact: { major: "{{ version.stdout.split('.')[0] }}" }
    - debug: { var: major }
    - assert: { that: version.rc == 0 }
    - debug: { msg: "{{ version.changed }}" }
"#,
        &FakeHost::new(),
        check(),
    );
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Pending,
            Status::Pending,
            Status::Pending,
            Status::Ok
        ]
    );
}

#[test]
fn become_false_on_a_task_turns_off_the_become_of_its_block_and_play() {
    let host = FakeHost::new();
    on_one(
        r#"
- hosts: all
  become_user: deploy
  tasks:
    - block:
        - command: { cmd: "as-app" }
        - command: { cmd: "as-login" }
          become: false
      become_user: app
"#,
        &host,
        apply(),
    );
    assert_eq!(sudo_users(&host), [Some("app".to_owned()), None]);
}
