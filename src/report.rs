//! What converge prints: Ansible-like human output, or one JSON document.
//!
//! Human output groups results by play and task, hosts in inventory order, with a recap
//! line per host. Colour is used only on a terminal and never when `NO_COLOR` is set.
//! Text that can come from a host (messages, diffs, notes, warnings) goes through
//! [`escape_control`] on its way to the terminal, so a host cannot move the cursor, clear
//! the screen or retitle the window; the JSON document keeps every byte as it was.
//! The JSON document carries every host, task, status, change, diff and timing, and is
//! written to a report file atomically (temporary file, then rename): mode 0600 unless
//! the operator asks for another, through a temporary file created exclusively that no
//! planted symlink can redirect.

use std::borrow::Cow;
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
    pub pending: usize,
    /// Failures `ignore_errors` let pass (also counted in `ok`).
    pub ignored: usize,
    /// Failures a block's `rescue` took over.
    pub rescued: usize,
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
            summary.pending += host.pending;
            summary.ignored += host.ignored;
            summary.rescued += host.rescued;
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
            Status::Pending => ("35", "pending"),
            Status::Ignored => ("36", "failed (ignored)"),
            Status::Rescued => ("36", "failed (rescued)"),
        };
        self.paint(code, word)
    }
}

/// `text` with every control character but newline and tab written as an escape
/// (`\x1b`, `\r`, `\u{9b}`): C0 controls, DEL and the C1 controls U+0080 to U+009F.
/// Printable text, in any script, stays as it is. The one function human output uses
/// for text a host may have written.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    let unsafe_char = |ch: char| ch != '\n' && ch != '\t' && ch.is_control();
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        match ch {
            '\r' => escaped.push_str("\\r"),
            ch if unsafe_char(ch) && u32::from(ch) < 0x80 => {
                let _ = write!(escaped, "\\x{:02x}", u32::from(ch));
            }
            ch if unsafe_char(ch) => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(ch));
            }
            ch => escaped.push(ch),
        }
    }
    Cow::Owned(escaped)
}

fn banner(out: &mut String, title: &str) {
    let title = escape_control(title);
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
    if let Some(item) = &task.item {
        let _ = write!(out, " (item={})", escape_control(item));
    }
    if let Some(message) = &task.message {
        let _ = write!(out, " {}", escape_control(message));
    }
    out.push('\n');
    let verb = if check { "would " } else { "" };
    for change in &task.changes {
        let _ = writeln!(out, "    {verb}{}", escape_control(change));
    }
    for note in &task.notes {
        let _ = writeln!(out, "    {}", escape_control(note));
    }
    for warning in &task.warnings {
        let _ = writeln!(
            out,
            "    {}: {}",
            style.paint("35", "warning"),
            escape_control(warning)
        );
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
                let line = &*escape_control(line);
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
        let mut counts = format!(
            "ok={}  changed={}  unreachable={}  failed={}  skipped={}",
            host.ok, host.changed, host.unreachable, host.failed, host.skipped
        );
        // Only check mode has pending tasks: other recaps keep their shape.
        if host.pending > 0 {
            let _ = write!(counts, "  pending={}", host.pending);
        }
        // Likewise, only runs with an ignored failure count them.
        if host.rescued > 0 {
            let _ = write!(counts, "  rescued={}", host.rescued);
        }
        if host.ignored > 0 {
            let _ = write!(counts, "  ignored={}", host.ignored);
        }
        let code = if host.failed + host.unreachable > 0 {
            "31"
        } else if host.changed + host.pending > 0 {
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

/// The mode of a report file unless the operator asks for another: it holds file
/// contents and error messages from hosts.
pub const REPORT_MODE: u32 = 0o600;

/// Writes `text` to `path` atomically with permissions `mode`: a temporary file beside
/// it, created exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`, so neither a file nor a
/// symlink already at its name is ever opened), given its mode through the open file,
/// then renamed over `path` (which replaces a symlink at `path`, never follows it).
pub fn write_atomically(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    write_with_seed(path, text, mode, seed)
}

/// The temporary name of the `attempt`th try at writing `file_name`.
fn temporary_name(file_name: &str, seed: u32, attempt: u32) -> String {
    format!(
        ".{file_name}.{}.{seed:08x}.{attempt}.tmp",
        std::process::id()
    )
}

fn write_with_seed(path: &Path, text: &str, mode: u32, seed: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nofollow =
        i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).expect("O_NOFOLLOW fits an int");
    let mut attempt = 0u32;
    let (temporary, mut file) = loop {
        let temporary = dir.join(temporary_name(&file_name, seed, attempt));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nofollow)
            .open(&temporary)
        {
            Ok(file) => break (temporary, file),
            // Something (perhaps planted) has the name: try another, never open it.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    };
    let result = file
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
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
            item: None,
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
            staged: None,
        }
    }

    #[test]
    fn play_output_lists_hosts_in_order_with_changes_and_diffs() {
        let play = PlayOutcome {
            play: "sidekiq".into(),
            task_titles: vec!["sidekiq unit".into()],
            handler_titles: vec![],
            rollout: None,
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

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn report_is_written_0600_or_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_atomically(&path, "{}\n", REPORT_MODE).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        write_atomically(&path, "{\"a\": 1}\n", 0o640).unwrap();
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\": 1}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn planted_symlinks_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("report.json");
        // A link at the target is replaced, not written through.
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        // Links at the first temporary names this write will try: one to the victim,
        // one dangling (which an open without O_EXCL would create).
        let dangling = dir.path().join("created-through-a-link");
        std::os::unix::fs::symlink(
            &victim,
            dir.path().join(temporary_name("report.json", 7, 0)),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            &dangling,
            dir.path().join(temporary_name("report.json", 7, 1)),
        )
        .unwrap();
        write_with_seed(&path, "{}\n", REPORT_MODE, 7).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!dangling.exists());
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn control_characters_are_escaped_and_printable_text_kept() {
        assert_eq!(
            escape_control("a\x1b[2J\x1b]0;pwned\x07b\rc\x00\x7f\u{9b}31m"),
            "a\\x1b[2J\\x1b]0;pwned\\x07b\\rc\\x00\\x7f\\u{9b}31m"
        );
        let kept = "line one\n\tindented: Grüße, 日本語, emoji 🦀, a\\x1b literal\n";
        assert!(matches!(escape_control(kept), Cow::Borrowed(_)));
        assert_eq!(escape_control(kept), kept);
    }

    #[test]
    fn host_bytes_reach_the_terminal_escaped_and_the_report_exact() {
        let mut hostile = task(Status::Failed, &["update /etc/x"]);
        hostile.message = Some("sudo says:\n\x1b]0;owned\x07 (root) ALL\r".into());
        hostile.diffs[0].before = Some("a\x1b[31m\n".into());
        hostile.notes = vec!["note \x1b[H".into()];
        hostile.warnings = vec!["warn \u{9b}2J".into()];
        let play = PlayOutcome {
            play: "p".into(),
            task_titles: vec!["sidekiq unit".into()],
            handler_titles: vec![],
            rollout: None,
            hosts: vec![HostPlay {
                host: "app1".into(),
                tasks: vec![hostile],
            }],
        };
        let text = human_play(&play, false, true, Style { enabled: false });
        assert!(!text.contains(['\x1b', '\x07', '\r', '\u{9b}']), "{text:?}");
        assert!(
            text.contains("failed: [app1] sudo says:\n\\x1b]0;owned\\x07 (root) ALL\\r\n"),
            "{text}"
        );
        assert!(text.contains("    -a\\x1b[31m\n"), "{text}");
        assert!(text.contains("    note \\x1b[H\n"), "{text}");
        assert!(text.contains("warning: warn \\u{9b}2J\n"), "{text}");
        let json = serde_json::to_string(&play).unwrap();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back["hosts"][0]["tasks"][0]["message"],
            "sudo says:\n\x1b]0;owned\x07 (root) ALL\r"
        );
        assert_eq!(
            back["hosts"][0]["tasks"][0]["diffs"][0]["before"],
            "a\x1b[31m\n"
        );
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

    #[test]
    fn each_item_of_a_looped_task_has_its_own_line() {
        let mut first = task(Status::Changed, &["create user deploy"]);
        first.item = Some("deploy".into());
        let mut second = task(Status::Ok, &[]);
        second.item = Some("app".into());
        let play = PlayOutcome {
            play: "users".into(),
            task_titles: vec!["sidekiq unit".into()],
            handler_titles: vec![],
            hosts: vec![HostPlay {
                host: "web1".into(),
                tasks: vec![first, second],
            }],
            rollout: None,
        };
        let text = human_play(&play, false, false, Style { enabled: false });
        assert!(
            text.contains(
                "changed: [web1] (item=deploy)\n    create user deploy\nok: [web1] (item=app)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn recap_counts_ignored_failures_only_when_there_are_some() {
        let hosts = vec![HostStats {
            host: "app1".into(),
            ok: 2,
            ignored: 1,
            ..HostStats::default()
        }];
        let text = human_recap(&hosts, Style { enabled: false });
        assert!(
            text.contains(
                "app1 : ok=2  changed=0  unreachable=0  failed=0  skipped=0  ignored=1
"
            ),
            "{text}"
        );
    }

    #[test]
    fn recap_counts_pending_tasks_only_when_there_are_some() {
        let hosts = vec![HostStats {
            host: "app1".into(),
            ok: 1,
            changed: 1,
            pending: 2,
            ..HostStats::default()
        }];
        let text = human_recap(&hosts, Style { enabled: false });
        assert!(
            text.contains(
                "app1 : ok=1  changed=1  unreachable=0  failed=0  skipped=0  pending=2\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_pending_task_shows_what_it_waits_on() {
        let mut pending = task(Status::Pending, &[]);
        pending.message = Some("depends on package redis-server, not yet installed: unit redis-server.service does not exist yet".into());
        let play = PlayOutcome {
            play: "p".into(),
            task_titles: vec!["t".into()],
            handler_titles: vec![],
            hosts: vec![HostPlay {
                host: "app1".into(),
                tasks: vec![pending],
            }],
            rollout: None,
        };
        let text = human_play(&play, true, false, Style { enabled: false });
        assert!(
            text.contains("pending: [app1] depends on package redis-server, not yet installed: unit redis-server.service does not exist yet\n"),
            "{text}"
        );
    }
}
