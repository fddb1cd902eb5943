//! A live progress line for long runs on a terminal: how many hosts have finished the
//! play, and the task the furthest host is on.
//!
//! It is an `indicatif` bar on stderr, drawn only when stderr is a terminal; `indicatif`
//! limits how often it is redrawn, so hosts report straight to it without waiting on
//! the terminal. When stderr is not a terminal (CI, timers, pipes) nothing is drawn and
//! the plain per-play output is all there is. While a prompt asks the operator
//! something (see `terminal`), the line is taken off the terminal and not drawn.

use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress line being drawn, if any: what a prompt hides.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn shown() -> MutexGuard<'static, Option<ProgressBar>> {
    SHOWN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes the progress line off the terminal, if one is drawn, until [`show`].
pub fn hide() {
    if let Some(bar) = shown().as_ref() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        // A hidden bar leaves its last line on screen: the prompt is drawn over it.
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K");
        let _ = stderr.flush();
    }
}

/// Draws the progress line again after [`hide`], unless a prompt still asks.
pub fn show() {
    if let Some(bar) = shown().as_ref() {
        if !crate::terminal::claimed() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.tick();
        }
    }
}

/// What hosts report while a play runs.
#[derive(Debug, Default)]
pub struct Progress {
    hosts_done: AtomicUsize,
    /// 1 + the index of the furthest task any host has started (0: none yet).
    furthest_task: AtomicUsize,
    /// Where the progress is drawn, once a [`Display`] started.
    line: OnceLock<Line>,
}

/// A drawn progress line and what its text is made of.
#[derive(Debug)]
struct Line {
    bar: ProgressBar,
    play: String,
    hosts: usize,
    tasks: Vec<String>,
}

impl Progress {
    /// A host finished the play.
    pub fn host_done(&self) {
        self.hosts_done.fetch_add(1, Ordering::Relaxed);
        self.redraw();
    }

    /// A host started the task at `index`.
    pub fn task_started(&self, index: usize) {
        if self.furthest_task.fetch_max(index + 1, Ordering::Relaxed) <= index {
            self.redraw();
        }
    }

    fn redraw(&self) {
        if let Some(drawn) = self.line.get() {
            let done = self.hosts_done.load(Ordering::Relaxed);
            let task = self.furthest_task.load(Ordering::Relaxed);
            drawn
                .bar
                .set_message(line(&drawn.play, done, drawn.hosts, task, &drawn.tasks));
        }
    }
}

/// Draws a play's progress until dropped.
pub struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    /// Starts drawing `progress` for a play of `hosts` hosts and these task titles, if
    /// stderr is a terminal and `enabled`.
    pub fn start(
        progress: &Arc<Progress>,
        play: &str,
        hosts: usize,
        tasks: Vec<String>,
        enabled: bool,
    ) -> Self {
        if !enabled || !std::io::stderr().is_terminal() || hosts == 0 {
            return Display { bar: None };
        }
        // Decided under the lock a prompt's `hide` takes: a prompt that starts now
        // finds this bar and hides it.
        let mut shown = shown();
        let target = if crate::terminal::claimed() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(None, target)
            .with_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
        let drawn = Line {
            bar: bar.clone(),
            play: play.to_owned(),
            hosts,
            tasks,
        };
        if progress.line.set(drawn).is_err() {
            return Display { bar: None };
        }
        *shown = Some(bar.clone());
        drop(shown);
        progress.redraw();
        Display { bar: Some(bar) }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            shown().take();
            bar.finish_and_clear();
        }
    }
}

/// The progress line's text, at most 100 characters.
fn line(play: &str, done: usize, hosts: usize, task: usize, tasks: &[String]) -> String {
    let current = match task.checked_sub(1).and_then(|index| tasks.get(index)) {
        Some(title) => format!("task {task}/{}: {title}", tasks.len()),
        None => "connecting".to_owned(),
    };
    let text = format!("[{play}] {done}/{hosts} hosts done, {current}");
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_names_hosts_done_and_the_furthest_task() {
        let tasks = vec!["deploy user".to_owned(), "sidekiq unit".to_owned()];
        assert_eq!(
            line("sidekiq", 0, 30, 0, &tasks),
            "[sidekiq] 0/30 hosts done, connecting"
        );
        assert_eq!(
            line("sidekiq", 12, 30, 2, &tasks),
            "[sidekiq] 12/30 hosts done, task 2/2: sidekiq unit"
        );
        assert!(line(&"x".repeat(200), 1, 2, 1, &tasks).chars().count() <= 100);
    }

    #[test]
    fn progress_keeps_the_furthest_task() {
        let progress = Progress::default();
        progress.task_started(3);
        progress.task_started(1);
        progress.host_done();
        assert_eq!(progress.furthest_task.load(Ordering::Relaxed), 4);
        assert_eq!(progress.hosts_done.load(Ordering::Relaxed), 1);
    }
}
