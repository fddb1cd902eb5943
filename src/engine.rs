//! The engine: runs plays on hosts, in parallel, and collects what happened.
//!
//! Per host and play: connect (once per host, reused), read every fact the play's tasks
//! need in one remote command, then for each task plan against the facts and either
//! apply the plan (re-reading, before their next use, the facts a change touched) or,
//! in check mode, record the plan's predicted effects so later tasks see the state
//! earlier ones would leave. A host that fails or cannot be reached is recorded and
//! skipped from then on; it never stops the others. Hosts share nothing mutable: each
//! worker owns its host's state, and results are printed in inventory order.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use converge_modules::accounts::{AccountFact, AccountKey};
use converge_modules::fact::{batch_script, split_batch, Fact, FactKey, Touch, UnitRef, UserInfo};
use converge_modules::paths::PathKey;
use converge_modules::sequence;
use converge_modules::{shell, Change, Cmd, DynModule, FactStore, ParamError, Sudo, SystemInfo};
use rayon::prelude::*;
use serde::Serialize;

use crate::inventory::Vars;
use crate::lock;
use crate::playbook::{self, ContentSource, Play, Playbook, Task};
use crate::progress::{Display, Progress};
use crate::report::escape_control;
use crate::restarts;
use crate::rollout::{stop_reason, Batch, Rollout};
use crate::template::{Renderer, TemplateError};
use crate::transport::{self, Limits, Output, Target, Transport, TransportError};

/// How a run behaves.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub check: bool,
    pub forks: usize,
    pub tags: Vec<String>,
    pub extra_vars: Vars,
    pub verbose: u8,
    /// How long to wait for another run's lock on a host, in seconds.
    pub lock_wait: u32,
    /// Draw a live progress line on a terminal's stderr.
    pub progress: bool,
    /// What one host may cost the controller.
    pub limits: Limits,
}

/// What happened to one task on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

/// A file whose content changes (or would), for `--diff` and reports.
#[derive(Debug, Clone, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// `None`: the file is new.
    pub before: Option<String>,
    pub after: String,
}

/// The outcome of one task (or handler) on one host.
#[derive(Debug, Clone, Serialize)]
pub struct TaskOutcome {
    /// Index into the play's tasks (or handlers, when `handler`).
    #[serde(skip)]
    pub index: usize,
    pub handler: bool,
    pub task: String,
    pub module: &'static str,
    pub status: Status,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<FileDiff>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the module checked and found right (e.g. sudo rules verified).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub duration_ms: u64,
}

/// One host's part of a play.
#[derive(Debug, Clone, Serialize)]
pub struct HostPlay {
    pub host: String,
    pub tasks: Vec<TaskOutcome>,
}

/// A play's outcome on every host it ran on.
#[derive(Debug, Clone, Serialize)]
pub struct PlayOutcome {
    pub play: String,
    pub task_titles: Vec<String>,
    pub handler_titles: Vec<String>,
    pub hosts: Vec<HostPlay>,
    /// The batches of a rolling play (`serial`) and why it stopped, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// Counts per host over the whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostStats {
    pub host: String,
    /// Tasks that succeeded, changed or not (as Ansible counts).
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub unreachable: usize,
    /// Remote commands run on the host.
    pub commands: usize,
}

/// Why a task failed on a host.
#[derive(Debug, thiserror::Error)]
enum TaskError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("invalid parameters: {0}")]
    Params(String),
    #[error(transparent)]
    Plan(#[from] converge_modules::PlanError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Remote(String),
    #[error("{0}")]
    Locked(String),
}

/// An input problem found before any host is contacted.
#[derive(Debug, thiserror::Error)]
#[error("play `{play}`, host {host}: {message}")]
pub struct InputError {
    pub play: String,
    pub host: String,
    pub message: String,
}

/// Whether a run holds a host's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostLock {
    Free,
    Held,
}

/// A host as the engine sees it for a whole run.
pub struct HostRun {
    pub name: String,
    pub target: Target,
    pub vars: Vars,
    transport: Option<Box<dyn Transport>>,
    facts: FactStore,
    /// Set once the host failed, was unreachable, or was left out of a rollout that
    /// was called off: later plays skip it.
    down: Option<Status>,
    commands: usize,
    nonce: String,
    /// Whether this run holds the host's lock (see `lock`).
    lock: HostLock,
    /// Files a `no_log` task manages: their content is a secret, so no later diff
    /// shows it (not even as the "before" side, read from the host or predicted).
    secret_paths: BTreeSet<String>,
    /// Units this run restarted on the host: each at most once per run.
    restarted: BTreeSet<UnitRef>,
}

impl HostRun {
    /// A host not yet connected.
    pub fn new(name: String, target: Target, vars: Vars) -> Self {
        let nonce = format!(
            "{:016x}",
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        );
        HostRun {
            name,
            target,
            vars,
            transport: None,
            facts: FactStore::default(),
            down: None,
            commands: 0,
            nonce,
            lock: HostLock::Free,
            secret_paths: BTreeSet::new(),
            restarted: BTreeSet::new(),
        }
    }
}

/// Variables for templates on one host: inventory vars, then play vars, then `-e`
/// vars, plus facts (`converge_*`, `inventory_hostname`).
fn host_vars(
    host: &HostRun,
    play: &Play,
    options: &Options,
    renderer: &Renderer,
) -> Result<Vars, TemplateError> {
    let mut vars = host.vars.clone();
    vars.insert("inventory_hostname".to_owned(), host.name.clone().into());
    let system = host
        .facts
        .system()
        .ok()
        .cloned()
        .unwrap_or_else(|| SystemInfo {
            hostname: host.name.clone(),
            os: "unknown".to_owned(),
            ..SystemInfo::default()
        });
    let sudo = system.sudo.unwrap_or_else(|| Sudo {
        path: String::new(),
        flavour: "none".to_owned(),
        version: String::new(),
    });
    for (name, value) in [
        ("converge_hostname", system.hostname),
        ("converge_os", system.os),
        ("converge_os_version", system.os_version),
        ("converge_sudo_flavour", sudo.flavour),
        ("converge_sudo_version", sudo.version),
    ] {
        vars.insert(name.to_owned(), value.into());
    }
    vars.insert(
        "converge_systemd_version".to_owned(),
        system
            .systemd_version
            .map_or(serde_json::Value::Null, Into::into),
    );
    // `-e` values win over play vars, and play vars built from them must see them too.
    vars.extend(
        options
            .extra_vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    for (key, value) in &play.vars {
        if options.extra_vars.contains_key(key) {
            continue;
        }
        let origin = format!("play variable `{key}`");
        let rendered = renderer.render_json(value, &vars, &origin)?;
        vars.insert(key.clone(), rendered);
    }
    Ok(vars)
}

/// Renders a task's parameters for one host and checks them. For a `no_log` task the
/// error names the task and the parameter, never a value (see [`hidden`]).
fn render_task(
    renderer: &Renderer,
    task: &Task,
    vars: &Vars,
) -> Result<Box<dyn DynModule>, TaskError> {
    let mut culprit = Culprit::default();
    let result = build_task(renderer, task, vars, &mut culprit);
    match result {
        Err(error) if task.no_log => Err(hidden(error, &culprit)),
        other => other,
    }
}

/// Which parameter an error was about, and whether its message may hold a value.
#[derive(Default)]
struct Culprit {
    param: Option<String>,
    /// The message names parameters only (`give exactly one of ...`).
    value_free: bool,
}

fn build_task(
    renderer: &Renderer,
    task: &Task,
    vars: &Vars,
    culprit: &mut Culprit,
) -> Result<Box<dyn DynModule>, TaskError> {
    let origin = format!("task `{}`", task.title());
    let mut params = match &task.params {
        serde_json::Value::Object(map) => {
            let mut rendered = serde_json::Map::new();
            for (key, value) in map {
                culprit.param = Some(key.clone());
                rendered.insert(key.clone(), renderer.render_json(value, vars, &origin)?);
            }
            culprit.param = None;
            serde_json::Value::Object(rendered)
        }
        other => renderer.render_json(other, vars, &origin)?,
    };
    if let Some(source) = &task.source {
        let content = match source {
            ContentSource::File { content, .. } => content.clone(),
            ContentSource::Template { path, source } => {
                culprit.param = Some("template".to_owned());
                let content =
                    renderer.render(source, vars, &format!("template {}", path.display()))?;
                culprit.param = None;
                content
            }
        };
        if let Some(map) = params.as_object_mut() {
            map.insert("content".to_owned(), content.into());
        }
    }
    let module = task.module.with_json(params.clone()).map_err(|error| {
        let message = error.to_string();
        culprit.param = playbook::param_holding(&params, |value| message.contains(value));
        TaskError::Params(message)
    })?;
    module.validate().map_err(|error| {
        match &error {
            ParamError::Invalid { param, .. } => culprit.param = Some((*param).to_owned()),
            ParamError::Name(name) => {
                culprit.param = playbook::param_holding(&params, |value| value == name.value);
            }
            ParamError::Required { .. }
            | ParamError::OneOf { .. }
            | ParamError::AtMostOne { .. } => {
                culprit.value_free = true;
            }
        }
        TaskError::Params(error.to_string())
    })?;
    Ok(module)
}

/// What may be said about a `no_log` task's input error: the parameter, not the value.
/// An undefined variable is named (a name is not a value), and messages that name
/// parameters only are kept.
fn hidden(error: TaskError, culprit: &Culprit) -> TaskError {
    let param = culprit
        .param
        .as_ref()
        .map_or_else(|| "a parameter".to_owned(), |param| format!("`{param}`"));
    match error {
        TaskError::Template(TemplateError::Undefined { .. }) => error,
        TaskError::Params(_) if culprit.value_free => error,
        TaskError::Template(_) => TaskError::Params(format!(
            "{param} has a template error (details hidden: no_log)"
        )),
        _ => TaskError::Params(format!("{param} is invalid (details hidden: no_log)")),
    }
}

/// A template error of a `no_log` play's variables, without the details.
fn hidden_vars_error(error: &TemplateError) -> String {
    match error {
        TemplateError::Undefined { .. } => error.to_string(),
        TemplateError::Invalid { origin, .. } => {
            format!("template error in {origin} (details hidden: no_log)")
        }
    }
}

/// Renders and validates every task of every play for every host, without contacting
/// any: template and parameter errors are input errors (exit 3), found up front.
pub fn check_inputs(
    playbook: &Playbook,
    plays: &[(usize, Vec<usize>)],
    hosts: &[HostRun],
    options: &Options,
) -> Result<(), InputError> {
    let renderer = Renderer::new();
    for (play_index, members) in plays {
        let play = &playbook.plays[*play_index];
        for &member in members {
            let host = &hosts[member];
            let input_error = |message: String| InputError {
                play: play.title(),
                host: host.name.clone(),
                message,
            };
            let vars = host_vars(host, play, options, &renderer).map_err(|error| {
                input_error(if play.no_log {
                    hidden_vars_error(&error)
                } else {
                    error.to_string()
                })
            })?;
            for task in play.tasks.iter().chain(&play.handlers) {
                render_task(&renderer, task, &vars).map_err(|error| {
                    input_error(match error {
                        TaskError::Params(message) => format!("task `{}`: {message}", task.title()),
                        other => other.to_string(),
                    })
                })?;
                if let Some(when) = &task.when {
                    renderer
                        .condition(
                            when,
                            &vars,
                            &format!("the `when` of task `{}`", task.title()),
                        )
                        .map_err(|error| {
                            input_error(if task.no_log {
                                hidden_vars_error(&error)
                            } else {
                                error.to_string()
                            })
                        })?;
                }
            }
        }
    }
    Ok(())
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
        let batch_results: Vec<HostPlay> = pool.install(|| {
            batch
                .par_iter_mut()
                .map(|host| {
                    let mut run = PlayRun::new(play, host, options, &progress);
                    if play.any_errors_fatal {
                        run.abort = Some(&abort);
                    }
                    let tasks = run.run();
                    progress.host_done();
                    HostPlay {
                        host: host.name.clone(),
                        tasks,
                    }
                })
                .collect()
        });
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
                for task in &outcome.tasks {
                    match task.status {
                        Status::Ok => stats.ok += 1,
                        Status::Changed => {
                            stats.ok += 1;
                            stats.changed += 1;
                        }
                        Status::Failed => stats.failed += 1,
                        Status::Skipped => stats.skipped += 1,
                        Status::Unreachable => stats.unreachable += 1,
                    }
                }
            }
            stats
        })
        .collect()
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

/// One play on one host.
struct PlayRun<'a> {
    play: &'a Play,
    host: &'a mut HostRun,
    options: &'a Options,
    renderer: Renderer,
    /// Whom commands run as, when that is not the login user (`sudo -n [-u USER]`).
    acting_as: Option<String>,
    /// Keep the commands of the current task out of `-v` output.
    hide_commands: bool,
    /// Where this host reports how far it got, for the progress line.
    progress: &'a Progress,
    /// Take the host's lock with the next fact read, unless it is held already.
    take_lock: bool,
    /// The play's tasks and handlers, rendered before the first read: which facts
    /// they will ask for, so that one read serves all of them.
    expected: Vec<Box<dyn DynModule>>,
    /// Handlers notified so far.
    notified: BTreeSet<String>,
    /// Set by the first failure of a host when the play has `any_errors_fatal`.
    abort: Option<&'a AtomicBool>,
}

impl<'a> PlayRun<'a> {
    fn new(
        play: &'a Play,
        host: &'a mut HostRun,
        options: &'a Options,
        progress: &'a Progress,
    ) -> Self {
        let acting_as = Self::identity(play, None, &host.target.user);
        PlayRun {
            play,
            host,
            options,
            renderer: Renderer::new(),
            acting_as,
            hide_commands: false,
            progress,
            // Check mode reads under the lock from the start; apply mode takes it
            // before its first change (see `converge_task`).
            take_lock: options.check,
            expected: Vec::new(),
            notified: BTreeSet::new(),
            abort: None,
        }
    }

    /// The user a task's commands run as, when it differs from the login user.
    fn identity(play: &Play, task: Option<&Task>, login: &str) -> Option<String> {
        let wanted = task
            .and_then(|task| task.become_user.clone())
            .or_else(|| play.become_user.clone())
            .or_else(|| play.become_root.then(|| "root".to_owned()))?;
        (wanted != login).then_some(wanted)
    }

    fn run(mut self) -> Vec<TaskOutcome> {
        let mut outcomes = Vec::new();
        let first_task = self
            .play
            .tasks
            .iter()
            .position(|task| task.selected(&self.options.tags));
        let Some(first_task) = first_task else {
            return outcomes;
        };
        if self.host.transport.is_none() {
            let started = Instant::now();
            match transport::connect(&self.host.target, self.options.limits) {
                Ok(transport) => self.host.transport = Some(transport),
                Err(error) => {
                    self.host.down = Some(Status::Unreachable);
                    let task = &self.play.tasks[first_task];
                    outcomes.push(
                        outcome(first_task, false, task, Status::Unreachable, started)
                            .with_message(error.to_string()),
                    );
                    return outcomes;
                }
            }
        }
        if let Err(error) = self.prefetch() {
            let status = match error {
                TaskError::Transport(ref error) => Some(transport_status(error)),
                TaskError::Locked(_) => Some(Status::Failed),
                _ => None,
            };
            if let Some(status) = status {
                self.host.down = Some(status);
                let task = &self.play.tasks[first_task];
                outcomes.push(
                    outcome(first_task, false, task, status, Instant::now())
                        .with_message(error.to_string()),
                );
                return outcomes;
            }
            // Anything else is about some fact: let each task read its own, so the
            // error is reported by the task it concerns.
        }
        for (index, task) in self.play.tasks.iter().enumerate() {
            if !task.selected(&self.options.tags) {
                continue;
            }
            if interrupted() {
                return outcomes;
            }
            if self.aborted() {
                self.host.down = Some(Status::Skipped);
                outcomes.push(
                    outcome(index, false, task, Status::Skipped, Instant::now())
                        .with_message(ABORTED.to_owned()),
                );
                return outcomes;
            }
            self.progress.task_started(index);
            let result = self.run_task(index, false, task);
            if result.status == Status::Changed {
                self.notified.extend(task.notify.iter().cloned());
            }
            let failed = matches!(result.status, Status::Failed | Status::Unreachable);
            outcomes.push(result);
            if failed {
                self.fail_fast();
                return outcomes;
            }
        }
        for (index, handler) in self.play.handlers.iter().enumerate() {
            if !self.notified.contains(&handler.title()) || interrupted() || self.aborted() {
                continue;
            }
            let result = self.run_task(index, true, handler);
            let failed = matches!(result.status, Status::Failed | Status::Unreachable);
            if result.status == Status::Changed {
                self.notified.extend(handler.notify.iter().cloned());
            }
            outcomes.push(result);
            if failed {
                self.fail_fast();
                break;
            }
        }
        outcomes
    }

    /// Whether another host's failure stopped the play (`any_errors_fatal`).
    fn aborted(&self) -> bool {
        self.abort
            .is_some_and(|abort| abort.load(Ordering::Relaxed))
    }

    /// Under `any_errors_fatal`, stops the play on the other hosts too.
    fn fail_fast(&self) {
        if let Some(abort) = self.abort {
            abort.store(true, Ordering::Relaxed);
        }
    }

    /// The units the handlers notified so far, or by `task` once it changes something,
    /// restart.
    fn handler_restarts(&self, task: &Task) -> BTreeSet<UnitRef> {
        let Ok(vars) = host_vars(self.host, self.play, self.options, &self.renderer) else {
            return BTreeSet::new();
        };
        self.play
            .handlers
            .iter()
            .filter(|handler| {
                let title = handler.title();
                self.notified.contains(&title) || task.notify.contains(&title)
            })
            .filter_map(|handler| render_task(&self.renderer, handler, &vars).ok())
            .filter_map(|module| module.restarts())
            .collect()
    }

    /// Reads, in one command, every fact the play's tasks will ask for first.
    fn prefetch(&mut self) -> Result<(), TaskError> {
        self.host.facts.start_play();
        let vars = host_vars(self.host, self.play, self.options, &self.renderer)?;
        let mut keys = vec![FactKey::System];
        let mut modules = Vec::new();
        for task in self.play.tasks.iter().chain(&self.play.handlers) {
            if !task.selected(&self.options.tags) {
                continue;
            }
            if let Ok(module) = render_task(&self.renderer, task, &vars) {
                if task.no_log {
                    self.host
                        .secret_paths
                        .extend(content_paths(&*module, &self.host.facts));
                }
                self.host.facts.promise(module.promises());
                keys.extend(module.facts(&self.host.facts));
                modules.push(module);
            }
        }
        keys.extend(guessed_facts(&self.host.facts, &keys, &modules));
        self.read_facts(keys)?;
        // A fact may name another (a user's home, then a file in it): ask every task
        // again with what is known, and read what is new for all of them in one command
        // per round, not one per task.
        for _ in 0..3 {
            let more: Vec<FactKey> = modules
                .iter()
                .flat_map(|module| module.facts(&self.host.facts))
                .filter(|key| !self.host.facts.has(key))
                .collect();
            if more.is_empty() {
                break;
            }
            self.read_facts(more)?;
        }
        self.expected = modules;
        Ok(())
    }

    fn run_task(&mut self, index: usize, handler: bool, task: &Task) -> TaskOutcome {
        let started = Instant::now();
        let mut result = outcome(index, handler, task, Status::Ok, started);
        let play_identity = std::mem::replace(
            &mut self.acting_as,
            Self::identity(self.play, Some(task), &self.host.target.user),
        );
        let secret = task.no_log;
        self.hide_commands = secret;
        match self.converge_task(task, &mut result) {
            Ok(status) => result.status = status,
            Err(error) => {
                result.status = if let TaskError::Transport(error) = &error {
                    transport_status(error)
                } else {
                    Status::Failed
                };
                self.host.down = Some(result.status);
                result.message = Some(error.to_string());
            }
        }
        self.acting_as = play_identity;
        self.hide_commands = false;
        if secret {
            redact(&mut result);
        }
        result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        result
    }

    fn converge_task(
        &mut self,
        task: &Task,
        result: &mut TaskOutcome,
    ) -> Result<Status, TaskError> {
        let vars = host_vars(self.host, self.play, self.options, &self.renderer)?;
        if let Some(when) = &task.when {
            let origin = format!("the `when` of task `{}`", task.title());
            if !self.renderer.condition(when, &vars, &origin)? {
                return Ok(Status::Skipped);
            }
        }
        let module = render_task(&self.renderer, task, &vars)?;
        self.read_missing(&*module)?;
        if task.no_log {
            let paths = content_paths(&*module, &self.host.facts);
            self.host.secret_paths.extend(paths);
        }
        let mut plan = module.plan(&self.host.facts)?;
        if !self.options.check && !plan.changes.is_empty() && self.host.lock == HostLock::Free {
            // Changes are made under the host's lock. It is taken before the first one,
            // not with the first read, so a run with nothing to change never takes it
            // (nor spends a command giving it back). Another run may have changed the
            // host since it was read: read everything again, under the lock, and plan
            // again.
            // The lock is the play's, as the first read's would be, whoever this task
            // runs as.
            self.host.facts.forget(&Touch::Everything);
            self.take_lock = true;
            let play_identity = Self::identity(self.play, None, &self.host.target.user);
            let task_identity = std::mem::replace(&mut self.acting_as, play_identity);
            let read = self.read_missing(&*module);
            self.acting_as = task_identity;
            read?;
            plan = module.plan(&self.host.facts)?;
        }
        result.warnings = plan.warnings;
        result.notes = plan.notes;
        let handlers = if result.handler {
            BTreeSet::new()
        } else {
            self.handler_restarts(task)
        };
        result.notes.extend(restarts::at_most_once(
            &mut plan.changes,
            &self.host.restarted,
            &handlers,
        ));
        if plan.changes.is_empty() {
            return Ok(Status::Ok);
        }
        if self.options.check {
            for change in &plan.changes {
                record(result, change, &self.host.secret_paths);
                change.predict(&mut self.host.facts);
            }
            restarts::note(&plan.changes, &mut self.host.restarted);
            return Ok(Status::Changed);
        }
        let (attempted, applied) = self.apply(&plan.changes);
        for change in &plan.changes[..attempted] {
            record(result, change, &self.host.secret_paths);
        }
        restarts::note(&plan.changes[..attempted], &mut self.host.restarted);
        applied?;
        Ok(Status::Changed)
    }

    /// Reads what `module` needs and does not know yet. A fact may name another (a
    /// user's home, then a file in it): read until it asks for nothing new. What the
    /// play's other tasks need and is not known either rides along in the same command,
    /// so a change that made many facts stale costs one read, not one per task.
    fn read_missing(&mut self, module: &dyn DynModule) -> Result<(), TaskError> {
        for _ in 0..4 {
            let missing: Vec<FactKey> = module
                .facts(&self.host.facts)
                .into_iter()
                .filter(|key| !self.host.facts.has(key))
                .collect();
            if missing.is_empty() && !(self.take_lock && self.host.lock == HostLock::Free) {
                break;
            }
            let others: Vec<FactKey> = self
                .expected
                .iter()
                .flat_map(|other| other.facts(&self.host.facts))
                .collect();
            self.read_facts(missing.into_iter().chain(others).collect())?;
        }
        Ok(())
    }

    /// Carries out a task's changes, in as few remote commands as [`sequence::runs`]
    /// allows, stopping at the first that fails. Returns how many were attempted (the
    /// failed one included: the report lists exactly those) and the outcome.
    fn apply(&mut self, changes: &[Change]) -> (usize, Result<(), TaskError>) {
        let commands: Vec<Cmd> = changes.iter().map(Change::command).collect();
        let mut start = 0;
        for length in sequence::runs(&commands) {
            let end = start + length;
            let (ran, outcome) = self.apply_run(&changes[start..end], &commands[start..end]);
            if outcome.is_err() {
                return (start + ran, outcome);
            }
            start = end;
        }
        (start, Ok(()))
    }

    /// Carries out changes that can go as one command. Returns how many ran (all of
    /// them when the connection failed: nobody can tell) and the outcome.
    fn apply_run(
        &mut self,
        changes: &[Change],
        commands: &[Cmd],
    ) -> (usize, Result<(), TaskError>) {
        let outputs: Vec<Output> = if let [command] = commands {
            match self.remote(command) {
                Ok(output) => vec![output],
                Err(error) => return (1, Err(error)),
            }
        } else {
            let nonce = self.host.nonce.clone();
            match self.remote(&sequence::sequence(commands, &nonce)) {
                Ok(output) => sequence::split(
                    commands.len(),
                    &nonce,
                    output.status,
                    &output.stdout,
                    &output.stderr,
                )
                .into_iter()
                .map(|step| Output {
                    status: step.status,
                    stdout: step.stdout,
                    stderr: step.stderr,
                })
                .collect(),
                Err(error) => return (changes.len(), Err(error)),
            }
        };
        for (change, output) in changes.iter().zip(&outputs) {
            for touch in change.touches() {
                self.host.facts.forget(&touch);
            }
            if output.status != 0 {
                let failure = self.remote_failure(&change.describe(), output);
                return (outputs.len(), Err(TaskError::Remote(failure)));
            }
        }
        (outputs.len(), Ok(()))
    }

    fn remote_failure(&self, what: &str, output: &Output) -> String {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // sudo's words, and sudo-rs's.
        let prompts = [
            "a password is required",
            "interactive authentication is required",
        ];
        if self.acting_as.is_some() && prompts.iter().any(|prompt| stderr.contains(prompt)) {
            return format!(
                "sudo on {} asks {} for a password; become uses `sudo -n`, which cannot answer a prompt: give {} passwordless sudo, or connect as root",
                self.host.name, self.host.target.user, self.host.target.user
            );
        }
        let detail = stderr.trim();
        let detail = if detail.is_empty() {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        } else {
            detail.to_owned()
        };
        format!("{what} failed (exit status {}): {detail}", output.status)
    }

    fn read_facts(&mut self, keys: Vec<FactKey>) -> Result<(), TaskError> {
        let mut keys: Vec<FactKey> = keys
            .into_iter()
            .filter(|key| !self.host.facts.has(key))
            .collect();
        keys.sort();
        keys.dedup();
        let take_lock = self.take_lock && self.host.lock == HostLock::Free;
        if keys.is_empty() && !take_lock {
            return Ok(());
        }
        let script = batch_script(&keys, &self.host.nonce);
        let output = if take_lock {
            // Taking the lock rides along with a read: no extra round trip. The command
            // that read the facts stays on the host holding the lock, until the run
            // gives it back or its connection ends.
            let holder = lock::holder_description(&self.host.target.user);
            let ready = lock::ready_line(&self.host.nonce);
            let script = lock::hold_script(&holder, self.options.lock_wait, &script, &ready);
            let read = Cmd {
                argv: lock::reader_argv(&script),
                stdin: script.into_bytes(),
            };
            let (output, held) = self.remote_hold(&read, ready.as_bytes())?;
            if output.status == lock::LOCKED_EXIT {
                return Err(TaskError::Locked(
                    String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                ));
            }
            if !held {
                let status = if output.status == 0 {
                    -1
                } else {
                    output.status
                };
                return Err(TaskError::Remote(self.remote_failure(
                    "taking the host's lock",
                    &Output { status, ..output },
                )));
            }
            self.host.lock = HostLock::Held;
            output
        } else {
            // The script goes on stdin, not on the command line: an SSH exec request has
            // a size limit (about 32 KiB with libssh2) that a play with a hundred files
            // exceeds. `eval` starts only once all of it is read, so no probe can take
            // the rest of the script as its own input.
            let read = Cmd {
                argv: ["sh", "-c", "eval \"$(cat)\"", "converge-facts"]
                    .map(str::to_owned)
                    .to_vec(),
                stdin: script.into_bytes(),
            };
            self.remote(&read)?
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status != 0 {
            return Err(TaskError::Remote(
                self.remote_failure("reading the host's state", &output),
            ));
        }
        let facts = split_batch(&keys, &self.host.nonce, &stdout)
            .map_err(|error| TaskError::Remote(error.to_string()))?;
        for (key, fact) in facts {
            self.host.facts.insert(key, fact);
        }
        Ok(())
    }

    fn remote(&mut self, cmd: &Cmd) -> Result<Output, TaskError> {
        let line = self.command_line(cmd);
        let transport = self
            .host
            .transport
            .as_mut()
            .ok_or_else(|| TaskError::Remote("not connected".to_owned()))?;
        Ok(transport.run(&line, &cmd.stdin)?)
    }

    /// Runs `cmd` as [`Transport::hold`] does: a command that says `ready` stays on the
    /// host, running.
    fn remote_hold(&mut self, cmd: &Cmd, ready: &[u8]) -> Result<(Output, bool), TaskError> {
        let line = self.command_line(cmd);
        let transport = self
            .host
            .transport
            .as_mut()
            .ok_or_else(|| TaskError::Remote("not connected".to_owned()))?;
        Ok(transport.hold(&line, &cmd.stdin, ready)?)
    }

    /// The command line for `cmd` as this task's user, shown with `-v` and counted.
    fn command_line(&mut self, cmd: &Cmd) -> String {
        let mut argv = sudo_prefix(self.acting_as.as_deref());
        argv.extend(cmd.argv.iter().map(String::as_str));
        let line = shell::join(&argv);
        if self.options.verbose > 0 && self.hide_commands {
            eprintln!("[{}] $ (command hidden: no_log)", self.host.name);
        } else {
            show_command(&self.host.name, &line, self.options.verbose);
        }
        self.host.commands += 1;
        line
    }
}

/// How a transport failure counts: a host that cannot be talked to is unreachable;
/// one that wrote more than the output limit failed.
fn transport_status(error: &TransportError) -> Status {
    match error {
        TransportError::OutputLimit { .. } => Status::Failed,
        _ => Status::Unreachable,
    }
}

/// Facts the modules would ask for next if each user in `keys` had the usual home
/// (`/home/NAME`, `/root`): a user unit's path depends on its user's home. Read with
/// the first batch, they spare the second one whenever the guess is right, which the
/// real user fact, read in the same batch, decides before anything is planned. When it
/// is wrong, they are true facts about paths that no task uses.
fn guessed_facts(
    known: &FactStore,
    keys: &[FactKey],
    modules: &[Box<dyn DynModule>],
) -> Vec<FactKey> {
    let mut guess = known.clone();
    for key in keys {
        if let FactKey::Accounts(AccountKey::User(name)) = key {
            if !guess.has(key) {
                let home = if name == "root" {
                    "/root".to_owned()
                } else {
                    format!("/home/{name}")
                };
                let user = UserInfo {
                    uid: None,
                    home,
                    shell: String::new(),
                    primary_group: name.clone(),
                    groups: Vec::new(),
                };
                guess.insert(key.clone(), Fact::Accounts(AccountFact::User(Some(user))));
            }
        }
    }
    modules
        .iter()
        .flat_map(|module| module.facts(&guess))
        .filter(|key| !guess.has(key))
        .collect()
}

/// Prints a remote command for `-v` (shortened unless `-vv`).
fn show_command(host: &str, line: &str, verbose: u8) {
    if verbose == 0 {
        return;
    }
    // Values from inventories reach command lines; they reach the terminal escaped.
    if verbose > 1 || line.len() < 300 {
        eprintln!("[{host}] $ {}", escape_control(line));
    } else {
        let cut = line.char_indices().nth(200).map_or(line.len(), |(i, _)| i);
        eprintln!(
            "[{host}] $ {}... ({} bytes)",
            escape_control(&line[..cut]),
            line.len()
        );
    }
}

/// Runs its arguments through the host's sudo without a prompt (`-n`): `sudo`, or
/// Debian's `sudo-rs` where only that is installed. Where neither is, it says so and
/// exits 127, as a shell does for a missing command.
const BECOME: &str = r#"for sudo in sudo sudo-rs; do
  if command -v "$sudo" >/dev/null 2>&1; then exec "$sudo" -n "$@"; fi
done
echo "become needs sudo, and neither sudo nor sudo-rs is installed" >&2
exit 127"#;

/// The words that make a command run as `identity` (none: as the login user).
fn sudo_prefix(identity: Option<&str>) -> Vec<&str> {
    match identity {
        None => vec![],
        Some("root") => vec!["sh", "-c", BECOME, "sudo", "--"],
        Some(user) => vec!["sh", "-c", BECOME, "sudo", "-u", user, "--"],
    }
}

/// Hides everything a `no_log` task could reveal: what it changed, file contents,
/// warnings, notes and error details. Status and counts stay.
fn redact(result: &mut TaskOutcome) {
    let hidden = "(hidden: no_log)";
    if !result.changes.is_empty() {
        result.changes = vec![format!("{} changes {hidden}", result.changes.len())];
    }
    result.diffs.clear();
    result.warnings.clear();
    result.notes.clear();
    if result.message.is_some() {
        result.message = Some(format!("details {hidden}"));
    }
}

fn outcome(
    index: usize,
    handler: bool,
    task: &Task,
    status: Status,
    started: Instant,
) -> TaskOutcome {
    TaskOutcome {
        index,
        handler,
        task: task.title(),
        module: task.module.kind(),
        status,
        changes: Vec::new(),
        diffs: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
        message: None,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// The files whose content `module` reads: those a `no_log` task's secret may be in.
fn content_paths(module: &dyn DynModule, facts: &FactStore) -> Vec<String> {
    module
        .facts(facts)
        .into_iter()
        .filter_map(|key| match key {
            FactKey::Paths(PathKey::Content(path)) => Some(path),
            _ => None,
        })
        .collect()
}

/// Lists `change` in `result`, with its diff if it writes a file, unless a `no_log`
/// task manages that file (`secret_paths`): then a note says the diff is hidden.
fn record(result: &mut TaskOutcome, change: &Change, secret_paths: &BTreeSet<String>) {
    result.changes.push(change.describe());
    if let Some(content) = change.file_contents() {
        if secret_paths.contains(content.path) {
            result.notes.push(format!(
                "diff of {} hidden: a no_log task manages this file",
                content.path
            ));
            return;
        }
        result.diffs.push(FileDiff {
            path: content.path.to_owned(),
            before: content
                .before
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            after: String::from_utf8_lossy(content.after).into_owned(),
        });
    }
}

impl TaskOutcome {
    fn with_message(mut self, message: String) -> Self {
        self.message = Some(message);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Connection, HostKeyChecking};
    use serde_json::json;

    fn host(vars: Vars) -> HostRun {
        let target = Target {
            name: "app1".into(),
            address: "127.0.0.1".into(),
            port: 22,
            user: "root".into(),
            identity_file: None,
            connection: Connection::Ssh,
            host_key_checking: HostKeyChecking::Strict,
            ssh: crate::transport::SshOptions::default(),
        };
        HostRun::new("app1".into(), target, vars)
    }

    #[test]
    fn variable_precedence_is_inventory_then_play_then_extra_vars() {
        let playbook = Playbook::parse(
            "- hosts: app\n  vars:\n    a: play\n    b: play\n    c: \"{{ d | default('unset') }}-{{ b }}\"\n  tasks: []\n",
            std::path::Path::new("site.yml"),
        )
        .unwrap();
        let mut inventory_vars = Vars::new();
        inventory_vars.insert("a".into(), json!("inventory"));
        inventory_vars.insert("z".into(), json!("inventory"));
        let mut options = Options::default();
        options.extra_vars.insert("b".into(), json!("extra"));
        options.extra_vars.insert("d".into(), json!("extra"));
        let vars = host_vars(
            &host(inventory_vars),
            &playbook.plays[0],
            &options,
            &Renderer::new(),
        )
        .unwrap();
        assert_eq!(vars["a"], "play");
        assert_eq!(vars["b"], "extra");
        assert_eq!(
            vars["c"], "extra-extra",
            "play vars are rendered with -e values"
        );
        assert_eq!(vars["z"], "inventory");
        assert_eq!(vars["inventory_hostname"], "app1");
    }
}
