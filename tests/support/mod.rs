//! What integration tests share besides the hosts: the one way to run the `converge`
//! binary ([`Converge`]), an inventory for the Sidekiq playbooks and readers for
//! converge's JSON report.

#![allow(dead_code)] // each test binary uses a different part

pub mod sidekiq;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fleet::{Fleet, TestHost};

/// A run of the `converge` binary, built up and then started with [`Converge::run`] or
/// [`Converge::output`].
///
/// By default it runs in the repository, with no colour, no stdin and the test's own
/// environment otherwise; [`Converge::on`] points it at a fleet's `HOME` (its key and
/// `known_hosts`) without the test runner's ssh-agent.
#[must_use]
pub struct Converge {
    /// A program the binary runs under (`timeout`, a shell), with its arguments.
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    dir: PathBuf,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Vec<u8>,
    /// Killed, and the test failed, when it runs longer than this.
    bound: Option<Duration>,
}

impl Converge {
    /// The binary in the repository, with no colour and no stdin.
    pub fn new() -> Self {
        Converge {
            wrapper: Vec::new(),
            args: Vec::new(),
            dir: crate::fleet::repo_root(),
            env: vec![("NO_COLOR".into(), Some("1".into()))],
            stdin: Vec::new(),
            bound: None,
        }
    }

    /// Reaching `fleet`'s hosts: its `HOME`, and no ssh-agent.
    pub fn on(fleet: &Fleet) -> Self {
        Converge::new().home(fleet.home())
    }

    /// `HOME` set to `home` (keys, `known_hosts`, ssh config), and no ssh-agent.
    pub fn home(self, home: &Path) -> Self {
        self.env("HOME", home).env_remove("SSH_AUTH_SOCK")
    }

    /// Runs in `dir`.
    pub fn dir(mut self, dir: &Path) -> Self {
        dir.clone_into(&mut self.dir);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().into(), Some(value.as_ref().into())));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().into(), None));
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().into());
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().into()));
        self
    }

    /// Feeds `input` on stdin.
    pub fn stdin(mut self, input: &[u8]) -> Self {
        self.stdin = input.to_vec();
        self
    }

    /// Runs the binary as an argument of `program` (`timeout 300`, `bash -c ...`).
    pub fn through(mut self, program: &str, args: &[&str]) -> Self {
        self.wrapper = std::iter::once(program)
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        self
    }

    /// Kills the run and fails the test when it has not finished after `limit`: for
    /// input that must be refused, where a hang must not pass unnoticed.
    pub fn bounded(mut self, limit: Duration) -> Self {
        self.bound = Some(limit);
        self
    }

    /// Adds `args` and runs.
    pub fn run(self, args: &[&str]) -> Output {
        self.args(args).output()
    }

    /// Runs and waits for the exit status and all output.
    pub fn output(self) -> Output {
        let binary = OsString::from(env!("CARGO_BIN_EXE_converge"));
        let mut command = match self.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(if self.stdin.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let mut child = command.spawn().expect("run converge");
        if let Some(mut stdin) = child.stdin.take() {
            let input = self.stdin.clone();
            std::thread::spawn(move || stdin.write_all(&input));
        }
        if let Some(limit) = self.bound {
            let deadline = Instant::now() + limit;
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "converge {:?} still running after {} s",
                        self.args,
                        limit.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        child.wait_with_output().expect("run converge")
    }
}

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

/// Runs converge, which must fail the task (exit 1) saying `why`.
pub fn refused(fleet: &Fleet, args: &[&str], why: &str) {
    let output = fleet.converge(args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(why),
        "{}",
        text(&output)
    );
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

/// Asserts that `--check` (the report `check`) foresaw what the apply that followed it
/// (`apply`) did on `host`: the same changes, in order. A task `pending` in the check (it
/// needs what a package not yet installed brings) lists no change there; it must change
/// in the apply, and its changes are left out of the comparison, as are those of a
/// handler the check did not see notified (only a pending task notified it). Returns
/// whether the check found anything to do (a change or a pending task).
pub fn assert_check_foresaw(check: &Value, apply: &Value, host: &str) -> bool {
    let checked = tasks_on(check, host);
    let applied = tasks_on(apply, host);
    let pending: Vec<&Value> = checked
        .iter()
        .filter(|task| task["status"] == "pending")
        .collect();
    for task in &pending {
        assert!(
            applied
                .iter()
                .any(|t| t["task"] == task["task"] && t["status"] == "changed"),
            "pending in --check but not changed by the apply on {host}: {task:#}\n{apply:#}"
        );
    }
    let foreseeable = |task: &&Value| {
        !pending.iter().any(|p| p["task"] == task["task"])
            && (task["handler"] == false
                || pending.is_empty()
                || checked.iter().any(|c| c["task"] == task["task"]))
    };
    let changes = |tasks: &[Value]| -> Vec<String> {
        tasks
            .iter()
            .filter(foreseeable)
            .flat_map(|task| {
                let name = task["task"].as_str().unwrap().to_owned();
                task["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |change| format!("{name}: {}", change.as_str().unwrap()))
            })
            .collect()
    };
    assert_eq!(
        changes(&checked),
        changes(&applied),
        "--check and apply disagree on {host}\n--- check\n{check:#}"
    );
    !pending.is_empty() || !changes_on(check, host).is_empty()
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

/// Asserts that `user` on `host` may run none of `commands` through sudo.
pub fn assert_sudo_refuses(host: &TestHost, user: &str, commands: &[&str]) {
    for forbidden in commands {
        let output = host.ssh(&format!(
            "runuser -u {user} -- {} -n {forbidden}",
            crate::fleet::SUDO
        ));
        assert!(
            !output.status.success(),
            "{user} could run `{forbidden}` on {}",
            host.name
        );
    }
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

/// An `ssh` command logging in to `host` as `user` with the fleet's key.
pub fn ssh_as(fleet: &Fleet, host: &TestHost, user: &str, cmd: &str) -> Command {
    let mut command = Command::new("ssh");
    command
        .arg("-i")
        .arg(fleet.home().join(".ssh/id_ed25519"))
        .args(["-p", &host.port.to_string(), "-F", "none"])
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "LogLevel=INFO"])
        .arg(format!("{user}@127.0.0.1"))
        .arg(cmd)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null());
    command
}
