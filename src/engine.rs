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

use converge_modules::fact::{batch_script, split_batch, Fact, FactKey, Touch, UnitRef, UserInfo};
use converge_modules::sequence;
use converge_modules::{shell, Change, Cmd, DynModule, FactStore, ParamError, Sudo, SystemInfo};
use rayon::prelude::*;
use serde::Serialize;

use crate::inventory::Vars;
use crate::lock;
use crate::playbook::{self, ContentSource, Location, Play, Playbook, Raw, Stage, Step, Task};
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
    Params(ParamFailure),
    #[error(transparent)]
    Plan(#[from] converge_modules::PlanError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Remote(String),
    #[error("{0}")]
    Locked(String),
}

/// Why a task's parameters could not be made for a host (kept, and cloned, with the
/// task's other renderings: see `PlayRun::rendered`).
#[derive(Debug, Clone, thiserror::Error)]
enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Params(ParamFailure),
}

impl From<RenderError> for TaskError {
    fn from(error: RenderError) -> Self {
        match error {
            RenderError::Template(error) => TaskError::Template(error),
            RenderError::Params(failure) => TaskError::Params(failure),
        }
    }
}

/// Rendered parameters that do not fit the module, with where they are written (not
/// for a `no_log` task, whose message is only about the parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParamFailure {
    at: Option<Location>,
    message: String,
}

impl std::fmt::Display for ParamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        f.write_str(&self.message)
    }
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
        HostRun {
            name,
            target,
            vars,
            transport: None,
            facts: FactStore::default(),
            down: None,
            commands: 0,
            nonce: nonce(),
            lock: HostLock::Free,
            secret_paths: BTreeSet::new(),
            restarted: BTreeSet::new(),
        }
    }
}

/// A fresh random nonce: it marks where one part of a batched command's output ends, so
/// no output of a command on the host can be expected to contain it.
fn nonce() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Without the system's randomness (a sandbox refusing the call), the standard
        // library's per-process random hash keys still make an unpredictable nonce.
        let keys = std::collections::hash_map::RandomState::new();
        bytes = keys.build_hasher().finish().to_le_bytes();
    }
    format!("{:016x}", u64::from_le_bytes(bytes))
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

/// Renders a task's parameters for one host and makes them the module's typed ones.
/// For a `no_log` task the error names the task and the parameter, never a value (see
/// [`hidden`]).
fn render_task(
    renderer: &Renderer,
    task: &Task,
    vars: &Vars,
) -> Result<Box<dyn DynModule>, RenderError> {
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
) -> Result<Box<dyn DynModule>, RenderError> {
    let origin = format!("task `{}`", task.title());
    let mut params = match &task.params {
        Raw::Map(entries) => {
            let mut rendered = Vec::with_capacity(entries.len() + 1);
            for (key, value) in entries {
                culprit.param = Some(key.clone());
                rendered.push((key.clone(), value.render(renderer, vars, &origin)?));
            }
            culprit.param = None;
            Raw::Map(rendered)
        }
        other => other.render(renderer, vars, &origin)?,
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
        params.insert("content", Raw::Str(content));
    }
    let kind = task.module.kind();
    let module = task.typed(&params, Stage::Rendered).map_err(|error| {
        culprit.param = error.param().map(str::to_owned);
        RenderError::Params(ParamFailure {
            at: Some(
                task.origin
                    .locate(kind, Some(error.at.as_deref().unwrap_or(&[]))),
            ),
            message: error.to_string(),
        })
    })?;
    module.validate().map_err(|error| {
        let json = params.to_json();
        match &error {
            ParamError::Invalid { param, .. } => culprit.param = Some((*param).to_owned()),
            ParamError::Name(name) => {
                culprit.param = playbook::param_holding(&json, |value| value == name.value);
            }
            ParamError::Required { .. }
            | ParamError::OneOf { .. }
            | ParamError::AtMostOne { .. } => {
                culprit.value_free = true;
            }
        }
        // Point at the parameter, and say what it was rendered from.
        let rendered = culprit
            .param
            .as_deref()
            .and_then(|param| match params.get(param) {
                Some(Raw::Rendered { from, .. }) => Some((param, from)),
                _ => None,
            });
        let (at, message) = match rendered {
            Some((param, from)) => (
                task.origin
                    .locate(kind, Some(&[Step::Key(param.to_owned())])),
                format!("{error} (rendered from {from:?})"),
            ),
            None => (task.origin.locate(kind, None), error.to_string()),
        };
        RenderError::Params(ParamFailure {
            at: Some(at),
            message,
        })
    })?;
    Ok(module)
}

/// What may be said about a `no_log` task's input error: the parameter, not the value
/// (nor where it is). An undefined variable is named (a name is not a value), and
/// messages that name parameters only are kept.
fn hidden(error: RenderError, culprit: &Culprit) -> RenderError {
    let param = culprit
        .param
        .as_ref()
        .map_or_else(|| "a parameter".to_owned(), |param| format!("`{param}`"));
    let message = match error {
        RenderError::Template(TemplateError::Undefined { .. }) => return error,
        RenderError::Params(failure) if culprit.value_free => failure.message,
        RenderError::Template(_) => {
            format!("{param} has a template error (details hidden: no_log)")
        }
        RenderError::Params(_) => format!("{param} is invalid (details hidden: no_log)"),
    };
    RenderError::Params(ParamFailure { at: None, message })
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
                        RenderError::Params(ParamFailure { at, message }) => {
                            let at = at.map(|at| format!("{at}: ")).unwrap_or_default();
                            format!("{at}task `{}`: {message}", task.title())
                        }
                        RenderError::Template(error) => error.to_string(),
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
    /// Variables for this play on this host, once made (see [`host_vars`]).
    vars: Option<Vars>,
    /// Each selected task's module (then each handler's), rendered once for this host
    /// before the first read: which facts they will ask for, so that one read serves
    /// all of them, and what they plan with.
    rendered: Vec<Option<Result<Arc<dyn DynModule>, RenderError>>>,
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
            vars: None,
            rendered: Vec::new(),
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
    fn handler_restarts(&mut self, task: &Task) -> BTreeSet<UnitRef> {
        let Ok(vars) = self.vars() else {
            return BTreeSet::new();
        };
        let play: &'a Play = self.play;
        let tasks = play.tasks.len();
        let mut restarts = BTreeSet::new();
        for (index, handler) in play.handlers.iter().enumerate() {
            let title = handler.title();
            if !(self.notified.contains(&title) || task.notify.contains(&title)) {
                continue;
            }
            if let Ok(module) = self.module(tasks + index, handler, &vars) {
                restarts.extend(module.restarts());
            }
        }
        restarts
    }

    /// The play's variables on this host, made once.
    fn vars(&mut self) -> Result<Vars, TemplateError> {
        if let Some(vars) = &self.vars {
            return Ok(vars.clone());
        }
        let vars = host_vars(self.host, self.play, self.options, &self.renderer)?;
        self.vars = Some(vars.clone());
        Ok(vars)
    }

    /// The module of the task in `slot` (tasks first, then handlers), rendered for this
    /// host the first time it is asked for.
    fn module(
        &mut self,
        slot: usize,
        task: &Task,
        vars: &Vars,
    ) -> Result<Arc<dyn DynModule>, RenderError> {
        if self.rendered.len() <= slot {
            self.rendered.resize_with(slot + 1, || None);
        }
        self.rendered[slot]
            .get_or_insert_with(|| render_task(&self.renderer, task, vars).map(Arc::from))
            .clone()
    }

    /// The modules rendered so far, for the facts they will ask for.
    fn expected(&self) -> impl Iterator<Item = &Arc<dyn DynModule>> {
        self.rendered
            .iter()
            .flatten()
            .filter_map(|r| r.as_ref().ok())
    }

    /// What the engine must know before `module` runs: whether its content is a secret,
    /// and whether it turns lingering on.
    fn note(&mut self, task: &Task, module: &dyn DynModule) {
        if task.no_log {
            self.host
                .secret_paths
                .extend(content_paths(module, &self.host.facts));
        }
        if let Some(user) = module.turns_lingering_on() {
            self.host.facts.plan_lingering(user.to_owned());
        }
    }

    /// The play's selected tasks, then its handlers, with their slots.
    fn slots(&self) -> Vec<(usize, &'a Task)> {
        let play: &'a Play = self.play;
        let tasks = play.tasks.len();
        play.tasks
            .iter()
            .enumerate()
            .chain(
                play.handlers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (tasks + i, h)),
            )
            .filter(|(_, task)| task.selected(&self.options.tags))
            .collect()
    }

    /// Reads, in one command, every fact the play's tasks will ask for first.
    fn prefetch(&mut self) -> Result<(), TaskError> {
        self.host.facts.clear_planned_lingering();
        let vars = self.vars()?;
        let mut keys = vec![FactKey::System];
        for (slot, task) in self.slots() {
            if let Ok(module) = self.module(slot, task, &vars) {
                self.note(task, &*module);
                keys.extend(module.facts(&self.host.facts));
            }
        }
        let modules: Vec<Arc<dyn DynModule>> = self.expected().cloned().collect();
        keys.extend(guessed_facts(&self.host.facts, &keys, &modules));
        self.read_facts(keys)?;
        self.refresh_vars(&vars)?;
        // A fact may name another (a user's home, then a file in it): ask every task
        // again with what is known, and read what is new for all of them in one command
        // per round, not one per task.
        for _ in 0..3 {
            let more: Vec<FactKey> = self
                .expected()
                .flat_map(|module| module.facts(&self.host.facts))
                .filter(|key| !self.host.facts.has(key))
                .collect();
            if more.is_empty() {
                break;
            }
            self.read_facts(more)?;
        }
        Ok(())
    }

    /// After the first read, the host's own facts (`converge_os`, ...) are known:
    /// the variables are made again, and a task is rendered again only when its
    /// templates mention a variable whose value changed.
    fn refresh_vars(&mut self, before: &Vars) -> Result<(), TaskError> {
        self.vars = None;
        let vars = self.vars()?;
        let changed: Vec<&String> = vars
            .iter()
            .filter(|(name, value)| before.get(*name) != Some(*value))
            .map(|(name, _)| name)
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        for (slot, task) in self.slots() {
            let mentions = task
                .templates()
                .any(|text| changed.iter().any(|name| text.contains(name.as_str())));
            if mentions && self.rendered.get(slot).is_some_and(Option::is_some) {
                self.rendered[slot] = None;
                if let Ok(module) = self.module(slot, task, &vars) {
                    self.note(task, &*module);
                }
            }
        }
        Ok(())
    }

    fn run_task(&mut self, index: usize, handler: bool, task: &Task) -> TaskOutcome {
        let slot = if handler {
            self.play.tasks.len() + index
        } else {
            index
        };
        let started = Instant::now();
        let mut result = outcome(index, handler, task, Status::Ok, started);
        let play_identity = std::mem::replace(
            &mut self.acting_as,
            Self::identity(self.play, Some(task), &self.host.target.user),
        );
        let secret = task.no_log;
        self.hide_commands = secret;
        match self.converge_task(slot, task, &mut result) {
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
        slot: usize,
        task: &Task,
        result: &mut TaskOutcome,
    ) -> Result<Status, TaskError> {
        let vars = self.vars()?;
        if let Some(when) = &task.when {
            let origin = format!("the `when` of task `{}`", task.title());
            if !self.renderer.condition(when, &vars, &origin)? {
                return Ok(Status::Skipped);
            }
        }
        let module = self.module(slot, task, &vars)?;
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
                .expected()
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
    modules: &[Arc<dyn DynModule>],
) -> Vec<FactKey> {
    let mut guess = known.clone();
    for key in keys {
        if let FactKey::User(name) = key {
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
                guess.insert(key.clone(), Fact::User(Some(user)));
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
            FactKey::Content(path) => Some(path),
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

    /// The first task of `tasks` rendered with `vars`, or its error as shown.
    fn rendered(tasks: &str, vars: &[(&str, serde_json::Value)]) -> Result<String, String> {
        let playbook = Playbook::parse(
            &format!("- hosts: app\n  tasks:\n{tasks}"),
            std::path::Path::new("site.yml"),
        )
        .map_err(|error| format!("load: {error}"))?;
        let vars: Vars = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        render_task(&Renderer::new(), &playbook.plays[0].tasks[0], &vars)
            .map(|module| format!("{module:?}"))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn templated_values_of_every_type_render_then_become_typed() {
        let module = rendered(
            "    - file: { path: /x, content: x, mode: \"{{ m }}\" }\n",
            &[("m", json!("0640"))],
        )
        .unwrap();
        assert!(module.contains("mode: Some(Mode(416))"), "{module}");
        let module = rendered(
            "    - systemd_unit: { name: a.service, content: x, enabled: \"{{ e }}\", settle: \"{{ s }}\" }\n",
            // `-e` gives strings; variables from YAML keep their type.
            &[("e", json!("false")), ("s", json!(5))],
        )
        .unwrap();
        assert!(
            module.contains("enabled: Some(false)") && module.contains("settle: Some(5)"),
            "{module}"
        );
        let module = rendered(
            "    - user: { name: \"{{ n }}\", groups: \"{{ g }}\" }\n",
            &[("n", json!(7)), ("g", json!(["adm", "wheel"]))],
        );
        assert!(module.is_err(), "a user name cannot start with a digit");
        let module = rendered(
            "    - user: { name: deploy, groups: [adm, \"{{ g }}\"] }\n",
            &[("g", json!("wheel"))],
        )
        .unwrap();
        assert!(
            module.contains(r#"groups: Some(["adm", "wheel"])"#),
            "{module}"
        );
    }

    #[test]
    fn a_rendered_value_that_does_not_fit_is_located_and_named() {
        assert_eq!(
            rendered(
                "    - file: { path: /x, content: x, mode: \"{{ m }}\" }\n",
                &[("m", json!("0999"))],
            )
            .unwrap_err(),
            "site.yml:3:43: invalid mode \"0999\": write 3 or 4 octal digits, e.g. \"0644\" (rendered from \"{{ m }}\")"
        );
        assert_eq!(
            rendered(
                "    - systemd_unit:\n        name: a.service\n        enabled: \"{{ e }}\"\n",
                &[("e", json!("maybe"))],
            )
            .unwrap_err(),
            "site.yml:5:18: invalid type: string \"maybe\", expected a boolean (rendered from \"{{ e }}\")"
        );
        assert_eq!(
            rendered(
                "    - user: { name: \"{{ n }}\" }\n",
                &[("n", json!("de.ploy"))],
            )
            .unwrap_err(),
            "site.yml:3:21: invalid user name \"de.ploy\": use a lowercase letter or _ first, then lowercase letters, digits, _ or -, at most 32 characters (rendered from \"{{ n }}\")"
        );
        // A `no_log` task's: the parameter only.
        assert_eq!(
            rendered(
                "    - file: { path: /x, content: x, mode: \"{{ m }}\" }\n      no_log: true\n",
                &[("m", json!("0999"))],
            )
            .unwrap_err(),
            "`mode` is invalid (details hidden: no_log)"
        );
    }

    #[test]
    fn what_needs_no_variable_is_checked_at_load() {
        assert_eq!(
            rendered(
                "    - file: { path: /x, mode: \"{{ m }}\", mdoe: \"0644\" }\n",
                &[],
            )
            .unwrap_err(),
            "load: site.yml:3:42: unknown key `mdoe`\n  help: allowed keys here: path, content, src, template, owner, group, mode, state"
        );
        assert_eq!(
            rendered(
                "    - systemd_unit: { name: \"{{ n }}\", enabled: 1 }\n",
                &[],
            )
            .unwrap_err(),
            "load: site.yml:3:49: invalid type: integer `1`, expected a boolean"
        );
        // A template whose type only its value decides is left out of the check, not
        // the keys after it.
        assert!(rendered(
            "    - directory: { path: /x, state: \"{{ s }}\", nope: 1 }\n",
            &[("s", json!("present"))]
        )
        .unwrap_err()
        .starts_with("load: site.yml:3:48: unknown key `nope`"));
        assert!(rendered(
            "    - directory: { path: /x, state: \"{{ s }}\" }\n",
            &[("s", json!("present"))]
        )
        .is_ok());
    }

    #[test]
    fn nonces_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|byte| byte.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
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
