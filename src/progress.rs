//! A live progress line for long runs on a terminal: how many hosts have finished the
//! play, and the task the furthest host is on.
//!
//! It is drawn on stderr, only when stderr is a terminal, by one thread that wakes a
//! few times a second; hosts report progress through atomics, so no host ever waits on
//! the display. When stderr is not a terminal (CI, timers, pipes) nothing is drawn and
//! the plain per-play output is all there is.

use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Whether a progress line is being drawn (so a prompt knows to clear it).
static DRAWING: AtomicBool = AtomicBool::new(false);

/// Whether a progress line is on the terminal now.
pub fn drawing() -> bool {
    DRAWING.load(Ordering::SeqCst)
}
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What hosts report while a play runs.
#[derive(Debug, Default)]
pub struct Progress {
    hosts_done: AtomicUsize,
    /// 1 + the index of the furthest task any host has started (0: none yet).
    furthest_task: AtomicUsize,
}

impl Progress {
    /// A host finished the play.
    pub fn host_done(&self) {
        self.hosts_done.fetch_add(1, Ordering::Relaxed);
    }

    /// A host started the task at `index`.
    pub fn task_started(&self, index: usize) {
        self.furthest_task.fetch_max(index + 1, Ordering::Relaxed);
    }
}

/// Draws a play's progress until dropped.
pub struct Display {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
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
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() || hosts == 0 {
            return Display { stop, thread: None };
        }
        let (progress, flag, play) = (Arc::clone(progress), Arc::clone(&stop), play.to_owned());
        DRAWING.store(true, Ordering::SeqCst);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let done = progress.hosts_done.load(Ordering::Relaxed);
                let task = progress.furthest_task.load(Ordering::Relaxed);
                let line = line(&play, done, hosts, task, &tasks);
                let mut stderr = std::io::stderr().lock();
                // Checked under the lock: see `terminal`.
                if !crate::terminal::claimed() {
                    let _ = write!(stderr, "\r\x1b[2K{line}");
                    let _ = stderr.flush();
                }
                drop(stderr);
                std::thread::sleep(Duration::from_millis(150));
            }
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            DRAWING.store(false, Ordering::SeqCst);
        });
        Display {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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
