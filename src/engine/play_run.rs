//! One play on one host: connect, read what every task needs in one command, then each
//! task in turn (its `when`, its plan, check or apply under the host's lock), then the
//! notified handlers. A unit is restarted at most once per run.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use converge_modules::fact::{FactKey, UnitRef};
use converge_modules::DynModule;

use super::batch::{Batch, BatchFailure, Entry};
use super::facts::{content_paths, guessed_facts};
use super::flow::Flow;
use super::loops::{item_vars, Items, LoopItem};
use super::outcome::{outcome, record, redact};
use super::remote::transport_status;
use super::render::{host_vars, render_task, scope_vars, RenderError};
use super::results::Unknown;
use super::{interrupted, HostRun, Options, Status, TaskError, TaskOutcome};
use crate::inventory::Vars;
use crate::playbook::{Play, Task};
use crate::progress::Progress;
use crate::restarts;
use crate::template::{Renderer, TemplateError};
use crate::transport::{self, Output};

/// One play on one host.
pub(super) struct PlayRun<'a> {
    pub(super) play: &'a Play,
    pub(super) host: &'a mut HostRun,
    pub(super) options: &'a Options,
    pub(super) renderer: Renderer,
    /// Whom commands run as, when that is not the login user (`sudo -n [-u USER]`).
    pub(super) acting_as: Option<String>,
    /// Keep the commands of the current task out of `-v` output.
    pub(super) hide_commands: bool,
    /// Where this host reports how far it got, for the progress line.
    pub(super) progress: &'a Progress,
    /// Take the host's lock with the next fact read, unless it is held already.
    pub(super) take_lock: bool,
    /// Variables for this play on this host, once made (see [`host_vars`]).
    pub(super) vars: Option<Vars>,
    /// Each selected task's module (then each handler's), rendered once for this host
    /// before the first read: which facts they will ask for, so that one read serves
    /// all of them, and what they plan with.
    pub(super) rendered: Vec<Option<Result<Arc<dyn DynModule>, RenderError>>>,
    /// Handlers notified so far.
    pub(super) notified: BTreeSet<String>,
    /// Set by the first failure of a host when the play has `any_errors_fatal`.
    pub(super) abort: Option<&'a AtomicBool>,
    /// What the last change of the current task printed (a `command`'s output, for
    /// `register`).
    pub(super) last_output: Option<Output>,
    /// Each looped task's items, by slot, rendered once for this host (as `rendered`).
    pub(super) looped: BTreeMap<usize, Items>,
    /// The first host of the play's batch: where `run_once` tasks run.
    pub(super) first_host: Option<String>,
    /// The items of the `include_tasks` loops being run, by loop variable.
    pub(super) included: Vars,
    /// The changes planned and not sent to the host yet (see `batch`).
    pub(super) batch: Batch,
    /// Entries the batches of this play run have had so far.
    pub(super) staged_entries: usize,
    /// How a change of the last batch sent failed, until its task's outcome says so.
    pub(super) failure: Option<BatchFailure>,
    /// The entries of the scripts sent and not confirmed yet (see `Self::confirm`).
    pub(super) unconfirmed_entries: Vec<Entry>,
    /// Tasks of the scripts sent that found the host not as predicted, and how.
    pub(super) unconfirmed: Vec<(usize, String)>,
    /// How many blocks with `rescue` or `always` the current task is in: their tasks'
    /// failures must be known at once.
    pub(super) guarded: usize,
}

impl<'a> PlayRun<'a> {
    pub(super) fn new(
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
            // The lock rides along with the first read: the changes that follow it go
            // as one script, planned against what that read saw.
            take_lock: true,
            vars: None,
            rendered: Vec::new(),
            notified: BTreeSet::new(),
            abort: None,
            last_output: None,
            looped: BTreeMap::new(),
            first_host: None,
            included: Vars::new(),
            batch: Batch::default(),
            staged_entries: 0,
            failure: None,
            unconfirmed_entries: Vec::new(),
            unconfirmed: Vec::new(),
            guarded: 0,
        }
    }

    /// The user a task's commands run as, when it differs from the login user.
    pub(super) fn identity(play: &Play, task: Option<&Task>, login: &str) -> Option<String> {
        let wanted = match task {
            // `become: false` on the task (or its block) turns become off, whoever
            // `become_user` names.
            Some(task) if task.become_root == Some(false) => None,
            Some(task) if task.become_user.is_some() => task.become_user.clone(),
            Some(task) if task.become_root == Some(true) => Some(
                play.become_user
                    .clone()
                    .unwrap_or_else(|| "root".to_owned()),
            ),
            _ => play
                .become_user
                .clone()
                .or_else(|| play.become_root.then(|| "root".to_owned())),
        }?;
        (wanted != login).then_some(wanted)
    }

    pub(super) fn run(mut self) -> Vec<TaskOutcome> {
        let mut outcomes = Vec::new();
        if !self.start(&mut outcomes) {
            return outcomes;
        }
        let play: &'a Play = self.play;
        let flow = self.run_nodes(&play.body, &mut outcomes);
        self.finish(flow, &mut outcomes);
        outcomes
    }

    /// Connects and reads what the play's tasks need first. Returns whether the host
    /// goes on to its tasks (when not, the outcome that says why is in `outcomes`).
    pub(super) fn start(&mut self, outcomes: &mut Vec<TaskOutcome>) -> bool {
        let first_task = self
            .play
            .tasks
            .iter()
            .position(|task| task.selected(&self.options.tags));
        let Some(first_task) = first_task else {
            return false;
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
                    return false;
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
                return false;
            }
            // Anything else is about some fact: let each task read its own, so the
            // error is reported by the task it concerns.
        }
        true
    }

    /// After the play's tasks: the notified handlers, unless the host failed or the run
    /// stopped.
    pub(super) fn finish(&mut self, flow: Flow, outcomes: &mut Vec<TaskOutcome>) {
        if interrupted() || self.aborted() {
            // What is planned and not sent yet was never started: it stays unsent.
            self.drop_batch(outcomes);
        }
        match flow {
            Flow::Go => {
                let handled = self.flush(outcomes);
                if self.send_now(outcomes) == Flow::Failed || handled == Flow::Failed {
                    self.fail_fast();
                }
            }
            Flow::Failed => {
                // What was planned before the failure is made, as if each change had
                // been sent when its task ran.
                self.send_now(outcomes);
                self.fail_fast();
            }
            Flow::Stop => self.drop_batch(outcomes),
        }
    }

    /// Whether another host's failure stopped the play (`any_errors_fatal`).
    pub(super) fn aborted(&self) -> bool {
        self.abort
            .is_some_and(|abort| abort.load(Ordering::Relaxed))
    }

    /// Under `any_errors_fatal`, stops the play on the other hosts too.
    pub(super) fn fail_fast(&self) {
        if let Some(abort) = self.abort {
            abort.store(true, Ordering::Relaxed);
        }
    }

    /// The units the handlers notified so far, or by `task` once it changes something,
    /// restart.
    pub(super) fn handler_restarts(&mut self, task: &Task) -> BTreeSet<UnitRef> {
        let Ok(vars) = self.vars() else {
            return BTreeSet::new();
        };
        let play: &'a Play = self.play;
        let tasks = play.tasks.len();
        let mut restarts = BTreeSet::new();
        for (index, handler) in play.handlers.iter().enumerate() {
            let id = handler.handler_id();
            if !(self.notified.contains(&id) || task.notify.contains(&id)) {
                continue;
            }
            let Ok(vars) = self.scoped(handler, &vars) else {
                continue;
            };
            if let Ok(module) = self.module(tasks + index, handler, &vars) {
                restarts.extend(module.restarts());
            }
        }
        restarts
    }

    /// The play's variables on this host, made once.
    pub(super) fn vars(&mut self) -> Result<Vars, TemplateError> {
        if let Some(vars) = &self.vars {
            return Ok(vars.clone());
        }
        let vars = host_vars(self.host, self.play, self.options, &self.renderer)?;
        self.vars = Some(vars.clone());
        Ok(vars)
    }

    /// The module of the task in `slot` (tasks first, then handlers), rendered for this
    /// host the first time it is asked for.
    pub(super) fn module(
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
    pub(super) fn expected(&self) -> impl Iterator<Item = &Arc<dyn DynModule>> {
        let looped = self
            .looped
            .values()
            .filter_map(|items| items.as_ref().ok())
            .flatten()
            .filter_map(|item| item.module.as_ref().ok());
        self.rendered
            .iter()
            .flatten()
            .filter_map(|r| r.as_ref().ok())
            .chain(looped)
    }

    /// What the engine must know before `module` runs: whether its content is a secret,
    /// and what it promises the rest of the play.
    pub(super) fn note(&mut self, task: &Task, module: &dyn DynModule) {
        if task.no_log {
            self.host
                .secret_paths
                .extend(content_paths(module, &self.host.facts));
        }
        self.host.facts.promise(module.promises());
    }

    /// The play's selected tasks, then its handlers, with their slots.
    pub(super) fn slots(&self) -> Vec<(usize, &'a Task)> {
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
    pub(super) fn prefetch(&mut self) -> Result<(), TaskError> {
        self.host.facts.start_play();
        let vars = self.vars()?;
        if let Some(checked) = self.host.take_checked(self.play) {
            // The check rendered every task; only the selected ones count here.
            let play: &'a Play = self.play;
            self.rendered = checked
                .modules
                .into_iter()
                .zip(play.tasks.iter().chain(&play.handlers))
                .map(|(module, task)| module.filter(|_| task.selected(&self.options.tags)))
                .collect();
            self.forget_changed(&checked.vars, &vars);
        }
        let mut keys = vec![FactKey::System];
        if self.play.gather_facts {
            keys.push(FactKey::Machine);
        }
        for (slot, task) in self.slots() {
            keys.extend(self.prepare(slot, task, &vars));
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
    pub(super) fn refresh_vars(&mut self, before: &Vars) -> Result<(), TaskError> {
        self.vars = None;
        let vars = self.vars()?;
        for (slot, task) in self.forget_changed(before, &vars) {
            self.prepare(slot, task, &vars);
        }
        Ok(())
    }

    /// `vars` with the task's (and its blocks') own `vars` over them.
    pub(super) fn scoped<'v>(
        &self,
        task: &Task,
        vars: &'v Vars,
    ) -> Result<Cow<'v, Vars>, TemplateError> {
        let keep = |name: &str| {
            self.options.extra_vars.contains_key(name) || self.host.registered.contains_key(name)
        };
        if task.include_loop.is_none() || self.included.is_empty() {
            return scope_vars(&self.renderer, task, vars, keep);
        }
        let mut with_items = vars.clone();
        with_items.extend(self.included.iter().map(|(k, v)| (k.clone(), v.clone())));
        scope_vars(&self.renderer, task, &with_items, keep)
            .map(|vars| Cow::Owned(vars.into_owned()))
    }

    /// Renders the task in `slot` for this host (each item of a looped one), notes
    /// what the engine must know of it, and returns the facts it will ask for first.
    fn prepare(&mut self, slot: usize, task: &'a Task, vars: &Vars) -> Vec<FactKey> {
        if task.module.is_action() {
            return Vec::new();
        }
        let Ok(vars) = &self.scoped(task, vars) else {
            // The task reports it when it runs.
            return Vec::new();
        };
        let modules: Vec<Arc<dyn DynModule>> = if task.loop_over.is_some() {
            self.items(slot, task, vars)
                .map(|items| items.into_iter().filter_map(|i| i.module.ok()).collect())
                .unwrap_or_default()
        } else {
            self.module(slot, task, vars).into_iter().collect()
        };
        let mut keys = Vec::new();
        for module in modules {
            self.note(task, &*module);
            keys.extend(module.facts(&self.host.facts));
        }
        keys
    }

    /// Forgets the rendering of every task whose templates mention a variable that has
    /// another value in `now` than in `before` (a mention by name: a task may be
    /// rendered again without need, never kept when it needed rendering). Returns the
    /// selected tasks it forgot.
    pub(super) fn forget_changed(&mut self, before: &Vars, now: &Vars) -> Vec<(usize, &'a Task)> {
        let changed: Vec<&String> = now
            .iter()
            .filter(|(name, value)| before.get(*name) != Some(*value))
            .map(|(name, _)| name)
            .chain(before.keys().filter(|name| !now.contains_key(*name)))
            .collect();
        if changed.is_empty() {
            return Vec::new();
        }
        let play: &'a Play = self.play;
        let tasks = play.tasks.len();
        let all = play.tasks.iter().chain(&play.handlers).enumerate();
        let mut forgotten = Vec::new();
        for (slot, task) in all {
            let mentions = task
                .templates()
                .any(|text| changed.iter().any(|name| text.contains(name.as_str())));
            let rendered = self.rendered.get(slot).is_some_and(Option::is_some)
                || self.looped.contains_key(&slot);
            if mentions && rendered {
                if let Some(rendering) = self.rendered.get_mut(slot) {
                    *rendering = None;
                }
                self.looped.remove(&slot);
                if slot >= tasks || task.selected(&self.options.tags) {
                    forgotten.push((slot, task));
                }
            }
        }
        forgotten
    }

    /// Runs a task (each item of a looped one) or a handler; registers its result.
    pub(super) fn run_entry(
        &mut self,
        index: usize,
        handler: bool,
        task: &Task,
    ) -> Vec<TaskOutcome> {
        let slot = if handler {
            self.play.tasks.len() + index
        } else {
            index
        };
        if task.loop_over.is_some() {
            return self.run_loop(index, handler, slot, task);
        }
        let (result, value, unknown) = self.run_one(index, handler, slot, task, None);
        if result.status == Status::Pending && task.module.kind() == "set_fact" {
            self.unknown_facts(task);
        }
        if let Some(name) = &task.register {
            self.register(name, value, unknown);
        }
        vec![result]
    }

    /// Runs a task, or one item of a looped task, as its user. Returns its outcome
    /// and what it registers.
    pub(super) fn run_one(
        &mut self,
        index: usize,
        handler: bool,
        slot: usize,
        task: &Task,
        item: Option<&LoopItem>,
    ) -> (TaskOutcome, serde_json::Value, Option<Unknown>) {
        let started = Instant::now();
        let mut result = outcome(index, handler, task, Status::Ok, started);
        let play_identity = std::mem::replace(
            &mut self.acting_as,
            Self::identity(self.play, Some(task), &self.host.target.user),
        );
        let secret = task.no_log;
        self.hide_commands = secret;
        self.last_output = None;
        let (value, unknown) = self.attempt(slot, task, item, &mut result);
        self.acting_as = play_identity;
        self.hide_commands = false;
        if secret {
            redact(&mut result);
        }
        result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        (result, value, unknown)
    }

    pub(super) fn converge_task(
        &mut self,
        slot: usize,
        task: &Task,
        item: Option<&LoopItem>,
        result: &mut TaskOutcome,
    ) -> Result<Status, TaskError> {
        if let Some(why) = self.pending_read(task) {
            result.message = Some(why);
            return Ok(Status::Pending);
        }
        let vars = self.vars()?;
        let mut vars = self.scoped(task, &vars)?.into_owned();
        if let Some(item) = item {
            vars = item_vars(task, &vars, &item.value);
        }
        if let Some(when) = &task.when {
            let origin = format!("the `when` of task `{}`", task.title());
            if !self.renderer.condition(when, &vars, &origin)? {
                return Ok(Status::Skipped);
            }
        }
        if task.module.is_action() {
            return self.act(task, &vars, result);
        }
        let module = match item {
            Some(item) => item.module.clone()?,
            None => self.module(slot, task, &vars)?,
        };
        if self.batch_in_the_way(task, &*module) {
            self.send_batch()?;
        }
        self.read_missing(&*module)?;
        if task.no_log {
            let paths = content_paths(&*module, &self.host.facts);
            self.host.secret_paths.extend(paths);
        }
        let mut plan = match module.plan(&self.host.facts) {
            Ok(plan) => plan,
            Err(error) => {
                // In check mode, what an earlier planned change (a package) would
                // provide is not a failure: the task waits on it.
                let pending = self
                    .options
                    .check
                    .then(|| error.pending_on(&self.host.facts));
                if let Some(Some(why)) = pending {
                    result.message = Some(why);
                    return Ok(Status::Pending);
                }
                return Err(error.into());
            }
        };
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
        if self.may_wait(task, item.is_some()) {
            restarts::note(&plan.changes, &mut self.host.restarted);
            self.defer(task, module, plan.changes, result);
            return Ok(Status::Changed);
        }
        let (attempted, applied) = self.send_with(&plan.changes)?;
        for change in &plan.changes[..attempted] {
            record(result, change, &self.host.secret_paths);
        }
        restarts::note(&plan.changes[..attempted], &mut self.host.restarted);
        applied?;
        Ok(Status::Changed)
    }
}
