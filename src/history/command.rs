//! `converge history` and `converge dashboard`: reading a history store.
//!
//! These words are subcommands only as the first argument, like `completions` and
//! `man`; a playbook file with such a name is run as `converge ./history`.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;

use super::time::{now_ms, parse_since};
use super::view::{history, Filter, History};
use super::{display_location, open_existing, HistoryError};
use crate::cli::Format;

/// Runs, hosts and resources over time, from a history store.
#[derive(Debug, Parser)]
#[command(name = "converge history", max_term_width = 100)]
pub struct HistoryArgs {
    /// The store: a SQLite file or a `postgres://` URL.
    #[arg(long, value_name = "PATH|URL")]
    pub history: String,

    /// Only this host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// Only runs since then: `2026-11-30`, `2026-11-30T08:00:00Z` (UTC), or back from
    /// now: `90m`, `12h`, `7d`, `2w`.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only runs in which something drifted, and hosts that drifted.
    #[arg(long)]
    pub drifted: bool,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// A static HTML dashboard of a history store.
#[derive(Debug, Parser)]
#[command(name = "converge dashboard", max_term_width = 100)]
pub struct DashboardArgs {
    /// The store: a SQLite file or a `postgres://` URL.
    #[arg(long, value_name = "PATH|URL")]
    pub history: String,

    /// The directory to write `index.html` into (created when missing).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,

    /// Only runs since then (as for `converge history`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

/// Why a subcommand stopped.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command line was wrong (exit 3).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// `--since` could not be read (exit 3).
    #[error(
        "--since {0:?}: expected a UTC time (2026-11-30T08:00:00Z), a date (2026-11-30) \
         or a span back from now (90m, 12h, 7d, 2w)"
    )]
    Since(String),
    /// The store could not be read (exit 1).
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The dashboard could not be written (exit 1).
    #[error("cannot write the dashboard to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl CommandError {
    /// Whether the input was wrong, rather than the store or the disk.
    pub fn is_input(&self) -> bool {
        matches!(self, CommandError::Usage(_) | CommandError::Since(_))
    }
}

/// Runs `converge history ...` or `converge dashboard ...` when `words` (the arguments
/// after the program name) ask for one; `None` otherwise.
pub fn dispatch(words: &[String]) -> Option<Result<(), CommandError>> {
    let (first, _) = words.split_first()?;
    let argv = std::iter::once(format!("converge {first}")).chain(words[1..].iter().cloned());
    match first.as_str() {
        "history" => Some(
            HistoryArgs::try_parse_from(argv)
                .map_err(CommandError::from)
                .and_then(|args| run_history(&args)),
        ),
        "dashboard" => Some(
            DashboardArgs::try_parse_from(argv)
                .map_err(CommandError::from)
                .and_then(|args| run_dashboard(&args)),
        ),
        _ => None,
    }
}

fn since(text: Option<&str>) -> Result<Option<i64>, CommandError> {
    text.map(|text| parse_since(text, now_ms()).ok_or_else(|| CommandError::Since(text.to_owned())))
        .transpose()
}

fn run_history(args: &HistoryArgs) -> Result<(), CommandError> {
    let filter = Filter {
        host: args.host.clone(),
        since_ms: since(args.since.as_deref())?,
        drifted: args.drifted,
    };
    let runs = open_existing(&args.history)?.runs(filter.since_ms)?;
    let view = history(&runs, &filter);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&view).expect("the history serializes")
        ),
        Format::Human => print!("{}", human(&view)),
    }
    Ok(())
}

fn run_dashboard(args: &DashboardArgs) -> Result<(), CommandError> {
    let since_ms = since(args.since.as_deref())?;
    let runs = open_existing(&args.history)?.runs(since_ms)?;
    let path = args.output.join("index.html");
    let page = crate::dashboard::render(&runs, &display_location(&args.history), now_ms());
    let write = |source| CommandError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&args.output).map_err(write)?;
    crate::report::write_atomically(&path, &page, 0o644).map_err(write)?;
    println!("dashboard: {} ({} runs)", path.display(), runs.len());
    Ok(())
}

/// Text from hosts, playbooks and files with control characters made visible, so it
/// cannot move the cursor or recolour the operator's terminal.
fn visible(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// `converge history` for people.
fn human(view: &History) -> String {
    let mut out = String::new();
    let since = view.since.as_deref().unwrap_or("the start");
    let _ = writeln!(out, "HISTORY: {} runs since {since}", view.runs.len());
    if !view.runs.is_empty() {
        out.push_str("\nRUNS\n");
    }
    for run in &view.runs {
        let counts = &run.hosts;
        let _ = writeln!(
            out,
            "  #{} {} {} {} exit {} in {:.1} s: {} converged, {} drifted, {} failed, {} unreachable",
            run.id,
            run.started_at,
            run.mode,
            visible(&run.playbook),
            run.exit_code,
            f64::from(u32::try_from(run.duration_ms).unwrap_or(u32::MAX)) / 1000.0,
            counts.converged,
            counts.drifted,
            counts.failed,
            counts.unreachable
        );
        let verb = if run.mode == "check" { "would " } else { "" };
        for drifted in &run.drifted {
            for change in &drifted.changes {
                let _ = writeln!(
                    out,
                    "      {}: {}: {verb}{}",
                    visible(&drifted.host),
                    visible(&drifted.task),
                    visible(change)
                );
            }
        }
        for failure in &run.failed {
            let _ = writeln!(
                out,
                "      {}: {}: {}{}",
                visible(&failure.host),
                visible(&failure.task),
                failure.status,
                failure
                    .message
                    .as_deref()
                    .map(|message| format!(": {}", visible(message)))
                    .unwrap_or_default()
            );
        }
    }
    if !view.drift.is_empty() {
        out.push_str("\nDRIFT\n");
    }
    for drift in &view.drift {
        let times = if drift.times == 1 {
            "once".to_owned()
        } else {
            format!("{} times", drift.times)
        };
        let _ = writeln!(
            out,
            "  {} drifted on {} {times} since {since}, last at {} (run #{})",
            visible(&drift.resource),
            visible(&drift.host),
            drift.last_at,
            drift.last_run
        );
    }
    if !view.hosts.is_empty() {
        out.push_str("\nHOSTS\n");
    }
    let width = view
        .hosts
        .iter()
        .map(|host| visible(&host.host).len())
        .max()
        .unwrap_or(0);
    for host in &view.hosts {
        let _ = writeln!(
            out,
            "  {:width$}  {:11}  last run #{} at {}; drifted in {} of {} runs",
            visible(&host.host),
            host.state.word(),
            host.last_run,
            host.last_run_at,
            host.drifted_runs,
            host.runs
        );
    }
    out
}
