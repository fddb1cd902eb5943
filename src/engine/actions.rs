//! The engine's own actions on one host: `set_fact`, `debug`, `assert`, `fail` (see
//! `playbook::actions`), and the flow's `flush_handlers` and `run_once`. None of them
//! runs a command; in check mode they do what they do in a real run, unless they read
//! output check mode cannot know (then they are `pending`, as any task).

use std::time::Instant;

use serde_json::Value;

use super::flow::Flow;
use super::outcome::outcome;
use super::play_run::PlayRun;
use super::results::{all_hold, pending_message as pending, unknown_read, Unknown};
use super::{interrupted, Status, TaskError, TaskOutcome};
use crate::inventory::Vars;
use crate::playbook::actions::{action, Action};
use crate::playbook::Task;

impl<'a> PlayRun<'a> {
    /// Carries out a task's action with `vars` (its `when` held).
    pub(super) fn act(
        &mut self,
        task: &Task,
        vars: &Vars,
        result: &mut TaskOutcome,
    ) -> Result<Status, TaskError> {
        let action = action(task).map_err(TaskError::Action)?;
        let title = task.title();
        let origin = format!("task `{title}`");
        match action {
            Action::SetFact(facts) => {
                let mut set = Vec::with_capacity(facts.len());
                for (name, raw) in facts {
                    set.push((name, raw.render(&self.renderer, vars, &origin)?.to_json()));
                }
                for (name, value) in set {
                    self.register(name, value, None);
                }
                Ok(Status::Ok)
            }
            Action::Debug { msg, var } => {
                if let Some(var) = var {
                    let unknown = unknown_read(&self.renderer, &self.host.unknown, [(var, true)]);
                    if let Some(reference) = unknown {
                        result.message = Some(pending("its `var`", &reference));
                        return Ok(Status::Pending);
                    }
                    let value = self
                        .renderer
                        .value(&format!("{{{{ {var} }}}}"), vars, &origin)?;
                    result.message = Some(format!("{var} = {value}"));
                } else if let Some(msg) = msg {
                    result.message =
                        Some(match msg.render(&self.renderer, vars, &origin)?.to_json() {
                            Value::String(text) => text,
                            other => other.to_string(),
                        });
                }
                Ok(Status::Ok)
            }
            Action::Assert {
                that,
                fail_msg,
                success_msg,
            } => {
                let texts = that.iter().map(|c| (c.as_str(), true));
                if let Some(reference) = unknown_read(&self.renderer, &self.host.unknown, texts) {
                    result.message = Some(pending("its `that`", &reference));
                    return Ok(Status::Pending);
                }
                let origin = format!("the `that` of task `{title}`");
                for condition in &that {
                    if !all_hold(
                        &self.renderer,
                        std::slice::from_ref(condition),
                        vars,
                        &origin,
                    )? {
                        let message = match fail_msg {
                            Some(text) => self.renderer.render(text, vars, &origin)?,
                            None => format!("assertion failed: {condition}"),
                        };
                        return Err(TaskError::Action(message));
                    }
                }
                result.message = Some(match success_msg {
                    Some(text) => self.renderer.render(text, vars, &origin)?,
                    None => "all assertions passed".to_owned(),
                });
                Ok(Status::Ok)
            }
            Action::Fail { msg } => Err(TaskError::Action(match msg {
                Some(text) => self.renderer.render(text, vars, &origin)?,
                None => "failed as the task asks".to_owned(),
            })),
            // Run by the flow, never as a task (see `flush`).
            Action::FlushHandlers => Ok(Status::Ok),
        }
    }

    /// A pending `set_fact` leaves the variables it would set unknown.
    pub(super) fn unknown_facts(&mut self, task: &Task) {
        if let Ok(Action::SetFact(facts)) = action(task) {
            for (name, _) in facts {
                self.register(name, Value::Null, Some(Unknown::All));
            }
        }
    }

    /// Runs the handlers notified so far, in the order listed, each once, and forgets
    /// them: a later notification runs them again at the end of the play.
    pub(super) fn flush(&mut self, outcomes: &mut Vec<TaskOutcome>) -> Flow {
        let play: &'a crate::playbook::Play = self.play;
        for (index, handler) in play.handlers.iter().enumerate() {
            if !self.notified.contains(&handler.handler_id()) {
                continue;
            }
            if interrupted() || self.aborted() {
                return Flow::Stop;
            }
            let results = self.run_entry(index, true, handler);
            let failed = results
                .iter()
                .any(|r| matches!(r.status, Status::Failed | Status::Unreachable));
            if results.iter().any(|r| r.status == Status::Changed) {
                self.notified.extend(handler.notify.iter().cloned());
            }
            outcomes.extend(results);
            if self.batch_failed(outcomes) || failed {
                return Flow::Failed;
            }
        }
        self.notified.clear();
        Flow::Go
    }

    /// Whether `task` is left out on this host by `run_once`: its outcome then.
    pub(super) fn not_once(&self, index: usize, task: &Task) -> Option<TaskOutcome> {
        let first = self.first_host.as_deref()?;
        (task.run_once && first != self.host.name).then(|| {
            outcome(index, false, task, Status::Skipped, Instant::now())
                .with_message(format!("run_once: runs on {first} only"))
        })
    }
}
