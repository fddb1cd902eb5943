//! `--list-hosts` and `--list-tasks`: what each play would run on and run, without
//! contacting any host, as text or (with `--format json`) as one JSON document. Both
//! are made from one [`Listing`], so they always list the same things.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::HostRun;
use crate::playbook::{IncludeMark, Play, Playbook, TagFilter, Task};

/// The listing document.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub playbook: String,
    pub plays: Vec<PlayListing>,
}

/// One play: its host pattern and, as asked, its hosts, tasks and handlers.
#[derive(Debug, Serialize)]
pub struct PlayListing {
    /// 1-based, as the human listing numbers plays.
    pub play: usize,
    pub name: String,
    pub pattern: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// The tasks `--tags` and `--skip-tags` select.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskListing>>,
    /// Every handler: tags do not filter handlers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handlers: Option<Vec<TaskListing>>,
}

/// One task or handler, or an `include_tasks`/`include_role` (listed before the tasks
/// it brings in, with its own `when` and `loop`).
#[derive(Debug, Serialize)]
pub struct TaskListing {
    pub name: String,
    pub module: &'static str,
    pub tags: Vec<String>,
    /// The role the task comes from; shown as `ROLE : NAME`, as Ansible lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// An include's `when`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// An include's `loop`, as written (a template, or the list as JSON).
    #[serde(rename = "loop", skip_serializing_if = "Option::is_none")]
    pub loop_over: Option<String>,
}

impl TaskListing {
    fn of(task: &Task) -> Self {
        TaskListing {
            name: task.title(),
            module: task.module.kind(),
            tags: task.tags.clone(),
            // The hook for roles: a task that knows its role names it here.
            role: None,
            when: None,
            loop_over: None,
        }
    }

    fn include(include: &IncludeMark) -> Self {
        TaskListing {
            name: include.title.clone(),
            module: include.kind,
            tags: include.tags.clone(),
            role: None,
            when: include.when.clone(),
            loop_over: include.loop_over.clone(),
        }
    }
}

/// The tasks of `play` that `tags` select, each include before the tasks it brings in
/// (listed when it brings in a selected task, or, bringing none, its tags are selected).
fn selected_tasks(play: &Play, tags: &TagFilter) -> Vec<TaskListing> {
    let shown = |include: &IncludeMark| {
        if include.tasks.is_empty() {
            tags.selects(&include.tags)
        } else {
            play.tasks[include.tasks.clone()]
                .iter()
                .any(|task| task.selected(tags))
        }
    };
    let mut listed = Vec::new();
    let mut includes = play.includes.iter().peekable();
    for index in 0..=play.tasks.len() {
        while let Some(include) = includes.next_if(|include| include.tasks.start <= index) {
            if shown(include) {
                listed.push(TaskListing::include(include));
            }
        }
        if let Some(task) = play.tasks.get(index).filter(|task| task.selected(tags)) {
            listed.push(TaskListing::of(task));
        }
    }
    listed
}

/// What is listed.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    pub hosts: bool,
    pub tasks: bool,
}

/// The listing of `plays` (play index, member indices into `hosts`).
pub fn listing(
    playbook: &Playbook,
    plays: &[(usize, Vec<usize>)],
    hosts: &[HostRun],
    asked: Asked,
    tags: &TagFilter,
) -> Listing {
    Listing {
        playbook: playbook.path.display().to_string(),
        plays: plays
            .iter()
            .map(|(index, members)| {
                let play = &playbook.plays[*index];
                PlayListing {
                    play: index + 1,
                    name: play.title(),
                    pattern: play.hosts.clone(),
                    hosts: asked
                        .hosts
                        .then(|| members.iter().map(|&m| hosts[m].name.clone()).collect()),
                    tasks: asked.tasks.then(|| selected_tasks(play, tags)),
                    handlers: asked
                        .tasks
                        .then(|| play.handlers.iter().map(TaskListing::of).collect()),
                }
            })
            .collect(),
    }
}

/// The listing as one JSON document.
pub fn json(listing: &Listing) -> String {
    serde_json::to_string_pretty(listing).expect("the listing serializes")
}

/// The listing as text, one play after the other.
pub fn human(listing: &Listing) -> String {
    let mut out = String::new();
    for play in &listing.plays {
        let _ = writeln!(out, "play #{} ({}): {}", play.play, play.pattern, play.name);
        if let Some(hosts) = &play.hosts {
            let _ = writeln!(out, "  hosts ({}):", hosts.len());
            for host in hosts {
                let _ = writeln!(out, "    {host}");
            }
        }
        for (title, tasks) in [("tasks", &play.tasks), ("handlers", &play.handlers)] {
            let Some(tasks) = tasks else { continue };
            if title == "handlers" && tasks.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {title}:");
            for task in tasks {
                let role = task
                    .role
                    .as_ref()
                    .map_or_else(String::new, |role| format!("{role} : "));
                let mut line = format!("    {role}{}", task.name);
                if let Some(when) = &task.when {
                    let _ = write!(line, "  when: {when}");
                }
                if let Some(over) = &task.loop_over {
                    let _ = write!(line, "  loop: {over}");
                }
                if !task.tags.is_empty() {
                    let _ = write!(line, "  tags: [{}]", task.tags.join(", "));
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}
