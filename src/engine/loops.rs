//! `loop`: a task run once per item on each host, each item reported on its own line.
//!
//! A looped task's items are rendered for the host with the play's other tasks, before
//! the first read, and each item's module asks for its facts there: a looped task with
//! nothing to change costs no command of its own. Its registered result is Ansible's:
//! `results`, one result per item (with its `item`), and `changed`, `failed`,
//! `skipped` over all of them.

use std::borrow::Cow;
use std::sync::Arc;

use converge_modules::DynModule;
use serde_json::{json, Value};

use super::outcome::outcome;
use super::play_run::PlayRun;
use super::render::{render_task, RenderError};
use super::results::{pending_message, unknown_read, Unknown};
use super::{interrupted, Status, TaskOutcome};
use crate::inventory::Vars;
use crate::playbook::Task;
use crate::template::{Renderer, TemplateError};

/// One item of a looped task, rendered for a host.
#[derive(Debug, Clone)]
pub(super) struct LoopItem {
    pub(super) value: Value,
    pub(super) module: Result<Arc<dyn DynModule>, RenderError>,
}

/// A looped task's items for a host, or why they could not be made.
pub(super) type Items = Result<Vec<LoopItem>, RenderError>;

/// The values `task`'s `loop` renders to with `vars`.
pub(super) fn loop_values(
    renderer: &Renderer,
    task: &Task,
    vars: &Vars,
) -> Result<Vec<Value>, TemplateError> {
    let Some(looped) = &task.loop_over else {
        return Ok(Vec::new());
    };
    let origin = format!("the `loop` of task `{}`", task.title());
    match looped.render(renderer, vars, &origin)?.to_json() {
        Value::Array(items) => Ok(items),
        other => Err(TemplateError::Invalid {
            origin,
            message: format!("it renders to {other}, not a list"),
        }),
    }
}

/// `vars` with `value` as the task's loop variable.
pub(super) fn item_vars(task: &Task, vars: &Vars, value: &Value) -> Vars {
    let mut vars = vars.clone();
    vars.insert(task.loop_var.clone(), value.clone());
    vars
}

/// Every item of `task` rendered for a host.
pub(super) fn render_items(renderer: &Renderer, task: &Task, vars: &Vars) -> Items {
    let values = loop_values(renderer, task, vars)?;
    Ok(values
        .into_iter()
        .map(|value| {
            let module = render_task(renderer, task, &item_vars(task, vars, &value)).map(Arc::from);
            LoopItem { value, module }
        })
        .collect())
}

/// How an item is shown: its `label`, or the item itself (a string as it is).
fn label(renderer: &Renderer, task: &Task, vars: &Vars, item: &Value) -> String {
    if let Some(label) = &task.loop_label {
        let vars = item_vars(task, vars, item);
        if let Ok(text) = renderer.render(label, &vars, "loop_control.label") {
            return text;
        }
    }
    match item {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl PlayRun<'_> {
    /// The items of the looped task in `slot`, rendered the first time they are asked
    /// for.
    pub(super) fn items(&mut self, slot: usize, task: &Task, vars: &Vars) -> Items {
        self.looped
            .entry(slot)
            .or_insert_with(|| render_items(&self.renderer, task, vars))
            .clone()
    }

    /// Runs a looped task: each item in turn, on its own line. Returns the outcomes,
    /// and registers the task's result.
    pub(super) fn run_loop(
        &mut self,
        index: usize,
        handler: bool,
        slot: usize,
        task: &Task,
    ) -> Vec<TaskOutcome> {
        let started = std::time::Instant::now();
        let whole = |status: Status, message: String| {
            outcome(index, handler, task, status, started).with_message(message)
        };
        let scoped = self
            .vars()
            .and_then(|vars| self.scoped(task, &vars).map(Cow::into_owned));
        let vars = match scoped {
            Ok(vars) => vars,
            Err(error) => {
                self.host.down = Some(Status::Failed);
                return vec![whole(Status::Failed, error.to_string())];
            }
        };
        let texts = task
            .loop_over
            .iter()
            .flat_map(|raw| raw.templates())
            .map(|text| (text, false));
        if let Some(reference) = unknown_read(&self.renderer, &self.host.unknown, texts) {
            let message = pending_message("its `loop`", &reference);
            self.register_loop(task, Vec::new(), &[], Some(Unknown::All));
            return vec![whole(Status::Pending, message)];
        }
        let items = match self.items(slot, task, &vars) {
            Ok(items) => items,
            Err(error) => {
                let message = super::TaskError::from(error).to_string();
                self.host.down = Some(Status::Failed);
                let failed = whole(Status::Failed, message);
                self.register_loop(task, Vec::new(), std::slice::from_ref(&failed), None);
                return vec![failed];
            }
        };
        if items.is_empty() {
            let skipped = whole(Status::Skipped, "no items".to_owned());
            self.register_loop(task, Vec::new(), &[], None);
            return vec![skipped];
        }
        let mut outcomes = Vec::with_capacity(items.len());
        let mut results = Vec::with_capacity(items.len());
        let mut unknown = None;
        for item in &items {
            if interrupted() {
                break;
            }
            let (mut result, mut value, item_unknown) =
                self.run_one(index, handler, slot, task, Some(item));
            // An item may be the secret itself.
            result.item = Some(if task.no_log {
                "(hidden: no_log)".to_owned()
            } else {
                label(&self.renderer, task, &vars, &item.value)
            });
            value["item"] = item.value.clone();
            unknown = unknown.max(item_unknown.map(|u| u == Unknown::All));
            results.push(value);
            let unreachable = result.status == Status::Unreachable;
            outcomes.push(result);
            if unreachable {
                break;
            }
        }
        let unknown = unknown.map(|all| if all { Unknown::All } else { Unknown::Output });
        self.register_loop(task, results, &outcomes, unknown);
        outcomes
    }

    /// Registers a looped task's result: `results`, and the totals over them.
    fn register_loop(
        &mut self,
        task: &Task,
        results: Vec<Value>,
        outcomes: &[TaskOutcome],
        unknown: Option<Unknown>,
    ) {
        let Some(name) = &task.register else {
            return;
        };
        let any = |statuses: &[Status]| outcomes.iter().any(|o| statuses.contains(&o.status));
        let failed = any(&[Status::Failed, Status::Ignored, Status::Unreachable]);
        let skipped = outcomes.iter().all(|o| o.status == Status::Skipped);
        let msg = outcomes
            .iter()
            .find(|o| matches!(o.status, Status::Failed | Status::Unreachable))
            .and_then(|o| o.message.clone())
            .unwrap_or_else(|| {
                if failed {
                    "One or more items failed".to_owned()
                } else {
                    "All items completed".to_owned()
                }
            });
        let value = json!({
            "changed": any(&[Status::Changed]),
            "failed": failed,
            "skipped": skipped,
            "msg": msg,
            "results": Value::Array(results),
        });
        self.register(name, value, unknown);
    }
}
