//! `run_once` shared with the batch, as Ansible shares it: a play whose top-level tasks
//! include `run_once` ones runs on its batch in phases. The tasks before such a task run
//! on every host in parallel, as any play's do; the `run_once` task runs on the first
//! host still going; the others report it `skipped` (`run_once: ran on web1`) and get
//! its registered result, if it registers one; then the next phase. A host keeps its
//! one run of the play (its reads, renderings and notified handlers) through the
//! phases. A `run_once` task inside a block runs on the batch's first host only, and
//! shares nothing (see `PlayRun::not_once`).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rayon::prelude::*;

use super::flow::Flow;
use super::outcome::outcome;
use super::play_run::PlayRun;
use super::{HostPlay, HostRun, Options, Status, TaskOutcome};
use crate::playbook::{Node, Play};
use crate::progress::Progress;

/// Whether `node` is a top-level task with `run_once`.
fn once(play: &Play, node: &Node) -> bool {
    matches!(node, Node::Task(index) if play.tasks[*index].run_once)
}

/// Whether the play has a top-level `run_once` task, whose result the batch shares.
pub(super) fn shares_once(play: &Play) -> bool {
    play.body.iter().any(|node| once(play, node))
}

/// One host's run of the play through the phases.
struct Lane<'a> {
    run: PlayRun<'a>,
    outcomes: Vec<TaskOutcome>,
    flow: Flow,
}

/// Runs `play` on `batch` in phases around its top-level `run_once` tasks.
pub(super) fn run_in_phases<'a>(
    play: &'a Play,
    batch: &'a mut [&mut HostRun],
    options: &'a Options,
    progress: &'a Progress,
    abort: Option<&'a AtomicBool>,
    pool: &rayon::ThreadPool,
) -> Vec<HostPlay> {
    let names: Vec<String> = batch.iter().map(|host| host.name.clone()).collect();
    let first_name = names.first().cloned();
    let mut lanes: Vec<Lane<'a>> = batch
        .iter_mut()
        .map(|host| {
            let mut run = PlayRun::new(play, host, options, progress);
            run.abort = abort;
            run.first_host.clone_from(&first_name);
            Lane {
                run,
                outcomes: Vec::new(),
                flow: Flow::Go,
            }
        })
        .collect();
    pool.install(|| {
        lanes.par_iter_mut().for_each(|lane| {
            if !lane.run.start(&mut lane.outcomes) {
                // As a host's play ends when it cannot start: no handlers.
                lane.flow = Flow::Stop;
            }
        });
    });
    let mut rest: &'a [Node] = &play.body;
    while !rest.is_empty() {
        let cut = rest
            .iter()
            .position(|node| once(play, node))
            .unwrap_or(rest.len());
        let (nodes, after) = rest.split_at(cut);
        if !nodes.is_empty() {
            pool.install(|| {
                lanes
                    .par_iter_mut()
                    .filter(|lane| lane.flow == Flow::Go)
                    .for_each(|lane| lane.flow = lane.run.run_nodes(nodes, &mut lane.outcomes));
            });
        }
        let Some((node, after)) = after.split_first() else {
            break;
        };
        rest = after;
        let Node::Task(index) = node else { continue };
        let task = &play.tasks[*index];
        // Which host runs it depends on which hosts failed so far: what each host has
        // planned goes to it first.
        pool.install(|| {
            lanes
                .par_iter_mut()
                .filter(|lane| lane.flow == Flow::Go)
                .for_each(|lane| lane.flow = lane.run.send_now(&mut lane.outcomes));
        });
        let Some(first) = lanes.iter().position(|lane| lane.flow == Flow::Go) else {
            break;
        };
        let lane = &mut lanes[first];
        lane.run.first_host = Some(lane.run.host.name.clone());
        lane.flow = lane
            .run
            .run_nodes(std::slice::from_ref(node), &mut lane.outcomes);
        let ran_on = lane.run.host.name.clone();
        let shared = task.register.as_ref().and_then(|name| {
            let value = lane.run.host.registered.get(name)?.clone();
            Some((name, value, lane.run.host.unknown.get(name).copied()))
        });
        if !task.selected(&options.tags) {
            continue;
        }
        for (position, lane) in lanes.iter_mut().enumerate() {
            if position == first || lane.flow != Flow::Go {
                continue;
            }
            lane.outcomes.push(
                outcome(*index, false, task, Status::Skipped, Instant::now())
                    .with_message(format!("run_once: ran on {ran_on}")),
            );
            if let Some((name, value, unknown)) = &shared {
                lane.run.register(name, value.clone(), *unknown);
            }
        }
    }
    pool.install(|| {
        lanes.par_iter_mut().for_each(|lane| {
            lane.run.finish(lane.flow, &mut lane.outcomes);
            progress.host_done();
        });
    });
    lanes
        .into_iter()
        .zip(names)
        .map(|(lane, host)| HostPlay {
            host,
            tasks: lane.outcomes,
        })
        .collect()
}
