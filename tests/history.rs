//! Run history end to end: runs on real test hosts, with drift made by hand in between,
//! are written at once to a SQLite file and to a real PostgreSQL server started for the
//! test; `converge history` answers the same from both; the dashboard drawn from it is
//! opened in headless Chromium and its DOM shows every host and resource and the
//! drifted cell as drifted (a screenshot is kept under target/test-artifacts/);
//! `promtool` accepts the metrics file; a `no_log` value is stored nowhere.
//!
//! Without the fleet this skips like the other host suites. PostgreSQL, Chromium and
//! promtool are Debian packages that `.ci/run` installs: missing, they fail the test
//! under `CONVERGE_FLEET=required` and skip it otherwise.
//!
//! A second test needs no host: concurrent runs and runs killed at random moments
//! share one SQLite file, which stays whole, with every stored run complete.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use fleet::Fleet;
use serde_json::Value;
use support::{converge_json, text, Converge};

/// Whether missing tools are a failure (CI) rather than a skip.
fn required() -> bool {
    std::env::var("CONVERGE_FLEET").is_ok_and(|value| value == "required")
}

/// The path of `name`: on `PATH`, or the first of `candidates` that exists. `None`
/// (after a loud line) when it is missing and tools are not required.
fn tool(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    let found = on_path.or_else(|| {
        candidates
            .iter()
            .find_map(|pattern| glob_first(pattern).filter(|candidate| candidate.is_file()))
    });
    if found.is_none() {
        let message = format!("{name} is not installed (Debian: see .ci/run's package list)");
        assert!(!required(), "CONVERGE_FLEET=required: {message}");
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// The first match of a pattern with one `*` directory component, newest version last
/// in sort order wins.
fn glob_first(pattern: &str) -> Option<PathBuf> {
    let Some((head, tail)) = pattern.split_once('*') else {
        return Some(PathBuf::from(pattern));
    };
    let dir = Path::new(head.trim_end_matches('/'));
    let mut entries: Vec<PathBuf> = fs::read_dir(if head.ends_with('/') {
        dir
    } else {
        dir.parent()?
    })
    .ok()?
    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
    .map(|entry| entry.join(tail.trim_start_matches('/')))
    .filter(|candidate| candidate.exists())
    .collect();
    entries.sort();
    entries.pop()
}

fn run(command: &mut Command) -> Output {
    let output = command.stdin(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", text(&output));
    output
}

/// A private PostgreSQL cluster on a loopback port, owned by the `postgres` user,
/// stopped and removed when dropped.
struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    fn start() -> Option<Postgres> {
        let initdb = tool("initdb", &["/usr/lib/postgresql/*/bin/initdb"])?;
        // pg_ctl and pg_dump live beside the real initdb, wherever a link to it is.
        let initdb = fs::canonicalize(initdb).unwrap();
        let bin = initdb.parent().unwrap().to_owned();
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        run(Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path()));
        let data = dir.path().join("data");
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&initdb)
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "-D",
            ])
            .arg(&data));
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync=off",
            dir.path().display()
        );
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("pg_ctl"))
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-o", &options, "start"]));
        Some(Postgres { bin, dir, port })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Every stored row of every table, as text.
    fn dump(&self) -> String {
        let output = run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_dump"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "postgres"]));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .stdin(Stdio::null())
            .output();
    }
}

/// The chromium flags for a throwaway headless browser run as root.
fn chromium(binary: &Path, profile: &Path) -> Command {
    let mut command = Command::new("timeout");
    command
        .arg("120")
        .arg(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Where tests keep what a person may want to look at afterwards.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| fleet::repo_root().join("target"), PathBuf::from);
    let dir = target.join("test-artifacts");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn history_in_sqlite_and_postgres_answers_alike_and_draws_a_dashboard() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let (Some(postgres), Some(chromium_bin), Some(promtool)) = (
        Postgres::start(),
        tool("chromium", &[]),
        tool("promtool", &[]),
    ) else {
        return;
    };
    let [app1, app2] = fleet.hosts() else {
        panic!()
    };
    // The same inventory plus a host that cannot be reached (nothing listens on port 1).
    let with_gone_path = fleet.dir().join("inventory-gone.yml");
    fs::rename(
        support::inventory(&fleet, "        gone: { host: 127.0.0.1, port: 1 }\n"),
        &with_gone_path,
    )
    .unwrap();
    let inventory_path = support::inventory(&fleet, "");
    let inventory = inventory_path.to_str().unwrap();
    let sqlite = fleet.dir().join("history.db");
    let sqlite = sqlite.to_str().unwrap();
    let url = postgres.url();
    let metrics = fleet.dir().join("converge.prom");
    let metrics = metrics.to_str().unwrap();
    let stores = ["--history", sqlite, "--history", &url, "--metrics", metrics];
    let site = |inventory: &str, extra: &[&str]| {
        [
            &["playbooks/sidekiq.yml", "-i", inventory][..],
            &stores[..],
            extra,
        ]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let converge = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        converge_json(&fleet, &args)
    };

    // 1: the first converge changes everything on both hosts.
    let (code, first) = converge(site(inventory, &[]));
    assert_eq!(code, 0, "{first:#}");
    let resources: Vec<String> = first["plays"][0]["task_titles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|title| title.as_str().unwrap().to_owned())
        .collect();
    // 2: nothing drifted.
    let (code, report) = converge(site(inventory, &[]));
    assert_eq!(code, 0, "{report:#}");
    // 3: app2's sudoers file is deleted by hand; --check finds it, the apply repairs it.
    app2.ssh_ok("rm /etc/sudoers.d/sidekiq");
    let (code, report) = converge(site(inventory, &["--check"]));
    assert_eq!(code, 2, "{report:#}");
    let (code, report) = converge(site(inventory, &[]));
    assert_eq!(code, 0, "{report:#}");
    // 4: it is deleted again, and a host that cannot be reached joins the inventory.
    app2.ssh_ok("rm /etc/sudoers.d/sidekiq");
    let (code, report) = converge(site(with_gone_path.to_str().unwrap(), &["--check"]));
    assert_eq!(code, 1, "{report:#}");

    // 5: a no_log task's secret reaches the host and no store.
    let secret_playbook = fleet.dir().join("secret.yml");
    fs::write(
        &secret_playbook,
        "- hosts: app\n  tasks:\n    - name: api token\n      no_log: true\n      file: { path: /etc/api-token, content: \"tok-9f8e7d6c5b4a\\n\", mode: \"0600\" }\n",
    )
    .unwrap();
    let (code, report) = converge(
        [
            &[secret_playbook.to_str().unwrap(), "-i", inventory][..],
            &stores[..2],
            &stores[2..4],
        ]
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect(),
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(app1.ssh_ok("cat /etc/api-token"), "tok-9f8e7d6c5b4a");
    let bytes = [
        fs::read(sqlite).unwrap(),
        fs::read(format!("{sqlite}-wal")).unwrap_or_default(),
    ]
    .concat();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("tok-9f8e7d6c5b4a"),
        "the secret is in the SQLite file"
    );
    let dump = postgres.dump();
    assert!(dump.contains("api token"), "{dump}");
    assert!(!dump.contains("tok-9f8e7d6c5b4a"), "{dump}");

    // converge history answers the same from both stores, in every form.
    let history = |store: &str, extra: &[&str]| {
        let output = fleet.converge(&[&["history", "--history", store][..], extra].concat());
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    for extra in [
        &[][..],
        &["--format", "json"],
        &["--host", app2.name.as_str(), "--drifted"],
        &["--since", "2000-01-01", "--drifted", "--format", "json"],
    ] {
        assert_eq!(history(sqlite, extra), history(&url, extra), "{extra:?}");
    }
    let json: Value = serde_json::from_str(&history(sqlite, &["--format", "json"])).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 6, "{json:#}");
    let sudoers = "let deploy control sidekiq";
    let drift: Vec<(String, String, u64)> = json["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["host"].as_str().unwrap().to_owned(),
                d["resource"].as_str().unwrap().to_owned(),
                d["times"].as_u64().unwrap(),
            )
        })
        .collect();
    // The first converge, the check and the repair, the second check.
    assert!(
        drift.contains(&(app2.name.clone(), sudoers.to_owned(), 4)),
        "{drift:?}"
    );
    assert!(
        drift.contains(&(app1.name.clone(), sudoers.to_owned(), 1)),
        "{drift:?}"
    );
    let human = history(&url, &["--host", app2.name.as_str()]);
    assert!(
        human.contains(&format!(
            "  {sudoers} drifted on {} 4 times since ",
            app2.name
        )),
        "{human}"
    );
    let hosts: Vec<(&str, &str)> = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        hosts,
        [
            (app1.name.as_str(), "drifted"),
            (app2.name.as_str(), "drifted"),
            ("gone", "unreachable")
        ]
    );

    // The metrics of the last run that wrote them (4: the check with the lost host).
    let prom = fs::read_to_string(metrics).unwrap();
    for line in [
        "converge_hosts{state=\"converged\"} 1\n",
        "converge_hosts{state=\"drifted\"} 1\n",
        "converge_hosts{state=\"unreachable\"} 1\n",
        "converge_last_run_exit_code 1\n",
        "converge_last_run_check 1\n",
    ] {
        assert!(prom.contains(line), "{line}\n{prom}");
    }
    let checked = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(fs::File::open(metrics).unwrap())
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}\n{prom}",
        text(&checked)
    );

    // The dashboard of the history up to the lost host (the secret run left out of the
    // matrix's story would change nothing: it adds one resource, converged).
    let out = artifacts().join("dashboard");
    let _ = fs::remove_dir_all(&out);
    let output = fleet.converge(&[
        "dashboard",
        "--history",
        sqlite,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let page = out.join("index.html");
    let html = fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script") && !html.contains(" src=") && !html.contains(" href="));
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let dom = run(chromium(&chromium_bin, profile.path())
        .arg("--dump-dom")
        .arg(&url));
    let dom = String::from_utf8(dom.stdout).unwrap();
    let cell = |host: &str, resource: &str| {
        let needle = format!("data-host=\"{host}\" data-resource=\"{resource}\" data-state=\"");
        let at = dom
            .find(&needle)
            .unwrap_or_else(|| panic!("no cell for {host} x {resource} in the DOM:\n{dom}"));
        let rest = &dom[at + needle.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    };
    for host in [app1.name.as_str(), app2.name.as_str(), "gone"] {
        assert!(
            dom.contains(&format!("<th scope=\"row\">{host}</th>")),
            "{dom}"
        );
        for resource in &resources {
            assert!(
                dom.contains(&format!("<th scope=\"col\">{resource}</th>")),
                "{dom}"
            );
            let state = cell(host, resource);
            let expected = if host == "gone" {
                "unreachable"
            } else if host == app2.name && resource == sudoers {
                "drifted"
            } else {
                "converged"
            };
            assert_eq!(state, expected, "{host} x {resource}");
        }
    }
    let drifted = format!(
        "<td class=\"cell drifted\" data-host=\"{}\" data-resource=\"{sudoers}\" data-state=\"drifted\"",
        app2.name
    );
    assert!(dom.contains(&drifted), "{dom}");
    let screenshot = artifacts().join("dashboard.png");
    let _ = fs::remove_file(&screenshot);
    run(chromium(&chromium_bin, profile.path())
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1100,900")
        .arg(&url));
    let png = fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    eprintln!("dashboard screenshot: {}", screenshot.display());
}

#[test]
fn concurrent_and_killed_runs_leave_a_whole_history() {
    // Twenty hosts that refuse connections: each run stores twenty hosts and twenty
    // results quickly, and touches no machine (a local run would take this machine's
    // lock).
    let dir = tempfile::tempdir().unwrap();
    let mut inventory = String::from("all:\n  hosts:\n");
    for index in 1..=20 {
        let _ = writeln!(inventory, "    u{index}: {{ host: 127.0.0.1, port: 1 }}");
    }
    fs::write(dir.path().join("inventory.yml"), inventory).unwrap();
    fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  tasks:\n    - name: one\n      file: { path: /tmp/never, content: \"1\\n\" }\n",
    )
    .unwrap();
    let db = dir.path().join("history.db");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_converge"))
            .args(["site.yml", "--history"])
            .arg(&db)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Eight runs at once, from a missing file: one creates the tables, all are stored.
    let runs: Vec<_> = (0..8).map(|_| spawn()).collect();
    for child in runs {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    }
    // Runs killed at moments spread over their whole length, while others write.
    let started = Instant::now();
    let finished = spawn().wait_with_output().unwrap();
    assert_eq!(finished.status.code(), Some(1), "{}", text(&finished));
    let length = started.elapsed();
    let mut killed = 0;
    for round in 0..24u32 {
        let mut victim = spawn();
        let bystander = spawn();
        std::thread::sleep(length * round / 20);
        if victim.try_wait().unwrap().is_none() {
            victim.kill().unwrap();
            killed += 1;
        }
        let _ = victim.wait();
        let output = bystander.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    }
    assert!(killed > 0, "no run was still running when killed");

    let connection = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let runs: i64 = connection
        .query_row("SELECT count(*) FROM runs", [], |row| row.get(0))
        .unwrap();
    assert!(runs >= 8 + 1 + 24, "{runs} runs stored");
    let incomplete: i64 = connection
        .query_row(
            "SELECT count(*) FROM runs r WHERE \
             (SELECT count(*) FROM run_hosts h WHERE h.run_id = r.id) != 20 OR \
             (SELECT count(*) FROM task_results t WHERE t.run_id = r.id) != 20",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(incomplete, 0, "runs stored in part");
    let output = Converge::new()
        .args(["history", "--format", "json", "--history"])
        .arg(&db)
        .output();
    assert!(output.status.success(), "{}", text(&output));
    let view: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        i64::try_from(view["runs"].as_array().unwrap().len()).unwrap(),
        runs
    );
}

#[test]
fn history_refuses_a_bad_since_and_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let converge = |args: &[&str]| Converge::new().dir(dir.path()).run(args);
    let output = converge(&["history", "--history", "h.db", "--since", "last tuesday"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: --since \"last tuesday\": expected a UTC time (2026-11-30T08:00:00Z), a date \
         (2026-11-30) or a span back from now (90m, 12h, 7d, 2w)\n"
    );
    let output = converge(&["history", "--history", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("error: history {}: no such file\n", missing.display())
    );
    assert!(!missing.exists());
    let output = converge(&["dashboard", "--history", "x.db"]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let output = converge(&[
        "history",
        "--history",
        "postgres://converge:hunter2@127.0.0.1:1/converge",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: history postgres://converge:***@127.0.0.1:1/converge: "),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
