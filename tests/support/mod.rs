//! What integration tests share besides the hosts: an inventory for the Sidekiq
//! playbooks and readers for converge's JSON report.

#![allow(dead_code)] // each test binary uses a different part

use std::fmt::Write as _;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use crate::fleet::{Fleet, TestHost};

/// An inventory with every fleet host in group `app` (plus `extra` lines inside that
/// group's `hosts:`), and a worker command that exists on the test hosts.
pub fn inventory(fleet: &Fleet, extra: &str) -> PathBuf {
    let key = fleet.home().join(".ssh/id_ed25519");
    let mut yaml =
        String::from("all:\n  vars:\n    user: root\n    sidekiq_exec: /bin/sleep infinity\n");
    let _ = writeln!(yaml, "    identity_file: {}", key.display());
    yaml.push_str("  children:\n    app:\n      hosts:\n");
    for host in fleet.hosts() {
        let _ = writeln!(
            yaml,
            "        {}: {{ host: 127.0.0.1, port: {} }}",
            host.name, host.port
        );
    }
    yaml.push_str(extra);
    let path = fleet.dir().join("inventory.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Exit status and output, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs converge with `--format json`; returns the exit status and the report, checked
/// against `docs/report.schema.json`.
pub fn converge_json(fleet: &Fleet, args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let output = fleet.converge(&all);
    let report = report_of(&output);
    (output.status.code().unwrap(), report)
}

/// The JSON report on a run's stdout, checked against `docs/report.schema.json`.
pub fn report_of(output: &Output) -> Value {
    let report =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)));
    check_report(&report);
    report
}

/// Panics unless `report` is valid under `docs/report.schema.json` with every object
/// closed: a field the schema does not describe fails here, although the published
/// schema lets consumers accept fields that are added later.
pub fn check_report(report: &Value) {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let path = crate::fleet::repo_root().join("docs/report.schema.json");
        let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        close_objects(&mut schema);
        jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()))
    });
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the report does not match docs/report.schema.json:\n{}\n{report:#}",
        errors.join("\n")
    );
}

/// Sets `additionalProperties: false` on every schema object that lists `properties`.
fn close_objects(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(close_objects);
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Every change the report lists for `host`, as "task: change", in order.
pub fn changes_on(report: &Value, host: &str) -> Vec<String> {
    let mut changes = Vec::new();
    for task in tasks_on(report, host) {
        for change in task["changes"].as_array().unwrap() {
            changes.push(format!(
                "{}: {}",
                task["task"].as_str().unwrap(),
                change.as_str().unwrap()
            ));
        }
    }
    changes
}

/// Every task outcome the report lists for `host`, in order.
pub fn tasks_on(report: &Value, host: &str) -> Vec<Value> {
    let mut tasks = Vec::new();
    for play in report["plays"].as_array().unwrap() {
        for outcome in play["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["host"] == host)
        {
            tasks.extend(outcome["tasks"].as_array().unwrap().iter().cloned());
        }
    }
    tasks
}

/// A per-host count from the report (`ok`, `changed`, `failed`, ...).
pub fn stat(report: &Value, host: &str, field: &str) -> u64 {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("{host} not in report"))[field]
        .as_u64()
        .unwrap()
}

/// Copies a local file to `remote` on `host` (as root) with `mode`.
pub fn push(fleet: &Fleet, host: &TestHost, local: &Path, remote: &str, mode: &str) {
    let key = fleet.home().join(".ssh/id_ed25519");
    let status = Command::new("ssh")
        .arg("-i")
        .arg(&key)
        .args(["-p", &host.port.to_string()])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("root@127.0.0.1")
        .arg(format!(
            "mkdir -p \"$(dirname {remote})\" && cat > {remote} && chmod {mode} {remote}"
        ))
        .stdin(Stdio::from(std::fs::File::open(local).unwrap()))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "copying {} to {}:{remote}",
        local.display(),
        host.name
    );
}
