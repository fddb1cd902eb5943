//! The flow of a play's tasks on one host: in order, and through blocks as Ansible
//! runs them. When a task of a `block` fails, the rest of the block is left, its
//! `rescue` runs and, if the rescue succeeds, the failure counts as rescued (status
//! `rescued`, not a failure) and the host goes on; `always` runs in every case (but on
//! a host that cannot be reached). A failure that no rescue takes stops the host.

use std::time::Instant;

use super::outcome::outcome;
use super::play_run::PlayRun;
use super::{interrupted, Status, TaskOutcome, ABORTED};
use crate::playbook::Node;

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
        if failed {
            Flow::Failed
        } else {
            Flow::Go
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
