//! `--list-hosts` and `--list-tasks` with `--format json`: what each play would run on
//! and run, as one JSON document, without contacting any host.

use serde::Serialize;

use crate::engine::HostRun;
use crate::playbook::Playbook;

/// The listing document.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub playbook: String,
    pub plays: Vec<PlayListing>,
}

/// One play: its host pattern and, as asked, its hosts and tasks.
#[derive(Debug, Serialize)]
pub struct PlayListing {
    /// 1-based, as the human listing numbers plays.
    pub play: usize,
    pub name: String,
    pub pattern: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskListing>>,
}

/// A task selected by `--tags`.
#[derive(Debug, Serialize)]
pub struct TaskListing {
    pub name: String,
    pub module: &'static str,
    pub tags: Vec<String>,
}

/// The listing of `plays` (play index, member indices into `hosts`).
pub fn json(
    playbook: &Playbook,
    plays: &[(usize, Vec<usize>)],
    hosts: &[HostRun],
    list_hosts: bool,
    list_tasks: bool,
    tags: &[String],
) -> String {
    let listing = Listing {
        playbook: playbook.path.display().to_string(),
        plays: plays
            .iter()
            .map(|(index, members)| {
                let play = &playbook.plays[*index];
                PlayListing {
                    play: index + 1,
                    name: play.title(),
                    pattern: play.hosts.clone(),
                    hosts: list_hosts
                        .then(|| members.iter().map(|&m| hosts[m].name.clone()).collect()),
                    tasks: list_tasks.then(|| {
                        play.tasks
                            .iter()
                            .filter(|task| task.selected(tags))
                            .map(|task| TaskListing {
                                name: task.title(),
                                module: task.module.kind(),
                                tags: task.tags.clone(),
                            })
                            .collect()
                    }),
                }
            })
            .collect(),
    };
    serde_json::to_string_pretty(&listing).expect("the listing serializes")
}
