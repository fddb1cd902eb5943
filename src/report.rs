//! What converge prints: Ansible-like human output, or one JSON document.
//!
//! Human output groups results by play and task, hosts in inventory order, with a recap
//! line per host. Colour is used only on a terminal and never when `NO_COLOR` is set.
//! The JSON document carries every host, task, status, change, diff and timing, and is
//! written to a report file atomically (temporary file, then rename).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;

use serde::Serialize;
use similar::TextDiff;

use crate::engine::{HostStats, PlayOutcome, Status, TaskOutcome};

/// Version of the JSON report layout; bumped when a field changes meaning or goes away.
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// The whole run, as printed and reported.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub format_version: u32,
    pub converge_version: &'static str,
    pub playbook: String,
    pub check: bool,
    pub duration_ms: u64,
    pub exit_code: u8,
    pub plays: Vec<PlayOutcome>,
    pub hosts: Vec<HostStats>,
    pub summary: Summary,
}

/// Totals over all hosts.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub hosts: usize,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub unreachable: usize,
    pub skipped: usize,
}

impl Summary {
    /// Adds up per-host counts.
    pub fn of(hosts: &[HostStats]) -> Self {
        let mut summary = Summary {
            hosts: hosts.len(),
            ..Summary::default()
        };
        for host in hosts {
            summary.ok += host.ok;
            summary.changed += host.changed;
            summary.failed += host.failed;
            summary.unreachable += host.unreachable;
            summary.skipped += host.skipped;
        }
        summary
    }
}

/// ANSI styling, or none.
#[derive(Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset.
    pub fn detect() -> Self {
        Style {
            enabled: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn status(self, status: Status) -> String {
        let (code, word) = match status {
            Status::Ok => ("32", "ok"),
            Status::Changed => ("33", "changed"),
            Status::Failed => ("31", "failed"),
            Status::Skipped => ("36", "skipped"),
            Status::Unreachable => ("31", "unreachable"),
        };
        self.paint(code, word)
    }
}

fn banner(out: &mut String, title: &str) {
    let stars = 72usize.saturating_sub(title.len() + 1).max(3);
    let _ = writeln!(out, "\n{title} {}", "*".repeat(stars));
}

/// Renders one play's results for people.
pub fn human_play(play: &PlayOutcome, check: bool, diff: bool, style: Style) -> String {
    let mut out = String::new();
    let suffix = if check {
        " (check mode: nothing is changed)"
    } else {
        ""
    };
    banner(&mut out, &format!("PLAY [{}]{suffix}", play.play));
    for (handler, titles) in [(false, &play.task_titles), (true, &play.handler_titles)] {
        for (index, title) in titles.iter().enumerate() {
            let rows: Vec<(&str, &TaskOutcome)> = play
                .hosts
                .iter()
                .flat_map(|host| {
                    host.tasks
                        .iter()
                        .filter(|task| task.handler == handler && task.index == index)
                        .map(move |task| (host.host.as_str(), task))
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
            banner(&mut out, &format!("{kind} [{title}]"));
            for (host, task) in rows {
                human_task(&mut out, host, task, check, diff, style);
            }
        }
    }
    out
}

fn human_task(
    out: &mut String,
    host: &str,
    task: &TaskOutcome,
    check: bool,
    diff: bool,
    style: Style,
) {
    let _ = write!(out, "{}: [{host}]", style.status(task.status));
    if let Some(message) = &task.message {
        let _ = write!(out, " {message}");
    }
    out.push('\n');
    let verb = if check { "would " } else { "" };
    for change in &task.changes {
        let _ = writeln!(out, "    {verb}{change}");
    }
    for note in &task.notes {
        let _ = writeln!(out, "    {note}");
    }
    for warning in &task.warnings {
        let _ = writeln!(out, "    {}: {warning}", style.paint("35", "warning"));
    }
    if diff {
        for file in &task.diffs {
            let before = file.before.as_deref().unwrap_or("");
            let old_name = if file.before.is_some() {
                file.path.clone()
            } else {
                "/dev/null".to_owned()
            };
            let text = TextDiff::from_lines(before, file.after.as_str())
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("{old_name} (before)"),
                    &format!("{} (after)", file.path),
                )
                .to_string();
            for line in text.lines() {
                let painted = if line.starts_with('+') && !line.starts_with("+++") {
                    style.paint("32", line)
                } else if line.starts_with('-') && !line.starts_with("---") {
                    style.paint("31", line)
                } else {
                    line.to_owned()
                };
                let _ = writeln!(out, "    {painted}");
            }
        }
    }
}

/// The recap: one line per host.
pub fn human_recap(hosts: &[HostStats], style: Style) -> String {
    let mut out = String::new();
    banner(&mut out, "PLAY RECAP");
    let width = hosts.iter().map(|host| host.host.len()).max().unwrap_or(0);
    for host in hosts {
        let counts = format!(
            "ok={}  changed={}  unreachable={}  failed={}  skipped={}",
            host.ok, host.changed, host.unreachable, host.failed, host.skipped
        );
        let code = if host.failed + host.unreachable > 0 {
            "31"
        } else if host.changed > 0 {
            "33"
        } else {
            "32"
        };
        let _ = writeln!(
            out,
            "{} : {counts}",
            style.paint(code, &format!("{:width$}", host.host))
        );
    }
    out
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a rename.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&temporary, text).and_then(|()| std::fs::rename(&temporary, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FileDiff, HostPlay};

    fn task(status: Status, changes: &[&str]) -> TaskOutcome {
        TaskOutcome {
            index: 0,
            handler: false,
            task: "sidekiq unit".into(),
            module: "systemd_unit",
            status,
            changes: changes.iter().map(|c| (*c).to_owned()).collect(),
            diffs: vec![FileDiff {
                path: "/etc/x".into(),
                before: Some("a\n".into()),
                after: "b\n".into(),
            }],
            warnings: vec![],
            notes: vec![],
            message: None,
            duration_ms: 1,
        }
    }

    #[test]
    fn play_output_lists_hosts_in_order_with_changes_and_diffs() {
        let play = PlayOutcome {
            play: "sidekiq".into(),
            task_titles: vec!["sidekiq unit".into()],
            handler_titles: vec![],
            hosts: vec![
                HostPlay {
                    host: "app1".into(),
                    tasks: vec![task(Status::Changed, &["update /etc/x"])],
                },
                HostPlay {
                    host: "app2".into(),
                    tasks: vec![task(Status::Ok, &[])],
                },
            ],
        };
        let text = human_play(&play, true, true, Style { enabled: false });
        assert!(
            text.contains("PLAY [sidekiq] (check mode: nothing is changed)"),
            "{text}"
        );
        assert!(
            text.contains("changed: [app1]\n    would update /etc/x\n"),
            "{text}"
        );
        assert!(text.contains("    -a\n    +b\n"), "{text}");
        assert!(text.find("[app1]").unwrap() < text.find("ok: [app2]").unwrap());
    }

    #[test]
    fn recap_aligns_hosts() {
        let hosts = vec![
            HostStats {
                host: "app1".into(),
                ok: 5,
                changed: 2,
                ..HostStats::default()
            },
            HostStats {
                host: "db10".into(),
                unreachable: 1,
                ..HostStats::default()
            },
        ];
        let text = human_recap(&hosts, Style { enabled: false });
        assert!(
            text.contains("app1 : ok=5  changed=2  unreachable=0  failed=0  skipped=0\n"),
            "{text}"
        );
        assert!(
            text.contains("db10 : ok=0  changed=0  unreachable=1  failed=0  skipped=0\n"),
            "{text}"
        );
    }
}
