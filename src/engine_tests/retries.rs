//! `until` with `retries` and `delay` on scripted hosts: a task run again until its
//! condition holds, failing when it never does, and check mode waiting instead.

use super::*;

/// How many commands containing `pattern` the host ran.
fn runs_of(host: &FakeHost, pattern: &str) -> usize {
    host.applied()
        .iter()
        .filter(|argv| argv.iter().any(|arg| arg.contains(pattern)))
        .count()
}

#[test]
fn a_task_runs_again_until_its_condition_holds_and_registers_its_attempts() {
    let host = FakeHost::new();
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - file: { path: /etc/app.conf, content: x }
      register: conf
      until: not conf.changed
      retries: 3
      delay: 0
    - file: { path: /etc/attempts, content: "n={{ conf.attempts }}" }
"#,
        &host,
        apply(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Changed],
        "the first attempt changed the host: {:?}",
        run.tasks("web1")
    );
    assert_eq!(content(&host, "/etc/attempts").as_deref(), Some("n=2"));
    assert!(
        run.tasks("web1")[0]
            .notes
            .contains(&"ran 2 times (until)".to_owned()),
        "{:?}",
        run.tasks("web1")[0]
    );
}

#[test]
fn a_condition_that_holds_at_once_runs_the_task_once() {
    let host = FakeHost::new().printing("app status", "ready\n");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "app status" }
      register: status
      until: status.stdout == 'ready'
      changed_when: false
    - file: { path: /etc/attempts, content: "n={{ status.attempts }}" }
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Ok, Status::Changed]);
    assert_eq!(runs_of(&host, "app status"), 1);
    assert_eq!(content(&host, "/etc/attempts").as_deref(), Some("n=1"));
    assert!(run.tasks("web1")[0].notes.is_empty());
}

#[test]
fn a_condition_that_never_holds_fails_the_task_after_the_last_retry() {
    let host = FakeHost::new().printing("app status", "starting\n");
    let playbook = r#"
- hosts: all
  tasks:
    - command: { cmd: "app status" }
      register: status
      until: status.stdout == 'ready'
      retries: 2
      delay: 0
      changed_when: false
    - file: { path: /etc/after, content: "{{ status.attempts }} {{ status.failed }}" }
"#;
    let run = on_one(playbook, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    assert_eq!(
        runs_of(&host, "app status"),
        3,
        "the first run and two retries"
    );
    assert_eq!(
        run.tasks("web1")[0].message.as_deref(),
        Some("`until` still does not hold after 3 attempts: status.stdout == 'ready'")
    );
    assert_eq!(run.stats("web1").failed, 1);

    // With ignore_errors, the host goes on with the last attempt's result.
    let host = FakeHost::new().printing("app status", "starting\n");
    let ignored = playbook.replace(
        "      delay: 0\n",
        "      delay: 0\n      ignore_errors: true\n",
    );
    let run = on_one(&ignored, &host, apply());
    assert_eq!(run.statuses("web1"), [Status::Ignored, Status::Changed]);
    assert_eq!(content(&host, "/etc/after").as_deref(), Some("3 True"));
}

#[test]
fn a_failed_attempt_is_run_again_and_only_the_last_one_decides() {
    // The command fails every time: the host fails once, after the last attempt.
    let host = FakeHost::new().failing_on("broken-tool");
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "broken-tool" }
      register: tool
      until: tool.rc == 0
      retries: 1
      delay: 0
"#,
        &host,
        apply(),
    );
    assert_eq!(run.statuses("web1"), [Status::Failed]);
    assert_eq!(runs_of(&host, "broken-tool"), 2);
    let task = run.tasks("web1")[0];
    assert_eq!(
        task.message.as_deref(),
        Some("`until` still does not hold after 2 attempts: tool.rc == 0")
    );
    assert!(
        task.notes
            .iter()
            .any(|note| note.starts_with("last attempt: ")),
        "{task:?}"
    );
}

#[test]
fn check_mode_waits_on_an_until_it_cannot_know_or_that_does_not_hold_yet() {
    let run = on_one(
        r#"
- hosts: all
  tasks:
    - command: { cmd: "app status" }
      register: status
      until: status.stdout == 'ready'
    - file: { path: /etc/app.conf, content: x }
      register: conf
      until: not conf.changed
    - file: { path: /etc/other.conf, content: x }
      register: other
      until: other.changed
"#,
        &FakeHost::new(),
        check(),
    );
    assert_eq!(
        run.statuses("web1"),
        [Status::Pending, Status::Pending, Status::Changed]
    );
    let tasks = run.tasks("web1");
    assert_eq!(
        tasks[0].message.as_deref(),
        Some("its `until` reads `status.stdout`, which check mode cannot know before the task that registers it has run")
    );
    assert_eq!(
        tasks[1].message.as_deref(),
        Some("its `until` does not hold yet: a real run would run it again (up to 3 more times)")
    );
}

#[test]
fn retries_and_delay_without_until_are_refused() {
    let error = Playbook::parse(
        "- hosts: all\n  tasks:\n    - command: { cmd: x }\n      retries: 3\n",
        Path::new("site.yml"),
    )
    .expect_err("retries needs until")
    .to_string();
    assert!(
        error.contains("`retries` and `delay` go with `until`"),
        "{error}"
    );
    let error = Playbook::parse(
        "- hosts: all\n  tasks:\n    - block:\n        - command: { cmd: x }\n      until: x\n",
        Path::new("site.yml"),
    )
    .expect_err("until is a task's")
    .to_string();
    assert!(error.contains("`until` belongs on a task"), "{error}");
}
