//! Run history: each run's outcome appended to a store, and read back for
//! `converge history` and `converge dashboard`.
//!
//! A store is a SQLite file (the default: bundled SQLite, nothing to install) or a
//! PostgreSQL database (`postgres://...`, for several controllers or many pull-mode
//! hosts). Both hold the same tables, created and migrated by converge when it opens
//! them, and both write a run in one transaction: a run is stored whole or not at all,
//! also when converge is killed while writing it. What is stored comes from the run's
//! report, after the run: `no_log` values were hidden there already, and writing adds
//! no remote command.

mod command;
mod postgres;
mod sqlite;
pub mod time;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::report::RunReport;

pub use command::{dispatch, CommandError};

/// The version of the tables this converge writes; a store migrated further by a newer
/// converge is refused rather than misread.
pub const SCHEMA_VERSION: i64 = 1;

/// How one SQL dialect spells the column types the tables use.
pub(crate) struct Dialect {
    /// A run's id: an integer key the database assigns.
    pub id: &'static str,
    /// A 64-bit integer.
    pub int: &'static str,
    /// A boolean.
    pub boolean: &'static str,
}

/// Each entry takes the tables from the version before it to its own (index + 1), in
/// every dialect: `{id}`, `{int}` and `{bool}` stand for the dialect's column types.
const MIGRATIONS: &[&str] = &["
CREATE TABLE runs (
    id               {id},
    started_at_ms    {int} NOT NULL,
    playbook         TEXT    NOT NULL,
    mode             TEXT    NOT NULL,
    duration_ms      {int} NOT NULL,
    exit_code        {int} NOT NULL,
    converge_version TEXT    NOT NULL,
    controller       TEXT    NOT NULL
);
CREATE INDEX runs_started ON runs (started_at_ms);
CREATE TABLE run_hosts (
    run_id      {int} NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position    {int} NOT NULL,
    host        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    ok          {int} NOT NULL,
    changed     {int} NOT NULL,
    failed      {int} NOT NULL,
    skipped     {int} NOT NULL,
    unreachable {int} NOT NULL,
    commands    {int} NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX run_hosts_host ON run_hosts (host);
CREATE TABLE task_results (
    run_id      {int} NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    position    {int} NOT NULL,
    host        TEXT    NOT NULL,
    play        TEXT    NOT NULL,
    task        TEXT    NOT NULL,
    module      TEXT    NOT NULL,
    handler     {bool} NOT NULL,
    status      TEXT    NOT NULL,
    changes     TEXT    NOT NULL,
    diffs       TEXT    NOT NULL,
    message     TEXT,
    duration_ms {int} NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX task_results_host ON task_results (host, status);
"];

/// The statements that take the tables from version `found` to [`SCHEMA_VERSION`], in
/// `dialect`.
pub(crate) fn migrations(dialect: &Dialect, found: i64) -> Vec<String> {
    MIGRATIONS[usize::try_from(found).unwrap_or(0).min(MIGRATIONS.len())..]
        .iter()
        .map(|step| {
            step.replace("{id}", dialect.id)
                .replace("{int}", dialect.int)
                .replace("{bool}", dialect.boolean)
        })
        .collect()
}

/// Why a history store could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {location}: {source}")]
    Sqlite {
        location: String,
        source: rusqlite::Error,
    },
    #[error("history {location}: {source}")]
    Postgres {
        location: String,
        source: ::postgres::Error,
    },
    #[error("history {location}: {source}")]
    Io {
        location: String,
        source: std::io::Error,
    },
    #[error(
        "history {location}: its tables are at version {found}, written by a newer converge; \
         this one knows up to version {SCHEMA_VERSION}"
    )]
    TooNew { location: String, found: i64 },
    #[error("history {location}: a stored {what} is not valid JSON: {source}")]
    Corrupt {
        location: String,
        what: &'static str,
        source: serde_json::Error,
    },
}

/// Where runs are kept: one backend, the same operations.
pub trait Store {
    /// Appends one run in a single transaction; returns its id.
    fn append(&mut self, run: &RunRecord) -> Result<i64, HistoryError>;
    /// Every run that started at or after `since_ms` (all when `None`), oldest first,
    /// with its hosts and results.
    fn runs(&mut self, since_ms: Option<i64>) -> Result<Vec<RunRecord>, HistoryError>;
}

/// Opens (creating and migrating as needed) the store at `location`: a PostgreSQL URL
/// (`postgres://` or `postgresql://`) or a SQLite file path.
pub fn open(location: &str) -> Result<Box<dyn Store>, HistoryError> {
    if is_postgres(location) {
        Ok(Box::new(postgres::PostgresStore::open(location)?))
    } else {
        Ok(Box::new(sqlite::SqliteStore::open(location)?))
    }
}

/// Opens an existing store for reading: a SQLite path that does not exist is an error
/// here, not a new empty history.
pub fn open_existing(location: &str) -> Result<Box<dyn Store>, HistoryError> {
    if !is_postgres(location) && !std::path::Path::new(location).exists() {
        return Err(HistoryError::Io {
            location: location.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    open(location)
}

fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// `location` fit for messages: a URL's password replaced by `***`.
pub fn display_location(location: &str) -> String {
    if !is_postgres(location) {
        return location.to_owned();
    }
    let (scheme, rest) = location.split_once("://").unwrap_or(("", location));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => location.to_owned(),
        },
        None => location.to_owned(),
    }
}

/// How a host came out of a run, as history and the dashboard show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Nothing to change, nothing failed.
    Converged,
    /// Something was changed (or, in check mode, would be): the host had drifted.
    Drifted,
    /// A task failed.
    Failed,
    /// The host could not be reached.
    Unreachable,
}

impl HostState {
    /// The word stored and shown.
    pub fn word(self) -> &'static str {
        match self {
            HostState::Converged => "converged",
            HostState::Drifted => "drifted",
            HostState::Failed => "failed",
            HostState::Unreachable => "unreachable",
        }
    }

    fn parse(word: &str) -> HostState {
        match word {
            "drifted" => HostState::Drifted,
            "failed" => HostState::Failed,
            "unreachable" => HostState::Unreachable,
            _ => HostState::Converged,
        }
    }
}

/// One stored run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// Assigned by the store; 0 before the run is appended.
    pub id: i64,
    /// When the run started, in milliseconds since the Unix epoch (UTC).
    pub started_ms: i64,
    pub playbook: String,
    /// `check` or `apply`.
    pub mode: String,
    pub duration_ms: i64,
    pub exit_code: i64,
    pub converge_version: String,
    /// The machine converge ran on.
    pub controller: String,
    /// Hosts in inventory order.
    pub hosts: Vec<HostRecord>,
    /// Task (and handler) results, in report order.
    pub results: Vec<ResultRecord>,
}

/// One host's counts in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRecord {
    pub host: String,
    pub state: HostState,
    pub ok: i64,
    pub changed: i64,
    pub failed: i64,
    pub skipped: i64,
    pub unreachable: i64,
    pub commands: i64,
}

/// One task's result on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub host: String,
    pub play: String,
    pub task: String,
    pub module: String,
    pub handler: bool,
    /// The report's status word: ok, changed, failed, skipped, unreachable.
    pub status: String,
    pub changes: Vec<String>,
    pub diffs: Vec<DiffRecord>,
    pub message: Option<String>,
    pub duration_ms: i64,
}

/// A file's content before and after, as the report has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffRecord {
    pub path: String,
    pub before: Option<String>,
    pub after: String,
}

fn int(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl RunRecord {
    /// The record of a finished run, from its report. The report has hidden `no_log`
    /// values already; nothing else is read.
    pub fn from_report(report: &RunReport, started_ms: i64) -> RunRecord {
        let status_word = |status| {
            serde_json::to_value(status)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let hosts = report
            .hosts
            .iter()
            .map(|stats| HostRecord {
                host: stats.host.clone(),
                state: if stats.unreachable > 0 {
                    HostState::Unreachable
                } else if stats.failed > 0 {
                    HostState::Failed
                } else if stats.changed + stats.pending > 0 {
                    HostState::Drifted
                } else {
                    HostState::Converged
                },
                ok: int(stats.ok),
                changed: int(stats.changed),
                failed: int(stats.failed),
                skipped: int(stats.skipped),
                unreachable: int(stats.unreachable),
                commands: int(stats.commands),
            })
            .collect();
        let mut results = Vec::new();
        for play in &report.plays {
            for host in &play.hosts {
                for task in &host.tasks {
                    results.push(ResultRecord {
                        host: host.host.clone(),
                        play: play.play.clone(),
                        task: task.task.clone(),
                        module: task.module.to_owned(),
                        handler: task.handler,
                        status: status_word(task.status),
                        changes: task.changes.clone(),
                        diffs: task
                            .diffs
                            .iter()
                            .map(|diff| DiffRecord {
                                path: diff.path.clone(),
                                before: diff.before.clone(),
                                after: diff.after.clone(),
                            })
                            .collect(),
                        message: task.message.clone(),
                        duration_ms: i64::try_from(task.duration_ms).unwrap_or(i64::MAX),
                    });
                }
            }
        }
        RunRecord {
            id: 0,
            started_ms,
            playbook: report.playbook.clone(),
            mode: if report.check { "check" } else { "apply" }.to_owned(),
            duration_ms: i64::try_from(report.duration_ms).unwrap_or(i64::MAX),
            exit_code: i64::from(report.exit_code),
            converge_version: report.converge_version.to_owned(),
            controller: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map_or_else(|_| "unknown".to_owned(), |name| name.trim().to_owned()),
            hosts,
            results,
        }
    }
}

/// Appends `report` to every store in `locations`. Returns one message per store that
/// could not be written; the others are written regardless.
pub fn record(locations: &[String], report: &RunReport, started_ms: i64) -> Vec<String> {
    let run = RunRecord::from_report(report, started_ms);
    locations
        .iter()
        .filter_map(|location| {
            open(location)
                .and_then(|mut store| store.append(&run))
                .err()
                .map(|error| error.to_string())
        })
        .collect()
}

/// Fills in each result's changes and diffs from their stored JSON text.
fn decode_results(
    location: &str,
    rows: Vec<(i64, ResultRecord, String, String)>,
) -> Result<Vec<(i64, ResultRecord)>, HistoryError> {
    let corrupt = |what| {
        move |source| HistoryError::Corrupt {
            location: location.to_owned(),
            what,
            source,
        }
    };
    rows.into_iter()
        .map(|(run_id, mut result, changes, diffs)| {
            result.changes = serde_json::from_str(&changes).map_err(corrupt("change list"))?;
            result.diffs = serde_json::from_str(&diffs).map_err(corrupt("diff list"))?;
            Ok((run_id, result))
        })
        .collect()
}

/// Groups rows read by a backend into their runs (rows of runs not in `runs` are
/// dropped: a run appended between the two reads).
fn assemble(
    mut runs: Vec<RunRecord>,
    hosts: Vec<(i64, HostRecord)>,
    results: Vec<(i64, ResultRecord)>,
) -> Vec<RunRecord> {
    let index: std::collections::HashMap<i64, usize> = runs
        .iter()
        .enumerate()
        .map(|(position, run)| (run.id, position))
        .collect();
    for (run_id, host) in hosts {
        if let Some(&position) = index.get(&run_id) {
            runs[position].hosts.push(host);
        }
    }
    for (run_id, result) in results {
        if let Some(&position) = index.get(&run_id) {
            runs[position].results.push(result);
        }
    }
    runs
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A run with `hosts`, each with one result per `(task, status)`.
    pub fn run(started_ms: i64, hosts: &[(&str, &[(&str, &str)])]) -> RunRecord {
        let mut record = RunRecord {
            id: 0,
            started_ms,
            playbook: "site.yml".into(),
            mode: "apply".into(),
            duration_ms: 40,
            exit_code: 0,
            converge_version: "0.1.0".into(),
            controller: "ops1".into(),
            hosts: vec![],
            results: vec![],
        };
        for (host, tasks) in hosts {
            let changed = tasks.iter().filter(|(_, s)| *s == "changed").count();
            let failed = tasks.iter().filter(|(_, s)| *s == "failed").count();
            let unreachable = tasks.iter().filter(|(_, s)| *s == "unreachable").count();
            record.hosts.push(HostRecord {
                host: (*host).into(),
                state: if unreachable > 0 {
                    HostState::Unreachable
                } else if failed > 0 {
                    HostState::Failed
                } else if changed > 0 {
                    HostState::Drifted
                } else {
                    HostState::Converged
                },
                ok: int(tasks.len() - failed - unreachable),
                changed: int(changed),
                failed: int(failed),
                skipped: 0,
                unreachable: int(unreachable),
                commands: 1,
            });
            for (task, status) in *tasks {
                record.results.push(ResultRecord {
                    host: (*host).into(),
                    play: "site".into(),
                    task: (*task).into(),
                    module: "file".into(),
                    handler: false,
                    status: (*status).into(),
                    changes: if *status == "changed" {
                        vec![format!("update /etc/{task}")]
                    } else {
                        vec![]
                    },
                    diffs: if *status == "changed" {
                        vec![DiffRecord {
                            path: format!("/etc/{task}"),
                            before: Some("old\n".into()),
                            after: "new <b>\n".into(),
                        }]
                    } else {
                        vec![]
                    },
                    message: (*status == "failed").then(|| "it broke".to_owned()),
                    duration_ms: 3,
                });
            }
        }
        record.exit_code = i64::from(record.hosts.iter().any(|h| h.state >= HostState::Failed));
        record
    }

    #[test]
    fn a_password_never_appears_in_messages() {
        assert_eq!(
            display_location("postgres://ops:hunter2@db.example:5432/converge?sslmode=disable"),
            "postgres://ops:***@db.example:5432/converge?sslmode=disable"
        );
        assert_eq!(
            display_location("postgresql://ops@db/converge"),
            "postgresql://ops@db/converge"
        );
        assert_eq!(display_location("/var/lib/h.db"), "/var/lib/h.db");
    }
}
