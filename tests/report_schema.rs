//! The published report schema, `docs/report.schema.json`, describes what converge
//! writes: reports of local runs (apply, check, a failure, a hidden `no_log` task, diffs)
//! validate against it with every object closed, so a field added to the report without
//! being added to the schema fails here. The suites on test hosts check every report
//! they read the same way (`support::report_of`).

mod fleet;
mod support;

use support::Converge;

use serde_json::{json, Value};

#[test]
fn local_reports_validate_against_the_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    std::fs::create_dir(&target).unwrap();
    let playbook = format!(
        "- hosts: all\n  tasks:\n    - name: greeting\n      file: {{ path: {t}/greeting, content: \"hello\\n\", mode: \"0644\" }}\n    - name: secret\n      no_log: true\n      file: {{ path: {t}/secret, content: \"s3cret\\n\", mode: \"0600\" }}\n    - name: fails\n      command: {{ cmd: \"exit 3\" }}\n",
        t = target.display()
    );
    std::fs::write(dir.path().join("site.yml"), playbook).unwrap();
    let base = ["site.yml", "--connection", "local", "--format", "json"];

    let check = Converge::new()
        .dir(dir.path())
        .run(&[&base[..], &["--check"]].concat());
    // The failing command would run: check mode reports it as a change.
    assert_eq!(check.status.code(), Some(2), "{}", support::text(&check));
    let check = support::report_of(&check);
    assert_eq!(check["check"], true);

    let report_file = dir.path().join("report.json");
    let apply = Converge::new()
        .dir(dir.path())
        .run(&[&base[..], &["--report", report_file.to_str().unwrap()]].concat());
    assert_eq!(apply.status.code(), Some(1), "{}", support::text(&apply));
    let apply = support::report_of(&apply);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    support::check_report(&written);
    let tasks = support::tasks_on(&apply, "localhost");
    assert_eq!(tasks[0]["status"], "changed", "{apply:#}");
    assert_eq!(tasks[0]["diffs"][0]["before"], Value::Null, "{apply:#}");
    assert_eq!(tasks[2]["status"], "failed", "{apply:#}");
    assert!(!apply.to_string().contains("s3cret"), "{apply:#}");
}

#[test]
fn a_check_report_with_a_pending_task_validates_and_exits_as_drift() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = format!(
        "- hosts: all\n  tasks:\n    - name: make the account\n      command: {{ cmd: \"true\" }}\n    - name: owned file\n      file: {{ path: {t}/owned, content: \"x\\n\", owner: converge-nosuchuser }}\n",
        t = dir.path().display()
    );
    std::fs::write(dir.path().join("site.yml"), playbook).unwrap();
    let check = Converge::new().dir(dir.path()).run(&[
        "site.yml",
        "--connection",
        "local",
        "--format",
        "json",
        "--check",
    ]);
    assert_eq!(check.status.code(), Some(2), "{}", support::text(&check));
    let report = support::report_of(&check);
    let tasks = support::tasks_on(&report, "localhost");
    assert_eq!(tasks[1]["status"], "pending", "{report:#}");
    assert_eq!(
        tasks[1]["message"],
        "depends on command `true`, not yet run: user converge-nosuchuser does not exist yet"
    );
    assert_eq!(report["summary"]["pending"], 1, "{report:#}");
    assert_eq!(report["hosts"][0]["pending"], 1, "{report:#}");
}

#[test]
fn the_closed_schema_refuses_what_it_does_not_describe() {
    let report = json!({
        "format_version": 1, "converge_version": "0.1.0", "playbook": "site.yml",
        "check": false, "duration_ms": 3, "exit_code": 0, "plays": [], "hosts": [],
        "summary": {"hosts": 0, "ok": 0, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
    });
    support::check_report(&report);
    for broken in [
        json!({"format_version": 2}),
        json!({"exit_code": 3}),
        json!({"surprise": true}),
        json!({"summary": {"hosts": -1}}),
    ] {
        let mut bad = report.clone();
        merge(&mut bad, &broken);
        let result = std::panic::catch_unwind(|| support::check_report(&bad));
        assert!(result.is_err(), "accepted {bad:#}");
    }
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(key) {
                    Some(existing) if value.is_object() => merge(existing, value),
                    _ => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}
