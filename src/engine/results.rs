//! Logic on a task's result: what `register` keeps (per host), `changed_when` and
//! `failed_when` (evaluated with the task's own result in scope), `ignore_errors`, and
//! check mode's honesty about output it cannot know.
//!
//! In check mode a `command` that would run is registered as `changed` with its output
//! unknown (`rc`, `stdout`, `stderr`, `stdout_lines`), and a pending task's whole
//! result is unknown. A condition or template that reads an unknown value makes its
//! task `pending`: never a guess, never a failure. What a text reads is found from the
//! text itself (see [`Renderer::references`]), before it is evaluated.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::loops::{item_vars, LoopItem};
use super::play_run::PlayRun;
use super::{Status, TaskError, TaskOutcome};
use crate::inventory::Vars;
use crate::playbook::Task;
use crate::template::Renderer;
use crate::transport::Output;

/// The keys of a result that are known whatever happened.
const ALWAYS_KNOWN: &[&str] = &["changed", "failed", "skipped", "msg"];

/// What check mode cannot know about a registered result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unknown {
    /// A command that would run: its output (`rc`, `stdout`, ...).
    Output,
    /// A pending task: all of it.
    All,
}

/// The registered result of one task: what Ansible's `register` holds.
pub(super) fn result_value(
    task: &Task,
    status: Status,
    message: Option<&str>,
    output: Option<&Output>,
) -> Value {
    let mut value = json!({
        "changed": status == Status::Changed,
        "failed": matches!(status, Status::Failed | Status::Ignored | Status::Unreachable),
        "skipped": status == Status::Skipped,
        "msg": message.unwrap_or_default(),
    });
    if status == Status::Unreachable {
        value["unreachable"] = Value::Bool(true);
    }
    if task.module.kind() == "command" && status != Status::Skipped {
        // A command its guard kept from running ends as if it ran and printed nothing.
        let (rc, stdout, stderr) = output.map_or((0, String::new(), String::new()), |out| {
            (out.status, text(&out.stdout), text(&out.stderr))
        });
        let lines: Vec<&str> = stdout.lines().collect();
        value["rc"] = rc.into();
        value["stdout_lines"] = lines.into();
        value["stdout"] = stdout.into();
        value["stderr"] = stderr.into();
    }
    value
}

/// A command's output as a string, without its last line ending (as Ansible keeps it).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\r', '\n'])
        .to_owned()
}

/// The registered variable an expression or template reads that check mode does not
/// know, if any.
pub(super) fn unknown_read<'t>(
    renderer: &Renderer,
    unknown: &BTreeMap<String, Unknown>,
    texts: impl IntoIterator<Item = (&'t str, bool)>,
) -> Option<String> {
    if unknown.is_empty() {
        return None;
    }
    for (text, expression) in texts {
        for reference in renderer.references(text, expression) {
            let mut parts = reference.split('.');
            let name = parts.next().unwrap_or_default();
            let Some(kind) = unknown.get(name) else {
                continue;
            };
            let known = match (kind, parts.next()) {
                (Unknown::Output, Some(key)) => ALWAYS_KNOWN.contains(&key),
                _ => false,
            };
            if !known {
                return Some(reference);
            }
        }
    }
    None
}

/// Why a task waits: what it reads is an earlier task's output, unknown in check mode.
pub(super) fn pending_message(what: &str, reference: &str) -> String {
    format!("{what} reads `{reference}`, which check mode cannot know before the task that registers it has run")
}

/// Evaluates conditions that must all hold.
pub(super) fn all_hold(
    renderer: &Renderer,
    conditions: &[String],
    vars: &Vars,
    origin: &str,
) -> Result<bool, TaskError> {
    for condition in conditions {
        if !renderer.condition(condition, vars, origin)? {
            return Ok(false);
        }
    }
    Ok(true)
}

impl PlayRun<'_> {
    /// The task reads (in its `when` or its parameters) a registered value check mode
    /// does not know: why it is pending.
    pub(super) fn pending_read(&self, task: &Task) -> Option<String> {
        if let Some(reference) = unknown_read(
            &self.renderer,
            &self.host.unknown,
            task.when.iter().map(|when| (when.as_str(), true)),
        ) {
            return Some(pending_message("its `when`", &reference));
        }
        unknown_read(
            &self.renderer,
            &self.host.unknown,
            task.templates().map(|text| (text, false)),
        )
        .map(|reference| pending_message("it", &reference))
    }

    /// Turns what converging a task (or an item of it) gave into its outcome:
    /// `changed_when`, `failed_when` and `ignore_errors` applied, and the host marked
    /// down when it failed. Returns what it registers.
    pub(super) fn settle(
        &mut self,
        task: &Task,
        item: Option<&LoopItem>,
        result: &mut TaskOutcome,
        converged: Result<Status, TaskError>,
        output: Option<&Output>,
    ) -> (Value, Option<Unknown>) {
        let (mut status, error) = match converged {
            Ok(status) => (status, None),
            Err(error) => {
                let status = if let TaskError::Transport(error) = &error {
                    super::remote::transport_status(error)
                } else {
                    Status::Failed
                };
                (status, Some(error))
            }
        };
        if let Some(error) = &error {
            result.message = Some(error.to_string());
        }
        // What check mode cannot know of this task's own result.
        let own_unknown = match status {
            Status::Pending => Some(Unknown::All),
            Status::Changed if self.options.check && task.module.kind() == "command" => {
                Some(Unknown::Output)
            }
            _ => None,
        };
        let judged = matches!(status, Status::Ok | Status::Changed)
            || matches!(error, Some(TaskError::Remote { .. }));
        if judged && (!task.changed_when.is_empty() || !task.failed_when.is_empty()) {
            match self.judge(task, item, status, result, own_unknown, output) {
                Ok(Judged::Status(judged)) => {
                    if status != Status::Failed && judged == Status::Failed {
                        let conditions = task.failed_when.join(" and ");
                        result.message = Some(format!("failed_when holds: {conditions}"));
                    }
                    if status == Status::Failed && judged != Status::Failed {
                        let why = result.message.take().unwrap_or_default();
                        result
                            .notes
                            .push(format!("not a failure (failed_when): {why}"));
                    }
                    status = judged;
                }
                Ok(Judged::Pending(why)) => {
                    status = Status::Pending;
                    result.message = Some(why);
                }
                Err(error) => {
                    status = Status::Failed;
                    result.message = Some(error.to_string());
                }
            }
        }
        if status == Status::Failed && task.ignore_errors {
            status = Status::Ignored;
        }
        if matches!(status, Status::Failed | Status::Unreachable) {
            self.host.down = Some(status);
        }
        result.status = status;
        let unknown = match status {
            Status::Pending => Some(Unknown::All),
            _ => own_unknown,
        };
        (
            result_value(task, status, result.message.as_deref(), output),
            unknown,
        )
    }

    /// Applies `changed_when` then `failed_when`, as Ansible does, with the task's
    /// result (as it stands) registered for them to read.
    fn judge(
        &mut self,
        task: &Task,
        item: Option<&LoopItem>,
        status: Status,
        result: &TaskOutcome,
        own_unknown: Option<Unknown>,
        output: Option<&Output>,
    ) -> Result<Judged, TaskError> {
        let value = result_value(task, status, result.message.as_deref(), output);
        let (mut vars, unknown) = self.own_result_scope(task, item, value, own_unknown)?;
        let title = task.title();
        // A failed task that made changes (a command that ran) changed the host.
        let mut changed =
            status == Status::Changed || (status == Status::Failed && !result.changes.is_empty());
        let mut failed = status == Status::Failed;
        for (key, conditions, verdict) in [
            ("changed_when", &task.changed_when, &mut changed),
            ("failed_when", &task.failed_when, &mut failed),
        ] {
            if conditions.is_empty() {
                continue;
            }
            let texts = conditions.iter().map(|c| (c.as_str(), true));
            if let Some(reference) = unknown_read(&self.renderer, &unknown, texts) {
                return Ok(Judged::Pending(pending_message(
                    &format!("its `{key}`"),
                    &reference,
                )));
            }
            let origin = format!("the `{key}` of task `{title}`");
            *verdict = all_hold(&self.renderer, conditions, &vars, &origin)?;
            if let Some(Value::Object(map)) = task.register.as_ref().and_then(|n| vars.get_mut(n)) {
                map.insert(key.trim_end_matches("_when").to_owned(), (*verdict).into());
            }
        }
        Ok(Judged::Status(if failed {
            Status::Failed
        } else if changed {
            Status::Changed
        } else {
            Status::Ok
        }))
    }

    /// The variables a condition on a task's own result (`changed_when`, `until`) sees:
    /// the task's, with `value` registered under its `register` name, and what check
    /// mode does not know of them.
    pub(super) fn own_result_scope(
        &mut self,
        task: &Task,
        item: Option<&LoopItem>,
        value: Value,
        own_unknown: Option<Unknown>,
    ) -> Result<(Vars, BTreeMap<String, Unknown>), TaskError> {
        let vars = self.vars()?;
        let mut vars = self.scoped(task, &vars)?.into_owned();
        if let Some(item) = item {
            vars = item_vars(task, &vars, &item.value);
        }
        let mut unknown = self.host.unknown.clone();
        if let Some(name) = &task.register {
            vars.insert(name.clone(), value);
            match own_unknown {
                Some(kind) => unknown.insert(name.clone(), kind),
                None => unknown.remove(name),
            };
        }
        Ok((vars, unknown))
    }

    /// Keeps `value` as the host's variable `name` from now on, in this play and the
    /// next; a task rendered with the name's earlier value (or without it) is rendered
    /// again before it runs, and reads its facts then if they are not known.
    pub(super) fn register(&mut self, name: &str, value: Value, unknown: Option<Unknown>) {
        match unknown {
            Some(kind) => self.host.unknown.insert(name.to_owned(), kind),
            None => self.host.unknown.remove(name),
        };
        // The variables as the play's tasks were rendered with them, before this value.
        let before = self.vars();
        self.host.registered.insert(name.to_owned(), value.clone());
        // `-e` values win over registered ones, as over every other variable.
        let Ok(before) = before else {
            return;
        };
        if self.options.extra_vars.contains_key(name) {
            return;
        }
        let mut now = before.clone();
        now.insert(name.to_owned(), value);
        self.forget_changed(&before, &now);
        self.vars = Some(now);
    }
}

/// What `changed_when` and `failed_when` made of a task.
enum Judged {
    Status(Status),
    /// They read output check mode cannot know.
    Pending(String),
}
