//! The engine: runs plays on hosts, in parallel, and collects what happened.
//!
//! Per host and play: connect (once per host, reused), read every fact the play's tasks
//! need in one remote command, then for each task plan against the facts and either
//! apply the plan (re-reading, before their next use, the facts a change touched) or,
//! in check mode, record the plan's predicted effects so later tasks see the state
//! earlier ones would leave. A host that fails or cannot be reached is recorded and
//! skipped from then on; it never stops the others. Hosts share nothing mutable: each
//! worker owns its host's state, and results are printed in inventory order.
//!
//! This file holds the run of a play over its hosts (batches, `serial`, stopping a
//! rollout); one host's run is in `play_run`, its fact reads in `facts`, its remote
//! commands in `remote`, templates and parameters in `render`, what happened in
//! `outcome`.

mod actions;
mod batch;
mod facts;
mod flow;
mod host;
mod loops;
mod once;
mod outcome;
mod play_run;
mod remote;
mod render;
mod results;
mod retries;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::inventory::Vars;
use crate::playbook::{Play, Task};
use crate::progress::{Display, Progress};
use crate::rollout::{stop_reason, Batch, Rollout};
use crate::template::TemplateError;
use crate::transport::{Limits, TransportError};

pub use host::HostRun;
// A file's diff is named outside the engine only by the report's tests.
#[cfg_attr(not(test), allow(unused_imports))]
pub use outcome::FileDiff;
pub use outcome::{HostPlay, HostStats, PlayOutcome, Status, TaskOutcome};
pub use render::{check_inputs, InputError};

use host::HostLock;
use outcome::outcome;
use play_run::PlayRun;
use render::ParamFailure;

/// How a run behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub check: bool,
    pub forks: usize,
    pub tags: crate::playbook::TagFilter,
    pub extra_vars: Vars,
    pub verbose: u8,
    /// How long to wait for another run's lock on a host, in seconds.
    pub lock_wait: u32,
    /// Draw a live progress line on a terminal's stderr.
    pub progress: bool,
    /// What one host may cost the controller.
    pub limits: Limits,
}

/// Why a task failed on a host.
#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("invalid parameters: {0}")]
    Params(ParamFailure),
    #[error(transparent)]
    Plan(#[from] converge_modules::PlanError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A remote command failed.
    #[error("{what} failed (exit status {status}): {detail}")]
    Remote {
        what: String,
        status: i32,
        /// Its stderr, or its stdout when stderr is empty.
        detail: String,
    },
    #[error("sudo on {host} asks {user} for a password; become uses `sudo -n`, which cannot answer a prompt: give {user} passwordless sudo, or connect as root")]
    SudoPrompt { host: String, user: String },
    #[error(transparent)]
    Facts(#[from] converge_modules::fact::FactError),
    #[error("not connected")]
    NotConnected,
    /// Another run holds the host's lock (the lock's own words).
    #[error("{0}")]
    Locked(String),
    /// A change planned by an earlier task failed when the host's batch was sent: that
    /// task fails, and this one never ran (see `batch`).
    #[error("an earlier task's change failed")]
    EarlierChange,
    /// An action failed (`assert`, `fail`): its message.
    #[error("{0}")]
    Action(String),
}

/// Runs one play on the given hosts (indices into `hosts`), `forks` at a time.
pub fn run_play(
    play: &Play,
    members: &[usize],
    hosts: &mut [HostRun],
    options: &Options,
    pool: &rayon::ThreadPool,
) -> PlayOutcome {
    let selected: BTreeSet<usize> = members.iter().copied().collect();
    let mut workers: Vec<&mut HostRun> = hosts
        .iter_mut()
        .enumerate()
        .filter(|(index, host)| selected.contains(index) && host.down.is_none())
        .map(|(_, host)| host)
        .collect();
    let sizes = match &play.serial {
        Some(serial) => serial.batches(workers.len()),
        None => vec![workers.len()],
    };
    let allowed_failures = play.max_fail_percentage.unwrap_or(0);
    let mut results = Vec::with_capacity(workers.len());
    let mut called_off: Option<String> = None;
    let mut rollout = Rollout::default();
    // Under `any_errors_fatal`, a failure on one host stops the others of its batch
    // before their next task.
    let abort = AtomicBool::new(false);
    let progress = Arc::new(Progress::default());
    let titles = play.tasks.iter().map(Task::title).collect();
    let _display = Display::start(
        &progress,
        &play.title(),
        workers.len(),
        titles,
        options.progress,
    );
    let mut rest: &mut [&mut HostRun] = &mut workers;
    for size in sizes {
        let (batch, later) = std::mem::take(&mut rest).split_at_mut(size);
        rest = later;
        if interrupted() {
            break;
        }
        rollout.batches.push(Batch {
            hosts: batch.iter().map(|host| host.name.clone()).collect(),
            ran: called_off.is_none(),
            failed: 0,
        });
        if let Some(reason) = &called_off {
            let first = play
                .tasks
                .iter()
                .position(|task| task.selected(&options.tags));
            for host in batch.iter_mut() {
                // The rollout stops for this host, in this play and the next ones.
                host.down = Some(Status::Skipped);
                let tasks = first
                    .map(|index| {
                        let task = &play.tasks[index];
                        outcome(index, false, task, Status::Skipped, Instant::now())
                            .with_message(reason.clone())
                    })
                    .into_iter()
                    .collect();
                results.push(HostPlay {
                    host: host.name.clone(),
                    tasks,
                });
            }
            continue;
        }
        // `run_once` tasks run on the batch's first host.
        let first_host = batch.first().map(|host| host.name.clone());
        let abort_on = play.any_errors_fatal.then_some(&abort);
        let batch_results: Vec<HostPlay> = if once::shares_once(play) {
            once::run_in_phases(play, batch, options, &progress, abort_on, pool)
        } else {
            pool.install(|| {
                batch
                    .par_iter_mut()
                    .map(|host| {
                        let mut run = PlayRun::new(play, host, options, &progress);
                        run.first_host.clone_from(&first_host);
                        run.abort = abort_on;
                        let tasks = run.run();
                        progress.host_done();
                        HostPlay {
                            host: host.name.clone(),
                            tasks,
                        }
                    })
                    .collect()
            })
        };
        let failed = batch_results
            .iter()
            .filter(|host| {
                host.tasks
                    .iter()
                    .any(|task| matches!(task.status, Status::Failed | Status::Unreachable))
            })
            .count();
        if let Some(batch) = rollout.batches.last_mut() {
            batch.failed = failed;
        }
        if play.serial.is_some() || play.any_errors_fatal {
            rollout.stopped = stop_reason(
                failed,
                batch_results.len(),
                allowed_failures,
                play.any_errors_fatal,
            );
            called_off = rollout
                .stopped
                .as_ref()
                .map(|reason| format!("not run: {reason}"));
        }
        results.extend(batch_results);
    }
    let rollout = (play.serial.is_some() || rollout.stopped.is_some()).then_some(rollout);
    PlayOutcome {
        play: play.title(),
        task_titles: play.tasks.iter().map(Task::title).collect(),
        handler_titles: play.handlers.iter().map(Task::title).collect(),
        hosts: results,
        rollout,
    }
}

/// Gives back every host lock this run holds (at the end of a run, also an
/// interrupted one): the command holding it is told to end, which costs no remote
/// command. A host that cannot be reached any more gets its lock back when its
/// connection ends, by the same mechanism (see `lock`).
pub fn release_locks(hosts: &mut [HostRun], pool: &rayon::ThreadPool) {
    pool.install(|| {
        hosts.par_iter_mut().for_each(|host| {
            if std::mem::replace(&mut host.lock, HostLock::Free) == HostLock::Free {
                return;
            }
            if let Some(transport) = host.transport.as_mut() {
                transport.release();
            }
        });
    });
}

/// Counts outcomes per host over a run, in `hosts` order.
pub fn stats(hosts: &[HostRun], plays: &[PlayOutcome]) -> Vec<HostStats> {
    hosts
        .iter()
        .map(|host| {
            let mut stats = HostStats {
                host: host.name.clone(),
                commands: host.commands,
                ..HostStats::default()
            };
            for outcome in plays
                .iter()
                .flat_map(|play| &play.hosts)
                .filter(|h| h.host == host.name)
            {
                for status in counted(&outcome.tasks) {
                    match status {
                        Status::Ok => stats.ok += 1,
                        Status::Changed => {
                            stats.ok += 1;
                            stats.changed += 1;
                        }
                        Status::Failed => stats.failed += 1,
                        Status::Ignored => {
                            stats.ok += 1;
                            stats.ignored += 1;
                        }
                        Status::Rescued => stats.rescued += 1,
                        Status::Skipped => stats.skipped += 1,
                        Status::Unreachable => stats.unreachable += 1,
                        Status::Pending => stats.pending += 1,
                    }
                }
            }
            stats
        })
        .collect()
}

/// The status each task counts with in the recap: a looped task's items count as one
/// task (as Ansible counts), with the status that says most about them (a failure,
/// then a rescue, an ignored failure, pending, changed, ok; skipped when all were).
fn counted(tasks: &[TaskOutcome]) -> Vec<Status> {
    let weight = |status: Status| match status {
        Status::Unreachable => 8,
        Status::Failed => 7,
        Status::Rescued => 6,
        Status::Ignored => 5,
        Status::Pending => 4,
        Status::Changed => 3,
        Status::Ok => 2,
        Status::Skipped => 1,
    };
    let mut statuses: Vec<Status> = Vec::with_capacity(tasks.len());
    let mut previous: Option<&TaskOutcome> = None;
    for task in tasks {
        let same_loop = previous.is_some_and(|before| {
            before.item.is_some()
                && task.item.is_some()
                && (before.index, before.handler) == (task.index, task.handler)
        });
        match statuses.last_mut() {
            Some(last) if same_loop => {
                if weight(task.status) > weight(*last) {
                    *last = task.status;
                }
            }
            _ => statuses.push(task.status),
        }
        previous = Some(task);
    }
    statuses
}

/// Why a host's remaining tasks were skipped under `any_errors_fatal`.
const ABORTED: &str = "not run: another host of this batch failed (any_errors_fatal)";

/// Set when the user asks converge to stop (SIGINT, SIGTERM): no new task starts, the
/// ones running finish.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether the run was asked to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}
