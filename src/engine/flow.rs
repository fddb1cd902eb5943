//! The flow of a play's tasks on one host: in order, and through blocks as Ansible
//! runs them. When a task of a `block` fails, the rest of the block is left, its
//! `rescue` runs and, if the rescue succeeds, the failure counts as rescued (status
//! `rescued`, not a failure) and the host goes on; `always` runs in every case (but on
//! a host that cannot be reached). A failure that no rescue takes stops the host.

use std::time::Instant;

use super::outcome::outcome;
use super::play_run::PlayRun;
use super::results::{pending_message, unknown_read, Unknown};
use super::{interrupted, Status, TaskOutcome, ABORTED};
use crate::playbook::{Each, Node};

/// How a run of tasks ended on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Every task ran (or was rescued).
    Go,
    /// A task failed, or the host cannot be reached: the host stops here.
    Failed,
    /// The run was interrupted, or another host's failure stops the play.
    Stop,
}

impl<'a> PlayRun<'a> {
    /// Runs `nodes` in order, until one fails or the run stops.
    pub(super) fn run_nodes(&mut self, nodes: &'a [Node], outcomes: &mut Vec<TaskOutcome>) -> Flow {
        for node in nodes {
            let flow = match node {
                Node::Task(index) => self.run_step(*index, outcomes),
                Node::Block {
                    block,
                    rescue,
                    always,
                } => self.run_block(block, rescue, always, outcomes),
                Node::Include { when, each, body } => {
                    self.run_include(when.as_deref(), each.as_ref(), body, outcomes)
                }
            };
            if flow != Flow::Go {
                return flow;
            }
        }
        Flow::Go
    }

    /// Runs the play's task `index` (each item of a looped one), if selected.
    fn run_step(&mut self, index: usize, outcomes: &mut Vec<TaskOutcome>) -> Flow {
        let task = &self.play.tasks[index];
        if !task.selected(&self.options.tags) {
            return Flow::Go;
        }
        if interrupted() {
            return Flow::Stop;
        }
        if self.aborted() {
            self.host.down = Some(Status::Skipped);
            outcomes.push(
                outcome(index, false, task, Status::Skipped, Instant::now())
                    .with_message(ABORTED.to_owned()),
            );
            return Flow::Stop;
        }
        if matches!(task.module.kind(), "meta" | "flush_handlers") {
            return self.flush(outcomes);
        }
        if let Some(skipped) = self.not_once(index, task) {
            outcomes.push(skipped);
            return Flow::Go;
        }
        self.progress.task_started(index);
        let results = self.run_entry(index, false, task);
        if results.iter().any(|r| r.status == Status::Changed) {
            self.notified.extend(task.notify.iter().cloned());
        }
        let failed = results
            .iter()
            .any(|r| matches!(r.status, Status::Failed | Status::Unreachable));
        outcomes.extend(results);
        if self.batch_failed(outcomes) || failed {
            Flow::Failed
        } else {
            Flow::Go
        }
    }

    /// Runs an include: its tasks once (or once per item of its `loop`, rendered now)
    /// when its `when` holds, decided before any of them runs (with the variables its
    /// first task sees); otherwise each is skipped.
    fn run_include(
        &mut self,
        when: Option<&str>,
        each: Option<&Each>,
        body: &'a [Node],
        outcomes: &mut Vec<TaskOutcome>,
    ) -> Flow {
        let mut indices = Vec::new();
        task_indices(body, &mut indices);
        let Some(&first) = indices.first() else {
            return Flow::Go;
        };
        let Some(each) = each else {
            return self.run_included(when, body, &indices, outcomes);
        };
        let task = &self.play.tasks[first];
        if let Some(reference) = unknown_read(
            &self.renderer,
            &self.host.unknown,
            each.over.templates().map(|text| (text, false)),
        ) {
            self.skip_included(
                &indices,
                Status::Pending,
                Some(&pending_message("the include's `loop`", &reference)),
                outcomes,
            );
            return Flow::Go;
        }
        let origin = format!("the `loop` of the include of task `{}`", task.title());
        let items = self.vars().and_then(|vars| {
            let vars = self.scoped(task, &vars)?;
            each.over.render(&self.renderer, &vars, &origin)
        });
        let items = match items.map(|items| items.to_json()) {
            Ok(serde_json::Value::Array(items)) => items,
            Ok(other) => {
                let message = format!("{origin} renders to {other}, not a list");
                return self.fail_include(first, message, outcomes);
            }
            Err(error) => return self.fail_include(first, error.to_string(), outcomes),
        };
        let mut flow = Flow::Go;
        for item in items {
            self.included.insert(each.var.clone(), item);
            self.forget_renderings(&indices);
            flow = self.run_included(when, body, &indices, outcomes);
            if flow != Flow::Go {
                break;
            }
        }
        self.included.shift_remove(&each.var);
        self.forget_renderings(&indices);
        flow
    }

    /// Runs an include's tasks (for one item) if its `when` holds.
    fn run_included(
        &mut self,
        when: Option<&str>,
        body: &'a [Node],
        indices: &[usize],
        outcomes: &mut Vec<TaskOutcome>,
    ) -> Flow {
        let Some(when) = when else {
            return self.run_nodes(body, outcomes);
        };
        let play = self.play;
        let task = &play.tasks[indices[0]];
        if let Some(reference) = unknown_read(&self.renderer, &self.host.unknown, [(when, true)]) {
            // Check mode cannot know what the condition reads: nothing in it is known.
            for index in indices {
                if let Some(name) = &play.tasks[*index].register {
                    self.host.unknown.insert(name.clone(), Unknown::All);
                }
            }
            let message = pending_message("the include's `when`", &reference);
            self.skip_included(indices, Status::Pending, Some(&message), outcomes);
            return Flow::Go;
        }
        let origin = format!("the `when` of the include of task `{}`", task.title());
        let holds = self.vars().and_then(|vars| {
            let vars = self.scoped(task, &vars)?;
            self.renderer.condition(when, &vars, &origin)
        });
        match holds {
            Ok(true) => self.run_nodes(body, outcomes),
            Ok(false) => {
                self.skip_included(indices, Status::Skipped, None, outcomes);
                Flow::Go
            }
            Err(error) => self.fail_include(indices[0], error.to_string(), outcomes),
        }
    }

    /// Reports each selected task of an include that does not run with `status`.
    fn skip_included(
        &self,
        indices: &[usize],
        status: Status,
        message: Option<&str>,
        outcomes: &mut Vec<TaskOutcome>,
    ) {
        for &index in indices {
            let task = &self.play.tasks[index];
            if task.selected(&self.options.tags) {
                let skipped = outcome(index, false, task, status, Instant::now());
                outcomes.push(match message {
                    Some(message) => skipped.with_message(message.to_owned()),
                    None => skipped,
                });
            }
        }
    }

    /// An include whose `when` or `loop` cannot be rendered fails on its first task.
    fn fail_include(
        &mut self,
        first: usize,
        message: String,
        outcomes: &mut Vec<TaskOutcome>,
    ) -> Flow {
        self.host.down = Some(Status::Failed);
        let task = &self.play.tasks[first];
        outcomes.push(
            outcome(first, false, task, Status::Failed, Instant::now()).with_message(message),
        );
        Flow::Failed
    }

    /// Forgets the tasks' renderings, made with another item of their include.
    fn forget_renderings(&mut self, indices: &[usize]) {
        for &index in indices {
            if let Some(rendered) = self.rendered.get_mut(index) {
                *rendered = None;
            }
            self.looped.remove(&index);
        }
    }

    /// Runs a block, then its rescue if a task of it failed, then its always.
    fn run_block(
        &mut self,
        block: &'a [Node],
        rescue: &'a [Node],
        always: &'a [Node],
        outcomes: &mut Vec<TaskOutcome>,
    ) -> Flow {
        let guarded = !(rescue.is_empty() && always.is_empty());
        if guarded {
            // A failure of what was planned before the block is not the block's to
            // rescue: it reaches the host first.
            if self.send_now(outcomes) == Flow::Failed {
                return Flow::Failed;
            }
            self.guarded += 1;
        }
        let flow = self.run_guarded(block, rescue, always, outcomes);
        if guarded {
            self.guarded -= 1;
        }
        flow
    }

    /// [`Self::run_block`]'s blocks, once what was planned before them was sent.
    fn run_guarded(
        &mut self,
        block: &'a [Node],
        rescue: &'a [Node],
        always: &'a [Node],
        outcomes: &mut Vec<TaskOutcome>,
    ) -> Flow {
        let start = outcomes.len();
        let mut flow = self.run_nodes(block, outcomes);
        // A host that cannot be reached is not rescued, as in Ansible.
        let rescuable = self.host.down == Some(Status::Failed);
        if flow == Flow::Failed && rescuable && !rescue.is_empty() {
            for result in &mut outcomes[start..] {
                if result.status == Status::Failed {
                    result.status = Status::Rescued;
                }
            }
            self.host.down = None;
            flow = self.run_nodes(rescue, outcomes);
        }
        if flow == Flow::Stop || self.host.down == Some(Status::Unreachable) {
            return flow;
        }
        // `always` runs on a failed host too; the failure stands after it.
        let down = self.host.down.take();
        let after = self.run_nodes(always, outcomes);
        if after == Flow::Go {
            self.host.down = down;
        }
        match (flow, after) {
            (Flow::Stop, _) | (_, Flow::Stop) => Flow::Stop,
            (Flow::Failed, _) | (_, Flow::Failed) => Flow::Failed,
            (Flow::Go, Flow::Go) => Flow::Go,
        }
    }
}

/// The play's tasks under `nodes`, in order.
fn task_indices(nodes: &[Node], indices: &mut Vec<usize>) {
    for node in nodes {
        match node {
            Node::Task(index) => indices.push(*index),
            Node::Block {
                block,
                rescue,
                always,
            } => {
                for part in [block, rescue, always] {
                    task_indices(part, indices);
                }
            }
            Node::Include { body, .. } => task_indices(body, indices),
        }
    }
}
