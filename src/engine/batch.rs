//! A host's changes applied as one script.
//!
//! In a real run a task's changes do not go to the host when the task is planned: they
//! are predicted into the fact store, exactly as `--check` predicts them, and the next
//! task is planned against that predicted state. The changes of every task planned so
//! far go to the host together, as one script that stops at the first failure and
//! reports each change's outcome, when something needs the host's real state:
//!
//! - a task whose result is read at once (`register`, `until`, `changed_when`,
//!   `failed_when`, `ignore_errors`), a looped task (a failed item does not stop the
//!   others, as in Ansible), a `run_once` one, or any task of a play with
//!   `any_errors_fatal`: its own changes end the script, sent with it;
//! - a block with `rescue` or `always`: the script goes when the block starts, and its
//!   tasks send their own changes, so a failure is known to be rescued;
//! - a change whose whole effect cannot be predicted (a package's maintainer scripts,
//!   a command), a fact nobody has read or predicted, one that moves by itself
//!   (`wait_for`), or a task that runs as another user: the script goes before that
//!   task is planned;
//! - the end of the play, after its handlers.
//!
//! The script ends with a read of the facts it made stale, with whatever the rest of
//! the play needs; it runs once every change has, in the same command. Every task of
//! the script is then planned again against them: one that would still change
//! something (and that no later task of the script changed again) finds the host not
//! as predicted, and says so in a warning. (What that read could not foresee, a fact
//! only its own answers name, is read in one more command.) So a first converge costs
//! two commands (the read that takes the lock, and the script), plus one or two per
//! point the engine cannot see past, however many tasks the play has.
//!
//! A failure in the script fails the task whose change failed, as if that change had
//! been sent alone: the tasks planned after it never ran, so they are not reported,
//! and the handlers only they notified are not run. An interrupted run sends nothing
//! it has not sent yet.

use std::collections::BTreeSet;
use std::sync::Arc;

use converge_modules::fact::{batch_script, DomainKey, FactKey, Touch};
use converge_modules::{Change, DynModule, FactStore};

use super::facts::{guessed_facts, reader};
use super::flow::Flow;
use super::outcome::redact;
use super::play_run::PlayRun;
use super::{Status, TaskError, TaskOutcome};
use crate::playbook::Task;

/// The changes planned on a host that have not been sent to it yet.
#[derive(Default)]
pub(super) struct Batch {
    entries: Vec<Entry>,
    /// Whom the script runs as (all its changes run as one user).
    identity: Option<String>,
    /// Whether a change's whole effect is unknown: nothing more joins the script.
    unsettled: bool,
    /// Whether a `no_log` task is in it: the script is not shown with `-v`.
    secret: bool,
    /// What the engine knew before the first prediction of the script's changes.
    before: Option<FactStore>,
}

/// One task's (or one loop item's) changes in the batch.
pub(super) struct Entry {
    /// Its number among the entries of the play run, on its outcome
    /// (`TaskOutcome::staged`).
    id: usize,
    changes: Vec<Change>,
    /// Planned again after the script ran, to confirm the host is as predicted; `None`
    /// for what is meant to change every time it runs (a command, a handler).
    module: Option<Arc<dyn DynModule>>,
    /// The handlers notified before this task.
    notified_before: BTreeSet<String>,
    /// Whether the task is `no_log`: what its failure says is hidden.
    secret: bool,
}

/// Which entry's change failed when the batch was sent, and how: the engine puts it on
/// that task's outcome once the outcome is in place (see [`PlayRun::batch_failed`]).
pub(super) struct BatchFailure {
    entry: usize,
    attempted: usize,
    status: Status,
    message: String,
    secret: bool,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl PlayRun<'_> {
    /// Whether `task`'s changes may wait in the batch once planned: nothing reads its
    /// result before the play goes on. (When something does, its changes end the
    /// batch, which is sent at once: see [`Self::send_with`].)
    pub(super) fn may_wait(&self, task: &Task, looped: bool) -> bool {
        !self.options.check
            // Under `any_errors_fatal` every host stops at another's first failure,
            // which must be known when it happens.
            && self.abort.is_none()
            && !task.run_once
            // Each item of a loop goes on when another fails, as in Ansible: a script
            // stops at the first failure.
            && !looped
            && task.register.is_none()
            && task.until.is_none()
            && task.changed_when.is_empty()
            && task.failed_when.is_empty()
            && !task.ignore_errors
            && self.guarded == 0
    }

    /// Whether the changes waiting must go to the host before `task` is planned: it
    /// needs the host as it really is, or runs as another user.
    pub(super) fn batch_in_the_way(&self, task: &Task, module: &dyn DynModule) -> bool {
        if self.batch.is_empty() {
            return false;
        }
        let needs = module.facts(&self.host.facts);
        task.run_once
            || self.batch.unsettled
            || self.batch.identity != self.acting_as
            || needs.iter().any(|key| {
                !self.host.facts.has(key) || key.domain().is_some_and(DomainKey::volatile)
            })
    }

    /// Puts a task's planned changes in the batch: lists them in its outcome and
    /// predicts their effect, as check mode does.
    pub(super) fn defer(
        &mut self,
        task: &Task,
        module: Arc<dyn DynModule>,
        changes: Vec<Change>,
        result: &mut TaskOutcome,
    ) {
        if self.batch.is_empty() {
            self.batch.identity.clone_from(&self.acting_as);
            self.batch.before = Some(self.host.facts.clone());
        }
        let unsettled = self.host.facts.unsettled().len();
        for change in &changes {
            super::outcome::record(result, change, &self.host.secret_paths);
            change.predict(&mut self.host.facts);
        }
        self.batch.unsettled |= self.host.facts.unsettled().len() > unsettled;
        self.batch.secret |= task.no_log;
        let confirm = !result.handler && task.module.kind() != "command";
        let id = self.staged_entries;
        self.staged_entries += 1;
        result.staged = Some(id);
        self.batch.entries.push(Entry {
            id,
            changes,
            module: confirm.then_some(module),
            notified_before: self.notified.clone(),
            secret: task.no_log,
        });
    }

    /// Sends the batch as one script (see [`Self::send_with`]).
    pub(super) fn send_batch(&mut self) -> Result<(), TaskError> {
        self.send_with(&[]).map(|_| ())
    }

    /// Sends the batch with `own`, the changes of the task being run, at its end, as
    /// one script; then reads again what it made stale (with what the rest of the play
    /// needs) and confirms every task of the batch is now converged. Returns how many
    /// of `own` were attempted and how they went. A failure of a change of the batch
    /// is kept for [`Self::batch_failed`] and returned as [`TaskError::EarlierChange`].
    pub(super) fn send_with(
        &mut self,
        own: &[Change],
    ) -> Result<(usize, Result<(), TaskError>), TaskError> {
        if self.batch.is_empty() {
            return Ok(self.apply(own));
        }
        let batch = std::mem::take(&mut self.batch);
        let mut changes: Vec<Change> = batch
            .entries
            .iter()
            .flat_map(|entry| entry.changes.iter().cloned())
            .collect();
        let staged = changes.len();
        changes.extend(own.iter().cloned());
        // The confirming read goes at the script's end: it runs once every change has.
        let confirming = {
            let mut after = self.host.facts.clone();
            forget_stale(&mut after, &changes, batch.before.as_ref());
            unknown_keys(&after, &self.confirming_modules(&batch.entries), Vec::new())
        };
        let read =
            (!confirming.is_empty()).then(|| reader(batch_script(&confirming, &self.host.nonce)));
        let identity = std::mem::replace(&mut self.acting_as, batch.identity.clone());
        let hidden = self.hide_commands;
        self.hide_commands |= batch.secret;
        let (attempted, applied, read_output) = self.apply_then(&changes, read);
        self.acting_as = identity;
        self.hide_commands = hidden;
        // What the predictions put in the store is read again, as what the changes
        // touched is.
        forget_stale(&mut self.host.facts, &[], batch.before.as_ref());
        if let Some(output) = read_output {
            self.keep_read(&confirming, &output);
        }
        match applied {
            Err(error) if attempted <= staged => {
                let mut entry = 0;
                let mut before = 0;
                while entry + 1 < batch.entries.len()
                    && before + batch.entries[entry].changes.len() < attempted
                {
                    before += batch.entries[entry].changes.len();
                    entry += 1;
                }
                let status = match &error {
                    TaskError::Transport(error) => super::remote::transport_status(error),
                    _ => Status::Failed,
                };
                self.failure = Some(BatchFailure {
                    entry: batch.entries[entry].id,
                    attempted: attempted - before,
                    status,
                    message: error.to_string(),
                    secret: batch.entries[entry].secret,
                });
                self.notified
                    .clone_from(&batch.entries[entry].notified_before);
                Err(TaskError::EarlierChange)
            }
            Err(error) => Ok((attempted - staged, Err(error))),
            Ok(()) => {
                // Confirmed with the next read, which then also serves what a task
                // rendered from this one's registered result needs.
                self.unconfirmed_entries.extend(batch.entries);
                Ok((own.len(), Ok(())))
            }
        }
    }

    /// What the read that confirms a script of `entries` serves: those tasks, planned
    /// again, and the rest of the play.
    fn confirming_modules(&self, entries: &[Entry]) -> Vec<Arc<dyn DynModule>> {
        entries
            .iter()
            .filter_map(|entry| entry.module.clone())
            .chain(self.expected().cloned())
            .collect()
    }

    /// Reads what the last script made stale and its own read did not bring back, with
    /// `needed` (what the task about to be planned misses) and what the rest of the play
    /// needs, and plans each task of the script again: one that would still change
    /// something gets a warning on its outcome. Nothing to do when no script is waiting
    /// for it.
    pub(super) fn confirm(&mut self, needed: Vec<FactKey>) -> Result<(), TaskError> {
        if self.unconfirmed_entries.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.unconfirmed_entries);
        let modules = self.confirming_modules(&entries);
        let mut needed = needed;
        for _ in 0..3 {
            let unknown = unknown_keys(&self.host.facts, &modules, std::mem::take(&mut needed));
            if unknown.is_empty() {
                break;
            }
            self.read_facts(unknown)?;
        }
        for (position, entry) in entries.iter().enumerate() {
            let Some(module) = &entry.module else {
                continue;
            };
            // A later task of the batch that changed what this one manages decides
            // what it is now: this one is not asked again.
            let later: Vec<Touch> = entries[position + 1..]
                .iter()
                .flat_map(|later| later.changes.iter().flat_map(Change::touches))
                .collect();
            if touched_by(&self.host.facts, &**module, &later) {
                continue;
            }
            let left = match module.plan(&self.host.facts) {
                Ok(plan) => plan.changes.iter().map(Change::describe).collect(),
                Err(error) => vec![error.to_string()],
            };
            if !left.is_empty() {
                let left = if entry.secret {
                    "(hidden: no_log)".to_owned()
                } else {
                    left.join("; ")
                };
                self.unconfirmed.push((
                    entry.id,
                    format!("the host is not as predicted after this task's changes: it would still {left}"),
                ));
            }
        }
        Ok(())
    }

    /// Puts what the last script did on the outcomes of its tasks, now in `outcomes`:
    /// the task whose change failed fails (with the changes that were attempted), and
    /// what was planned after it is taken back. Returns whether a change failed.
    pub(super) fn batch_failed(&mut self, outcomes: &mut Vec<TaskOutcome>) -> bool {
        for (entry, warning) in std::mem::take(&mut self.unconfirmed) {
            if let Some(result) = outcomes.iter_mut().rev().find(|r| r.staged == Some(entry)) {
                result.warnings.push(warning);
            }
        }
        let Some(failure) = self.failure.take() else {
            return false;
        };
        let position = outcomes
            .iter()
            .rposition(|r| r.staged == Some(failure.entry))
            .unwrap_or(outcomes.len().saturating_sub(1));
        outcomes.truncate(position + 1);
        if let Some(result) = outcomes.last_mut() {
            result.status = failure.status;
            result.message = Some(failure.message);
            if failure.secret {
                result.changes = vec![String::new(); failure.attempted];
                redact(result);
            } else {
                result.changes.truncate(failure.attempted);
            }
        }
        self.host.down = Some(failure.status);
        true
    }

    /// Sends the batch now, and puts what it did on the outcomes of its tasks (see
    /// [`Self::batch_failed`]). A host that cannot be reached any more gets nothing.
    pub(super) fn send_now(&mut self, outcomes: &mut Vec<TaskOutcome>) -> Flow {
        if self.host.down == Some(Status::Unreachable) {
            self.drop_batch(outcomes);
            return Flow::Failed;
        }
        let sent = self.send_batch().and_then(|()| self.confirm(Vec::new()));
        if self.batch_failed(outcomes) {
            return Flow::Failed;
        }
        match sent {
            Ok(()) => Flow::Go,
            Err(error) => {
                // The changes went; reading the host again afterwards did not.
                let status = match &error {
                    TaskError::Transport(error) => super::remote::transport_status(error),
                    _ => Status::Failed,
                };
                self.host.down = Some(status);
                if let Some(last) = outcomes.last_mut() {
                    last.status = status;
                    last.message = Some(error.to_string());
                }
                Flow::Failed
            }
        }
    }

    /// Takes back what is waiting in the batch (the run was interrupted, or another
    /// host's failure stops the play): nothing of it was sent.
    pub(super) fn drop_batch(&mut self, outcomes: &mut Vec<TaskOutcome>) {
        let batch = std::mem::take(&mut self.batch);
        let Some(first) = batch.entries.first() else {
            return;
        };
        if let Some(position) = outcomes.iter().position(|r| r.staged == Some(first.id)) {
            outcomes.truncate(position);
        }
        self.notified.clone_from(&first.notified_before);
        if let Some(before) = batch.before {
            self.host.facts = before;
        }
    }
}

/// What `modules` and `needed` ask for that `facts` does not hold, and, as with the first
/// read, what a user's usual home would hold (see [`guessed_facts`]); none when
/// nothing is missing.
fn unknown_keys(
    facts: &FactStore,
    modules: &[Arc<dyn DynModule>],
    needed: Vec<FactKey>,
) -> Vec<FactKey> {
    let missing: Vec<FactKey> = modules
        .iter()
        .flat_map(|module| module.facts(facts))
        .chain(needed)
        .filter(|key| !facts.has(key))
        .collect();
    if missing.is_empty() {
        return missing;
    }
    let guessed = guessed_facts(facts, &missing, modules);
    let mut keys: Vec<FactKey> = missing.into_iter().chain(guessed).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Forgets in `facts` what `changes` touch and what predictions put there since
/// `before`: what a script of those changes leaves to be read again.
fn forget_stale(facts: &mut FactStore, changes: &[Change], before: Option<&FactStore>) {
    for touch in changes.iter().flat_map(Change::touches) {
        facts.forget(&touch);
    }
    if let Some(before) = before {
        for key in facts.differing_keys(before) {
            facts.forget(&Touch::Key(key));
        }
    }
}

/// Whether `touches` make any fact `module` plans with stale.
fn touched_by(facts: &FactStore, module: &dyn DynModule, touches: &[Touch]) -> bool {
    if touches.is_empty() {
        return false;
    }
    let mut own = FactStore::default();
    for key in module.facts(facts) {
        if let Ok(fact) = facts.fact(&key) {
            own.insert(key, fact.clone());
        }
    }
    let before = own.clone();
    for touch in touches {
        own.forget(touch);
    }
    !own.differing_keys(&before).is_empty()
}
