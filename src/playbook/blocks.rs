//! Blocks: `block` with `rescue` and `always`, flattened at load into the play's one
//! list of tasks (so that reads, renderings and reports keep addressing a task by its
//! index) plus the tree the engine walks for Ansible's flow.
//!
//! What a block gives its tasks is settled here: its `when` joins theirs (all must
//! hold, evaluated per task, as Ansible does), its `tags` add to theirs, its `become`,
//! `become_user` and `vars` are theirs unless a task (or an inner block) says
//! otherwise, and its `no_log` hides them.

use std::path::Path;
use std::sync::Arc;

use super::task::{Block, Entry};
use super::{Origin, Step, Task};
use crate::inventory::Vars;

/// A play's tasks as written: each a task (by index into the play's flat list) or a
/// block.
#[derive(Debug, Clone)]
pub enum Node {
    Task(usize),
    Block {
        block: Vec<Node>,
        rescue: Vec<Node>,
        always: Vec<Node>,
    },
}

/// What the blocks around a task give it.
#[derive(Debug, Clone, Default)]
struct Inherited {
    when: Vec<String>,
    tags: Vec<String>,
    become_root: Option<bool>,
    become_user: Option<String>,
    vars: Vars,
    no_log: bool,
}

/// Flattens `entries` (written at `path` in `file`) into `tasks`; returns their tree.
pub(super) fn flatten(
    entries: Vec<Entry>,
    path: &[Step],
    file: &Path,
    text: &Arc<str>,
    tasks: &mut Vec<Task>,
) -> Vec<Node> {
    flatten_within(entries, path, file, text, &Inherited::default(), tasks)
}

fn flatten_within(
    entries: Vec<Entry>,
    path: &[Step],
    file: &Path,
    text: &Arc<str>,
    inherited: &Inherited,
    tasks: &mut Vec<Task>,
) -> Vec<Node> {
    let mut nodes = Vec::with_capacity(entries.len());
    for (position, entry) in entries.into_iter().enumerate() {
        let mut here = path.to_vec();
        here.push(Step::Index(position));
        match entry {
            Entry::Task(task) => {
                let mut task = *task;
                task.origin = Origin {
                    file: file.to_owned(),
                    text: Arc::clone(text),
                    task: here,
                };
                inherit(&mut task, inherited);
                nodes.push(Node::Task(tasks.len()));
                tasks.push(task);
            }
            Entry::Block(block) => {
                let Block {
                    tasks: block,
                    rescue,
                    always,
                    when,
                    tags,
                    become_root,
                    become_user,
                    vars,
                    no_log,
                } = *block;
                let mut inner = inherited.clone();
                inner.when.extend(when);
                inner.tags.extend(tags);
                inner.become_root = become_root.or(inner.become_root);
                inner.become_user = become_user.or(inner.become_user);
                inner.vars.extend(vars);
                inner.no_log |= no_log.unwrap_or(false);
                let mut part = |key: &str, entries: Vec<Entry>| {
                    let mut at = here.clone();
                    at.push(Step::Key(key.to_owned()));
                    flatten_within(entries, &at, file, text, &inner, tasks)
                };
                let block = part("block", block);
                let rescue = part("rescue", rescue);
                let always = part("always", always);
                nodes.push(Node::Block {
                    block,
                    rescue,
                    always,
                });
            }
        }
    }
    nodes
}

/// Gives `task` what its blocks give it.
fn inherit(task: &mut Task, inherited: &Inherited) {
    let conditions: Vec<&str> = inherited
        .when
        .iter()
        .chain(&task.when)
        .map(String::as_str)
        .collect();
    if conditions.len() > 1 {
        task.when = Some(
            conditions
                .iter()
                .map(|condition| format!("({})", bare(condition)))
                .collect::<Vec<_>>()
                .join(" and "),
        );
    } else if let [only] = conditions.as_slice() {
        task.when = Some((*only).to_owned());
    }
    let mut tags = inherited.tags.clone();
    tags.extend(std::mem::take(&mut task.tags));
    tags.dedup();
    task.tags = tags;
    task.become_root = task.become_root.or(inherited.become_root);
    if task.become_user.is_none() {
        task.become_user.clone_from(&inherited.become_user);
    }
    let mut vars = inherited.vars.clone();
    vars.extend(std::mem::take(&mut task.vars));
    task.vars = vars;
    task.no_log |= inherited.no_log;
}

/// A condition without the `{{ }}` it may be written in.
fn bare(condition: &str) -> &str {
    let trimmed = condition.trim();
    trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or(trimmed)
        .trim()
}
