//! What history says, computed from stored runs the same way whatever the store: the
//! runs, what drifted how often, each host's latest state, and the fleet x resource
//! matrix the dashboard draws.
//!
//! A *resource* is a task (by its title); handlers are consequences, not resources. A
//! resource *drifted* in a run when its task changed something there (in check mode:
//! would have).

use indexmap::IndexMap;
use serde::Serialize;

use super::time::rfc3339;
use super::{HostState, ResultRecord, RunRecord};

/// Which runs, hosts and resources to look at.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this host.
    pub host: Option<String>,
    /// Only runs that started at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only runs in which something drifted, and hosts that drifted.
    pub drifted: bool,
}

/// The answer of `converge history`.
#[derive(Debug, Serialize)]
pub struct History {
    /// The start of the window: `--since`, else the first stored run.
    pub since: Option<String>,
    pub runs: Vec<RunView>,
    /// Resources that drifted, most often first.
    pub drift: Vec<DriftView>,
    pub hosts: Vec<HostView>,
}

/// One run, as history lists it.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub id: i64,
    pub started_at: String,
    pub playbook: String,
    pub mode: String,
    pub duration_ms: i64,
    pub exit_code: i64,
    pub hosts: StateCounts,
    /// What changed (or would have), per host and task.
    pub drifted: Vec<Drifted>,
    /// What failed, per host and task.
    pub failed: Vec<Failure>,
}

/// How many hosts ended a run in each state.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct StateCounts {
    pub converged: usize,
    pub drifted: usize,
    pub failed: usize,
    pub unreachable: usize,
}

/// A task that changed something on a host in a run.
#[derive(Debug, Serialize)]
pub struct Drifted {
    pub host: String,
    pub task: String,
    pub changes: Vec<String>,
}

/// A task that failed on a host (or found it unreachable) in a run.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub host: String,
    pub task: String,
    pub status: String,
    pub message: Option<String>,
}

/// How often one resource drifted on one host.
#[derive(Debug, Serialize)]
pub struct DriftView {
    pub host: String,
    pub resource: String,
    pub times: usize,
    pub first_at: String,
    pub last_at: String,
    pub last_run: i64,
    pub last_changes: Vec<String>,
}

/// A host's latest run.
#[derive(Debug, Serialize)]
pub struct HostView {
    pub host: String,
    pub state: HostState,
    pub last_run: i64,
    pub last_run_at: String,
    #[serde(skip)]
    pub last_run_ms: i64,
    /// Runs in the window in which the host drifted.
    pub drifted_runs: usize,
    /// Runs in the window that reached the host.
    pub runs: usize,
}

fn is_resource(result: &ResultRecord) -> bool {
    !result.handler
}

/// Computes the history view of `runs` (oldest first) under `filter`.
pub fn history(runs: &[RunRecord], filter: &Filter) -> History {
    let wanted = |host: &str| filter.host.as_deref().is_none_or(|only| only == host);
    let in_window = |run: &&RunRecord| filter.since_ms.is_none_or(|since| run.started_ms >= since);
    let mut views = Vec::new();
    let mut drift: IndexMap<(String, String), DriftView> = IndexMap::new();
    let mut hosts: IndexMap<String, HostView> = IndexMap::new();
    for run in runs.iter().filter(in_window) {
        let mut counts = StateCounts::default();
        let mut present = false;
        for host in run.hosts.iter().filter(|host| wanted(&host.host)) {
            present = true;
            match host.state {
                HostState::Converged => counts.converged += 1,
                HostState::Drifted => counts.drifted += 1,
                HostState::Failed => counts.failed += 1,
                HostState::Unreachable => counts.unreachable += 1,
            }
            let view = hosts.entry(host.host.clone()).or_insert_with(|| HostView {
                host: host.host.clone(),
                state: host.state,
                last_run: run.id,
                last_run_at: String::new(),
                last_run_ms: run.started_ms,
                drifted_runs: 0,
                runs: 0,
            });
            view.state = host.state;
            view.last_run = run.id;
            view.last_run_ms = run.started_ms;
            view.last_run_at = rfc3339(run.started_ms);
            view.runs += 1;
            view.drifted_runs += usize::from(host.changed > 0);
        }
        if !present {
            continue;
        }
        let mut drifted = Vec::new();
        let mut failed = Vec::new();
        for result in run.results.iter().filter(|result| wanted(&result.host)) {
            match result.status.as_str() {
                "changed" if is_resource(result) => {
                    drifted.push(Drifted {
                        host: result.host.clone(),
                        task: result.task.clone(),
                        changes: result.changes.clone(),
                    });
                    let entry = drift
                        .entry((result.host.clone(), result.task.clone()))
                        .or_insert_with(|| DriftView {
                            host: result.host.clone(),
                            resource: result.task.clone(),
                            times: 0,
                            first_at: rfc3339(run.started_ms),
                            last_at: String::new(),
                            last_run: run.id,
                            last_changes: Vec::new(),
                        });
                    entry.times += 1;
                    entry.last_at = rfc3339(run.started_ms);
                    entry.last_run = run.id;
                    entry.last_changes.clone_from(&result.changes);
                }
                "failed" | "unreachable" => failed.push(Failure {
                    host: result.host.clone(),
                    task: result.task.clone(),
                    status: result.status.clone(),
                    message: result.message.clone(),
                }),
                _ => {}
            }
        }
        if filter.drifted && drifted.is_empty() {
            continue;
        }
        views.push(RunView {
            id: run.id,
            started_at: rfc3339(run.started_ms),
            playbook: run.playbook.clone(),
            mode: run.mode.clone(),
            duration_ms: run.duration_ms,
            exit_code: run.exit_code,
            hosts: counts,
            drifted,
            failed,
        });
    }
    let mut drift: Vec<DriftView> = drift.into_values().collect();
    drift.sort_by_key(|drift| std::cmp::Reverse(drift.times));
    let hosts = hosts
        .into_values()
        .filter(|host| !filter.drifted || host.drifted_runs > 0)
        .collect();
    let since = filter
        .since_ms
        .or_else(|| runs.first().map(|run| run.started_ms));
    History {
        since: since.map(rfc3339),
        runs: views,
        drift,
        hosts,
    }
}

/// A resource's latest state on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CellState {
    Converged,
    Drifted,
    Failed,
    Unreachable,
    Skipped,
}

impl CellState {
    /// The word shown and used as the cell's class.
    pub fn word(self) -> &'static str {
        match self {
            CellState::Converged => "converged",
            CellState::Drifted => "drifted",
            CellState::Failed => "failed",
            CellState::Unreachable => "unreachable",
            CellState::Skipped => "skipped",
        }
    }
}

/// A cell of the fleet x resource matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    pub state: CellState,
    pub run: i64,
    pub at_ms: i64,
    pub changes: Vec<String>,
    pub message: Option<String>,
}

/// The latest state of every resource on every host.
#[derive(Debug, Default)]
pub struct Matrix {
    /// Hosts in the order they were first seen.
    pub hosts: Vec<String>,
    /// Resources in the order they were first seen.
    pub resources: Vec<String>,
    /// `(host, resource)` -> its latest cell.
    pub cells: std::collections::HashMap<(String, String), Cell>,
}

/// The matrix over `runs` (oldest first): each cell is the resource's result in the
/// latest run that had it on that host; a host whose latest run could not reach it is
/// unreachable in every cell.
pub fn matrix(runs: &[RunRecord]) -> Matrix {
    let mut matrix = Matrix::default();
    let mut unreachable_at: IndexMap<String, (i64, i64)> = IndexMap::new();
    for run in runs {
        for host in &run.hosts {
            if !matrix.hosts.contains(&host.host) {
                matrix.hosts.push(host.host.clone());
            }
            if host.state == HostState::Unreachable {
                unreachable_at.insert(host.host.clone(), (run.id, run.started_ms));
            } else {
                unreachable_at.shift_remove(&host.host);
            }
        }
        for result in run.results.iter().filter(|result| is_resource(result)) {
            if result.status == "unreachable" {
                continue;
            }
            if !matrix.resources.contains(&result.task) {
                matrix.resources.push(result.task.clone());
            }
            let state = match result.status.as_str() {
                // A pending task waits on a change check mode found: drift too.
                "changed" | "pending" => CellState::Drifted,
                "failed" => CellState::Failed,
                "skipped" => CellState::Skipped,
                _ => CellState::Converged,
            };
            matrix.cells.insert(
                (result.host.clone(), result.task.clone()),
                Cell {
                    state,
                    run: run.id,
                    at_ms: run.started_ms,
                    changes: result.changes.clone(),
                    message: result.message.clone(),
                },
            );
        }
    }
    for (host, (run, at_ms)) in unreachable_at {
        for resource in &matrix.resources {
            matrix.cells.insert(
                (host.clone(), resource.clone()),
                Cell {
                    state: CellState::Unreachable,
                    run,
                    at_ms,
                    changes: Vec::new(),
                    message: None,
                },
            );
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::run;

    fn stored() -> Vec<RunRecord> {
        let mut runs = vec![
            run(
                1_000,
                &[
                    ("app1", &[("unit", "changed"), ("sudoers", "changed")]),
                    ("app2", &[("unit", "changed"), ("sudoers", "changed")]),
                ],
            ),
            run(
                2_000,
                &[
                    ("app1", &[("unit", "ok"), ("sudoers", "ok")]),
                    ("app2", &[("unit", "changed"), ("sudoers", "ok")]),
                ],
            ),
            run(
                3_000,
                &[
                    ("app1", &[("unit", "unreachable")]),
                    ("app2", &[("unit", "changed"), ("sudoers", "failed")]),
                ],
            ),
        ];
        for (id, run) in runs.iter_mut().enumerate() {
            run.id = i64::try_from(id).unwrap() + 1;
        }
        runs
    }

    #[test]
    fn drift_is_counted_per_host_and_resource() {
        let view = history(&stored(), &Filter::default());
        let lines: Vec<String> = view
            .drift
            .iter()
            .map(|d| format!("{} {} {} {}", d.host, d.resource, d.times, d.last_run))
            .collect();
        assert_eq!(
            lines,
            [
                "app2 unit 3 3",
                "app1 unit 1 1",
                "app1 sudoers 1 1",
                "app2 sudoers 1 1"
            ]
        );
        assert_eq!(view.runs.len(), 3);
        assert_eq!(
            view.runs[2].hosts,
            StateCounts {
                unreachable: 1,
                failed: 1,
                ..StateCounts::default()
            }
        );
        assert_eq!(view.since.as_deref(), Some("1970-01-01T00:00:01Z"));
    }

    #[test]
    fn filters_narrow_runs_hosts_and_drift() {
        let filter = Filter {
            host: Some("app1".into()),
            since_ms: Some(1_500),
            drifted: true,
        };
        let view = history(&stored(), &filter);
        assert!(view.runs.is_empty(), "{view:#?}");
        assert!(view.drift.is_empty());
        assert!(view.hosts.is_empty());

        let filter = Filter {
            host: Some("app1".into()),
            ..Filter::default()
        };
        let view = history(&stored(), &filter);
        assert_eq!(view.runs.len(), 3);
        assert_eq!(view.hosts.len(), 1);
        assert_eq!(view.hosts[0].state, HostState::Unreachable);
        assert_eq!(view.hosts[0].drifted_runs, 1);
    }

    #[test]
    fn the_matrix_holds_each_resources_latest_state() {
        let matrix = matrix(&stored());
        assert_eq!(matrix.hosts, ["app1", "app2"]);
        assert_eq!(matrix.resources, ["unit", "sudoers"]);
        let state = |host: &str, resource: &str| {
            matrix.cells[&(host.to_owned(), resource.to_owned())]
                .state
                .word()
        };
        assert_eq!(state("app1", "unit"), "unreachable");
        assert_eq!(state("app1", "sudoers"), "unreachable");
        assert_eq!(state("app2", "unit"), "drifted");
        assert_eq!(state("app2", "sudoers"), "failed");
    }
}
