//! `until` with `retries` and `delay` (Ansible's retry loop): a task, or one item of a
//! looped task, runs again until its `until` conditions hold, at most `retries` more
//! times, `delay` seconds apart.
//!
//! # Guarantees
//!
//! - Each attempt is a whole run of the task, settled as any task is (`changed_when`,
//!   `failed_when`), and `until` is evaluated with that attempt's registered result in
//!   scope, holding `attempts` (1 for the first run). A failed attempt is run again too:
//!   only the last one decides whether the host goes on.
//! - A task skipped by its `when`, pending, or whose host could not be reached is not
//!   run again.
//! - When the conditions still do not hold after the last attempt, the task fails
//!   (`ignore_errors` applies) saying so; what earlier attempts changed is reported
//!   with the last one, and the task counts as changed if any attempt changed the host.
//! - Check mode never waits and never guesses: an `until` that reads output check mode
//!   cannot know, or that does not hold yet, makes the task `pending` (a real run would
//!   run it again).
//! - An interrupted run (SIGINT, SIGTERM) stops waiting at once; the attempt that ran
//!   last is the task's outcome.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::loops::LoopItem;
use super::play_run::PlayRun;
use super::results::{all_hold, pending_message, unknown_read, Unknown};
use super::{interrupted, Status, TaskOutcome};
use crate::playbook::{Task, Until};

/// What the `until` of a task made of one attempt.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Holds,
    NotYet,
    /// It reads what check mode cannot know, or check mode cannot run the task again.
    Pending(String),
    /// It could not be evaluated.
    Error(String),
}

impl PlayRun<'_> {
    /// Converges `task` (or one item of it) into `result`, again while its `until`
    /// does not hold; returns what it registers.
    pub(super) fn attempt(
        &mut self,
        slot: usize,
        task: &Task,
        item: Option<&LoopItem>,
        result: &mut TaskOutcome,
    ) -> (Value, Option<Unknown>) {
        let Some(until) = &task.until else {
            return self.attempt_once(slot, task, item, result);
        };
        let fresh = result.clone();
        let down = self.host.down;
        let mut earlier_changes: Vec<String> = Vec::new();
        let mut changed = false;
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            let (mut value, mut unknown) = self.attempt_once(slot, task, item, result);
            if let Value::Object(map) = &mut value {
                map.insert("attempts".to_owned(), attempts.into());
            }
            changed |= result.status == Status::Changed;
            // A change planned before this task failed when it was sent: the host
            // stops there, and this task never ran.
            if matches!(
                result.status,
                Status::Skipped | Status::Pending | Status::Unreachable
            ) || self.failure.is_some()
            {
                return (value, unknown);
            }
            let verdict = self.verdict(task, item, until, &value, unknown);
            let last = attempts > until.retries || interrupted();
            let message = match verdict {
                Verdict::Holds => None,
                Verdict::Pending(why) => {
                    result.status = Status::Pending;
                    result.message = Some(why);
                    self.host.down = down;
                    return (value, Some(Unknown::All));
                }
                Verdict::NotYet if last => Some(format!(
                    "`until` still does not hold after {attempts} attempt{}: {}",
                    if attempts == 1 { "" } else { "s" },
                    until.conditions.join(" and ")
                )),
                Verdict::Error(message) => Some(message),
                Verdict::NotYet => {
                    // Run again, as if this attempt had not failed the host.
                    self.host.down = down;
                    earlier_changes.append(&mut result.changes);
                    *result = fresh.clone();
                    wait(until.delay);
                    continue;
                }
            };
            let mut changes = std::mem::take(&mut earlier_changes);
            changes.append(&mut result.changes);
            result.changes = changes;
            if let Some(message) = message {
                if let Some(why) = result.message.take() {
                    result.notes.push(format!("last attempt: {why}"));
                }
                result.status = if task.ignore_errors {
                    Status::Ignored
                } else {
                    self.host.down = Some(Status::Failed);
                    Status::Failed
                };
                if let Value::Object(map) = &mut value {
                    map.insert("failed".to_owned(), true.into());
                    map.insert("msg".to_owned(), message.clone().into());
                }
                result.message = Some(message);
                unknown = None;
            } else if changed && result.status == Status::Ok {
                result.status = Status::Changed;
            }
            if attempts > 1 {
                result.notes.push(format!("ran {attempts} times (until)"));
            }
            return (value, unknown);
        }
    }

    /// Whether `until` holds for an attempt that registered `value`.
    fn verdict(
        &mut self,
        task: &Task,
        item: Option<&LoopItem>,
        until: &Until,
        value: &Value,
        own_unknown: Option<Unknown>,
    ) -> Verdict {
        let scope = self.own_result_scope(task, item, value.clone(), own_unknown);
        let (vars, unknown) = match scope {
            Ok(scope) => scope,
            Err(error) => return Verdict::Error(error.to_string()),
        };
        let texts = until.conditions.iter().map(|c| (c.as_str(), true));
        if let Some(reference) = unknown_read(&self.renderer, &unknown, texts) {
            return Verdict::Pending(pending_message("its `until`", &reference));
        }
        let origin = format!("the `until` of task `{}`", task.title());
        match all_hold(&self.renderer, &until.conditions, &vars, &origin) {
            Ok(true) => Verdict::Holds,
            Ok(false) if self.options.check => Verdict::Pending(format!(
                "its `until` does not hold yet: a real run would run it again (up to {} more times)",
                until.retries
            )),
            Ok(false) => Verdict::NotYet,
            Err(error) => Verdict::Error(error.to_string()),
        }
    }

    /// One run of the task, settled.
    fn attempt_once(
        &mut self,
        slot: usize,
        task: &Task,
        item: Option<&LoopItem>,
        result: &mut TaskOutcome,
    ) -> (Value, Option<Unknown>) {
        self.last_output = None;
        let converged = self.converge_task(slot, task, item, result);
        let output = self.last_output.take();
        self.settle(task, item, result, converged, output.as_ref())
    }
}

/// Waits `seconds`, or until the run is interrupted.
fn wait(seconds: u64) {
    let until = Instant::now() + Duration::from_secs(seconds);
    while !interrupted() {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}
