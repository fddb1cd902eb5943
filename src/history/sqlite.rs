//! The embedded history store: one SQLite file (SQLite is compiled into converge).
//!
//! Safe for several converge runs at once: the file is in WAL mode (readers never wait
//! for a writer), a writer waits up to [`BUSY_TIMEOUT`] for another, and a run is one
//! `BEGIN IMMEDIATE` transaction, so a run killed while writing leaves nothing of itself.
//! A new file is created readable by its owner only: it holds diffs of managed files.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension as _, TransactionBehavior};

use super::SCHEMA_VERSION;
use super::{assemble, HistoryError, HostRecord, HostState, ResultRecord, RunRecord, Store};

/// How long a run waits for another run's write to the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite's spelling of the column types.
const DIALECT: super::Dialect = super::Dialect {
    id: "INTEGER PRIMARY KEY AUTOINCREMENT",
    int: "INTEGER",
    boolean: "INTEGER",
};

/// A SQLite history file.
pub struct SqliteStore {
    location: String,
    connection: Connection,
}

impl SqliteStore {
    /// Opens `path`, creating it (mode 0600) and its tables when missing.
    pub fn open(path: &str) -> Result<SqliteStore, HistoryError> {
        let location = path.to_owned();
        let io = |source| HistoryError::Io {
            location: location.clone(),
            source,
        };
        // Created here, not by SQLite, so that it is private from the start.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(Path::new(path))
            .map_err(io)?;
        let sql = |source| HistoryError::Sqlite {
            location: location.clone(),
            source,
        };
        let mut connection = Connection::open(path).map_err(sql)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        migrate(&mut connection, &location)?;
        Ok(SqliteStore {
            location,
            connection,
        })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
        |source| HistoryError::Sqlite {
            location: self.location.clone(),
            source,
        }
    }
}

/// Brings the tables to [`SCHEMA_VERSION`], in one transaction that also keeps a
/// second run opening the file at the same moment from doing it twice.
fn migrate(connection: &mut Connection, location: &str) -> Result<(), HistoryError> {
    let sql = |source| HistoryError::Sqlite {
        location: location.to_owned(),
        source,
    };
    // The usual case, a store already at this version, costs one read and no write.
    let current: Option<i64> = connection
        .query_row("SELECT version FROM converge_schema", [], |row| row.get(0))
        .optional()
        .unwrap_or(None);
    if current == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    transaction
        .execute(
            "CREATE TABLE IF NOT EXISTS converge_schema (version INTEGER NOT NULL)",
            [],
        )
        .map_err(sql)?;
    let found: i64 = transaction
        .query_row("SELECT version FROM converge_schema", [], |row| row.get(0))
        .optional()
        .map_err(sql)?
        .unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(HistoryError::TooNew {
            location: location.to_owned(),
            found,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for step in super::migrations(&DIALECT, found) {
        transaction.execute_batch(&step).map_err(sql)?;
    }
    transaction
        .execute("DELETE FROM converge_schema", [])
        .map_err(sql)?;
    transaction
        .execute(
            "INSERT INTO converge_schema (version) VALUES (?1)",
            [SCHEMA_VERSION],
        )
        .map_err(sql)?;
    transaction.commit().map_err(sql)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

impl Store for SqliteStore {
    fn append(&mut self, run: &RunRecord) -> Result<i64, HistoryError> {
        let location = self.location.clone();
        let sql = |source| HistoryError::Sqlite {
            location: location.clone(),
            source,
        };
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        transaction
            .execute(
                "INSERT INTO runs (started_at_ms, playbook, mode, duration_ms, exit_code, \
                 converge_version, controller) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    run.started_ms,
                    run.playbook,
                    run.mode,
                    run.duration_ms,
                    run.exit_code,
                    run.converge_version,
                    run.controller
                ],
            )
            .map_err(sql)?;
        let id = transaction.last_insert_rowid();
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO run_hosts (run_id, position, host, state, ok, changed, failed, \
                     skipped, unreachable, commands) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sql)?;
            for (position, host) in run.hosts.iter().enumerate() {
                insert
                    .execute(params![
                        id,
                        super::int(position),
                        host.host,
                        host.state.word(),
                        host.ok,
                        host.changed,
                        host.failed,
                        host.skipped,
                        host.unreachable,
                        host.commands
                    ])
                    .map_err(sql)?;
            }
            let mut insert = transaction
                .prepare(
                    "INSERT INTO task_results (run_id, position, host, play, task, module, \
                     handler, status, changes, diffs, message, duration_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(sql)?;
            for (position, result) in run.results.iter().enumerate() {
                insert
                    .execute(params![
                        id,
                        super::int(position),
                        result.host,
                        result.play,
                        result.task,
                        result.module,
                        result.handler,
                        result.status,
                        json(&result.changes),
                        json(&result.diffs),
                        result.message,
                        result.duration_ms
                    ])
                    .map_err(sql)?;
            }
        }
        transaction.commit().map_err(sql)?;
        Ok(id)
    }

    fn runs(&mut self, since_ms: Option<i64>) -> Result<Vec<RunRecord>, HistoryError> {
        let since = since_ms.unwrap_or(i64::MIN);
        let location = self.location.clone();
        let sql = self.sql();
        // One read transaction: the three reads see the same runs.
        let transaction = self.connection.unchecked_transaction().map_err(&sql)?;
        let runs = rows(
            &transaction,
            "SELECT id, started_at_ms, playbook, mode, duration_ms, exit_code, \
             converge_version, controller FROM runs WHERE started_at_ms >= ?1 ORDER BY id",
            since,
            |row| {
                Ok(RunRecord {
                    id: row.get(0)?,
                    started_ms: row.get(1)?,
                    playbook: row.get(2)?,
                    mode: row.get(3)?,
                    duration_ms: row.get(4)?,
                    exit_code: row.get(5)?,
                    converge_version: row.get(6)?,
                    controller: row.get(7)?,
                    hosts: Vec::new(),
                    results: Vec::new(),
                })
            },
        )
        .map_err(&sql)?;
        let hosts = rows(
            &transaction,
            "SELECT h.run_id, h.host, h.state, h.ok, h.changed, h.failed, h.skipped, \
             h.unreachable, h.commands FROM run_hosts h JOIN runs r ON r.id = h.run_id \
             WHERE r.started_at_ms >= ?1 ORDER BY h.run_id, h.position",
            since,
            |row| {
                Ok((
                    row.get(0)?,
                    HostRecord {
                        host: row.get(1)?,
                        state: HostState::parse(&row.get::<_, String>(2)?),
                        ok: row.get(3)?,
                        changed: row.get(4)?,
                        failed: row.get(5)?,
                        skipped: row.get(6)?,
                        unreachable: row.get(7)?,
                        commands: row.get(8)?,
                    },
                ))
            },
        )
        .map_err(&sql)?;
        let rows: Vec<(i64, ResultRecord, String, String)> = rows(
            &transaction,
            "SELECT t.run_id, t.host, t.play, t.task, t.module, t.handler, t.status, \
             t.changes, t.diffs, t.message, t.duration_ms FROM task_results t \
             JOIN runs r ON r.id = t.run_id WHERE r.started_at_ms >= ?1 \
             ORDER BY t.run_id, t.position",
            since,
            |row| {
                Ok((
                    row.get(0)?,
                    ResultRecord {
                        host: row.get(1)?,
                        play: row.get(2)?,
                        task: row.get(3)?,
                        module: row.get(4)?,
                        handler: row.get(5)?,
                        status: row.get(6)?,
                        changes: Vec::new(),
                        diffs: Vec::new(),
                        message: row.get(9)?,
                        duration_ms: row.get(10)?,
                    },
                    row.get(7)?,
                    row.get(8)?,
                ))
            },
        )
        .map_err(&sql)?;
        drop(transaction);
        let results = super::decode_results(&location, rows)?;
        Ok(assemble(runs, hosts, results))
    }
}

/// Every row `query` selects for runs from `since` on, each made into a `T` by `row`.
fn rows<T>(
    transaction: &rusqlite::Transaction<'_>,
    query: &str,
    since: i64,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    transaction
        .prepare(query)?
        .query_map([since], row)?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::run;

    #[test]
    fn runs_come_back_as_they_were_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let path = path.to_str().unwrap();
        let first = run(1_000, &[("app1", &[("unit", "changed")]), ("app2", &[])]);
        let second = run(
            2_000,
            &[("app1", &[("unit", "ok")]), ("app2", &[("unit", "failed")])],
        );
        let mut store = SqliteStore::open(path).unwrap();
        assert_eq!(store.append(&first).unwrap(), 1);
        // A second connection, as a second run would open it: migrated already.
        let mut again = SqliteStore::open(path).unwrap();
        assert_eq!(again.append(&second).unwrap(), 2);
        let stored = store.runs(None).unwrap();
        assert_eq!(
            stored,
            [
                RunRecord { id: 1, ..first },
                RunRecord {
                    id: 2,
                    ..second.clone()
                }
            ]
        );
        assert_eq!(
            store.runs(Some(1_500)).unwrap(),
            [RunRecord { id: 2, ..second }]
        );
        let mode = std::fs::metadata(path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn a_store_from_a_newer_converge_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let path = path.to_str().unwrap();
        drop(SqliteStore::open(path).unwrap());
        Connection::open(path)
            .unwrap()
            .execute("UPDATE converge_schema SET version = 99", [])
            .unwrap();
        let error = SqliteStore::open(path).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "history {path}: its tables are at version 99, written by a newer converge; \
                 this one knows up to version 1"
            )
        );
    }
}
