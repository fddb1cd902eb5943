//! What happened: each task's outcome on each host, a play's outcome, and the counts
//! per host; with what a `no_log` task hides from them.

use std::collections::BTreeSet;
use std::time::Instant;

use converge_modules::Change;
use serde::Serialize;

use crate::playbook::Task;
use crate::rollout::Rollout;

/// What happened to one task on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
    /// Failed, under `ignore_errors`: the host went on. Counted as `ok` and `ignored`,
    /// not as a failure (as Ansible counts).
    Ignored,
    /// Failed inside a `block` whose `rescue` then ran: counted as `rescued`, not as a
    /// failure (as Ansible counts).
    Rescued,
    /// Check mode only: the task needs what an earlier planned change would provide,
    /// and what that change brings cannot be predicted (a package's units and users):
    /// not a failure, and counted as drift.
    Pending,
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
    /// A looped task's item (its `loop_control.label`, or the item itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
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
    /// The number of its entry in the host's batch of changes, when its changes were
    /// sent with others (see `batch`).
    #[serde(skip)]
    pub staged: Option<usize>,
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
    /// Tasks pending on an earlier planned change (check mode).
    pub pending: usize,
    /// Failed tasks whose failure `ignore_errors` let pass (also counted in `ok`).
    pub ignored: usize,
    /// Failed tasks a block's `rescue` took over.
    pub rescued: usize,
    /// Remote commands run on the host.
    pub commands: usize,
}

/// Hides everything a `no_log` task could reveal: what it changed, file contents,
/// warnings, notes and error details. Status and counts stay.
pub(super) fn redact(result: &mut TaskOutcome) {
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

pub(super) fn outcome(
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
        item: None,
        module: task.module.kind(),
        status,
        changes: Vec::new(),
        diffs: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
        message: None,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        staged: None,
    }
}

/// Lists `change` in `result`, with its diff if it writes a file, unless a `no_log`
/// task manages that file (`secret_paths`): then a note says the diff is hidden.
pub(super) fn record(result: &mut TaskOutcome, change: &Change, secret_paths: &BTreeSet<String>) {
    result.changes.push(change.describe());
    if let Some(content) = change.file_contents() {
        if secret_paths.contains(content.path) {
            result.notes.push(format!(
                "diff of {} hidden: a no_log task manages this file",
                content.path
            ));
            return;
        }
        if looks_binary(content.after) || content.before.is_some_and(looks_binary) {
            // A line diff of bytes that are not text would be noise.
            result
                .notes
                .push(format!("binary files differ: {}", content.path));
            return;
        }
        // Text with a few bytes that are not UTF-8 (a Latin-1 comment in a config
        // file) still gets its diff; those bytes show as U+FFFD there, and only there.
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        result.diffs.push(FileDiff {
            path: content.path.to_owned(),
            before: content.before.map(text),
            after: text(content.after),
        });
    }
}

/// Whether a file's bytes are binary rather than text: a NUL byte among the first
/// 8000, as git decides.
fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8000).any(|&byte| byte == 0)
}

impl TaskOutcome {
    pub(super) fn with_message(mut self, message: String) -> Self {
        self.message = Some(message);
        self
    }
}

#[cfg(test)]
mod tests {
    use converge_modules::change::FileWrite;
    use converge_modules::paths::PathChange;

    use super::*;

    fn recorded(before: Option<&[u8]>, after: &[u8]) -> TaskOutcome {
        let task = crate::playbook::Playbook::parse(
            "- hosts: all\n  tasks:\n    - file: { path: /etc/a, content: x }\n",
            std::path::Path::new("site.yml"),
        )
        .unwrap()
        .plays
        .remove(0)
        .tasks
        .remove(0);
        let mut result = outcome(0, false, &task, Status::Changed, Instant::now());
        let change = Change::Paths(PathChange::WriteFile(FileWrite {
            path: "/etc/a".to_owned(),
            content: after.to_vec(),
            before: before.map(<[u8]>::to_vec),
            owner: None,
            group: None,
            mode: 0o644,
            validator: None,
            secret: false,
        }));
        record(&mut result, &change, &BTreeSet::new());
        result
    }

    #[test]
    fn text_with_bytes_that_are_not_utf8_keeps_its_diff() {
        let result = recorded(Some(b"# caf\xe9\nPort 22\n"), b"# caf\xe9\nPort 2222\n");
        assert_eq!(result.diffs.len(), 1, "{result:?}");
        assert_eq!(
            result.diffs[0].before.as_deref(),
            Some("# caf\u{fffd}\nPort 22\n")
        );
        assert_eq!(result.diffs[0].after, "# caf\u{fffd}\nPort 2222\n");
        assert!(result.notes.is_empty());
    }

    #[test]
    fn binary_content_on_either_side_is_a_note() {
        for (before, after) in [
            (Some(&b"\x7fELF\x00"[..]), &b"text\n"[..]),
            (Some(&b"text\n"[..]), &b"\x7fELF\x00"[..]),
            (None, &b"\x00\x01"[..]),
        ] {
            let result = recorded(before, after);
            assert!(result.diffs.is_empty(), "{result:?}");
            assert_eq!(result.notes, ["binary files differ: /etc/a"]);
        }
    }
}
