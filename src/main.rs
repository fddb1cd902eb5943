//! converge: agentless, declarative configuration management for systemd hosts.
//!
//! `main` only calls [`run`]; the exit status is decided in one place,
//! [`exit_status`], from what the run recorded.

mod cli;
mod dashboard;
mod engine;
mod generate;
mod glob;
mod history;
mod inventory;
mod listing;
mod lock;
mod metrics;
mod playbook;
mod progress;
mod report;
mod restarts;
mod rollout;
mod ssh_config;
mod template;
mod terminal;
mod transport;
mod yaml;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser as _;

use crate::cli::{Cli, ConnectionArg, Format};
use crate::engine::{HostRun, HostStats, Options};
use crate::inventory::{Inventory, InventoryError, Vars};
use crate::playbook::{Playbook, PlaybookError};
use crate::report::{RunReport, Style, Summary};
use crate::transport::{Connection, TargetSettings};

/// Every host is in the desired state (or, with `--check`, no drift).
const EXIT_CONVERGED: u8 = 0;
/// A task failed or a host was unreachable.
const EXIT_FAILED: u8 = 1;
/// `--check` found drift and nothing failed.
const EXIT_DRIFT: u8 = 2;
/// Invalid input; no host was contacted.
const EXIT_INVALID: u8 = 3;

/// Input that is wrong before any host is contacted.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Task(#[from] engine::InputError),
    #[error(transparent)]
    SshConfig(#[from] ssh_config::SshConfigError),
    #[error("-e {argument:?}: expected KEY=VALUE")]
    ExtraVar { argument: String },
}

fn main() -> ExitCode {
    ExitCode::from(run())
}

/// Parses the command line, runs, and returns the exit status.
fn run() -> u8 {
    let words: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|word| word.to_string_lossy().into_owned())
        .collect();
    if let Some(request) = generate::request(&words) {
        let written = generate::write(request, &mut std::io::stdout(), &mut std::io::stderr());
        return written.unwrap_or(EXIT_FAILED);
    }
    if let Some(result) = history::dispatch(&words) {
        return match result {
            Ok(()) => EXIT_CONVERGED,
            Err(history::CommandError::Usage(error)) => {
                let _ = error.print();
                if error.use_stderr() {
                    EXIT_INVALID
                } else {
                    EXIT_CONVERGED
                }
            }
            Err(error) => {
                eprintln!("error: {error}");
                if error.is_input() {
                    EXIT_INVALID
                } else {
                    EXIT_FAILED
                }
            }
        };
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                EXIT_INVALID
            } else {
                EXIT_CONVERGED
            };
        }
    };
    match execute(&cli) {
        Ok(status) => status,
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_INVALID
        }
    }
}

/// The exit status of a finished (or interrupted) run.
fn exit_status(hosts: &[HostStats], check: bool, interrupted: bool) -> u8 {
    if interrupted || hosts.iter().any(|host| host.failed + host.unreachable > 0) {
        EXIT_FAILED
    } else if check && hosts.iter().any(|host| host.changed > 0) {
        EXIT_DRIFT
    } else {
        EXIT_CONVERGED
    }
}

fn parse_extra_vars(arguments: &[String]) -> Result<Vars, InputError> {
    let mut vars = Vars::new();
    for argument in arguments {
        let Some((key, value)) = argument.split_once('=').filter(|(key, _)| !key.is_empty()) else {
            return Err(InputError::ExtraVar {
                argument: argument.clone(),
            });
        };
        vars.insert(key.to_owned(), serde_json::Value::String(value.to_owned()));
    }
    Ok(vars)
}

fn load_inventory(cli: &Cli, playbook: &Playbook) -> Result<Inventory, InventoryError> {
    let defaults_exist = ["inventory.yml", "inventory"]
        .iter()
        .any(|name| playbook.dir.join(name).is_file());
    if cli.inventory.is_none() && cli.connection == Some(ConnectionArg::Local) && !defaults_exist {
        // Pull mode on a machine with no inventory: the machine itself.
        return Inventory::from_host_list("localhost");
    }
    Inventory::load(cli.inventory.as_deref(), &playbook.dir)
}

fn execute(cli: &Cli) -> Result<u8, InputError> {
    let started = Instant::now();
    let started_ms = history::time::now_ms();
    let playbook = Playbook::load(&cli.playbook)?;
    let mut inventory = load_inventory(cli, &playbook)?;
    if let Some(limit) = &cli.limit {
        inventory.limit(limit)?;
    }

    // Hosts in inventory order, and each play's members as indices into them.
    let names: Vec<String> = inventory.hosts().map(|host| host.name.clone()).collect();
    let mut used = vec![false; names.len()];
    let mut plays: Vec<(usize, Vec<usize>)> = Vec::new();
    for (index, play) in playbook.plays.iter().enumerate() {
        let members: Vec<usize> = inventory
            .select(&play.hosts)
            .iter()
            .filter_map(|host| names.iter().position(|name| *name == host.name))
            .collect();
        for &member in &members {
            used[member] = true;
        }
        plays.push((index, members));
    }
    let ssh_config = ssh_config::SshConfig::load(cli.ssh_config.as_deref())?;
    let mut hosts = Vec::new();
    let mut slot = vec![usize::MAX; names.len()];
    for (index, host) in inventory.hosts().enumerate() {
        if !used[index] {
            continue;
        }
        let command_line = TargetSettings {
            connection: cli.connection.map(|connection| match connection {
                ConnectionArg::Ssh => Connection::Ssh,
                ConnectionArg::Local => Connection::Local,
            }),
            ..TargetSettings::default()
        };
        let target = ssh_config.target(&host.name, command_line.over(host.settings()?))?;
        slot[index] = hosts.len();
        hosts.push(HostRun::new(host.name.clone(), target, host.vars.clone()));
    }
    for (_, members) in &mut plays {
        for member in members.iter_mut() {
            *member = slot[*member];
        }
    }

    if (cli.list_hosts || cli.list_tasks) && cli.format == Format::Json {
        let listing = listing::json(
            &playbook,
            &plays,
            &hosts,
            cli.list_hosts,
            cli.list_tasks,
            &cli.tags,
        );
        println!("{listing}");
        return Ok(EXIT_CONVERGED);
    }
    if cli.list_hosts || cli.list_tasks {
        let mut out = String::new();
        for (index, members) in &plays {
            let play = &playbook.plays[*index];
            let _ = writeln!(
                out,
                "play #{} ({}): {}",
                index + 1,
                play.hosts,
                play.title()
            );
            if cli.list_hosts {
                let _ = writeln!(out, "  hosts ({}):", members.len());
                for &member in members {
                    let _ = writeln!(out, "    {}", hosts[member].name);
                }
            }
            if cli.list_tasks {
                out.push_str("  tasks:\n");
                for task in play.tasks.iter().filter(|task| task.selected(&cli.tags)) {
                    let tags = if task.tags.is_empty() {
                        String::new()
                    } else {
                        format!("  tags: [{}]", task.tags.join(", "))
                    };
                    let _ = writeln!(out, "    {}{tags}", task.title());
                }
            }
        }
        print!("{out}");
        return Ok(EXIT_CONVERGED);
    }

    let options = Options {
        check: cli.check,
        forks: cli.forks.map_or(hosts.len().clamp(1, 64), usize::from),
        tags: cli.tags.clone(),
        extra_vars: parse_extra_vars(&cli.extra_vars)?,
        verbose: cli.verbose,
        lock_wait: cli.lock_wait,
        // The line would fight with -v's command lines and means nothing in JSON mode.
        progress: cli.format == Format::Human && cli.verbose == 0,
        limits: transport::Limits {
            max_output: cli.max_output,
        },
    };
    engine::check_inputs(&playbook, &plays, &hosts, &options)?;
    if cli.syntax_check {
        println!("playbook: {} (syntax ok)", playbook.path.display());
        return Ok(EXIT_CONVERGED);
    }

    // First SIGINT/SIGTERM: start no new task, let running ones finish, print the recap.
    // A second one ends the process at once.
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, &engine::INTERRUPTED);
        let _ = signal_hook::flag::register(signal, &engine::INTERRUPTED);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.forks)
        .thread_name(|index| format!("converge-host-{index}"))
        .build()
        .expect("a thread pool of at most 64 threads can be built");
    let style = Style::detect();
    let human = cli.format == Format::Human;
    let mut outcomes = Vec::with_capacity(plays.len());
    for (index, members) in &plays {
        if engine::interrupted() {
            break;
        }
        let outcome = engine::run_play(
            &playbook.plays[*index],
            members,
            &mut hosts,
            &options,
            &pool,
        );
        if human {
            print!(
                "{}",
                report::human_play(&outcome, cli.check, cli.diff, style)
            );
            let _ = std::io::stdout().flush();
        }
        outcomes.push(outcome);
    }
    engine::release_locks(&mut hosts, &pool);
    let stats = engine::stats(&hosts, &outcomes);
    let mut status = exit_status(&stats, cli.check, engine::interrupted());
    if engine::interrupted() {
        eprintln!("interrupted: tasks not yet started were not run; running ones were finished");
    }
    if human {
        print!("{}", report::human_recap(&stats, style));
        let rollouts: Vec<(String, &rollout::Rollout)> = outcomes
            .iter()
            .filter_map(|play| Some((play.play.clone(), play.rollout.as_ref()?)))
            .collect();
        print!("{}", report::escape_control(&rollout::human(&rollouts)));
    }
    if cli.format == Format::Json
        || cli.report.is_some()
        || !cli.history.is_empty()
        || cli.metrics.is_some()
    {
        let document = RunReport {
            format_version: report::REPORT_FORMAT_VERSION,
            converge_version: env!("CARGO_PKG_VERSION"),
            playbook: playbook.path.display().to_string(),
            check: cli.check,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            exit_code: status,
            summary: Summary::of(&stats),
            plays: outcomes,
            hosts: stats,
        };
        let json = serde_json::to_string_pretty(&document).expect("the report serializes");
        if cli.format == Format::Json {
            println!("{json}");
        }
        if let Some(path) = &cli.report {
            if let Err(error) = report::write_atomically(
                path,
                &format!("{json}\n"),
                cli.report_mode.unwrap_or(report::REPORT_MODE),
            ) {
                eprintln!("error: cannot write report {}: {error}", path.display());
                status = EXIT_FAILED;
            }
        }
        for message in history::record(&cli.history, &document, started_ms) {
            eprintln!("error: cannot write history: {message}");
            status = EXIT_FAILED;
        }
        if let Some(path) = &cli.metrics {
            let text = metrics::render(&document, started_ms);
            if let Err(error) = report::write_atomically(path, &text, 0o644) {
                eprintln!("error: cannot write metrics {}: {error}", path.display());
                status = EXIT_FAILED;
            }
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(failed: usize, unreachable: usize, changed: usize) -> HostStats {
        HostStats {
            host: "h".into(),
            failed,
            unreachable,
            changed,
            ..HostStats::default()
        }
    }

    #[test]
    fn exit_status_follows_the_contract() {
        assert_eq!(exit_status(&[host(0, 0, 0)], false, false), EXIT_CONVERGED);
        assert_eq!(exit_status(&[host(0, 0, 3)], false, false), EXIT_CONVERGED);
        assert_eq!(exit_status(&[host(0, 0, 0)], true, false), EXIT_CONVERGED);
        assert_eq!(exit_status(&[host(0, 0, 3)], true, false), EXIT_DRIFT);
        assert_eq!(
            exit_status(&[host(0, 0, 3), host(1, 0, 0)], true, false),
            EXIT_FAILED
        );
        assert_eq!(exit_status(&[host(0, 1, 0)], false, false), EXIT_FAILED);
        assert_eq!(exit_status(&[host(0, 0, 0)], true, true), EXIT_FAILED);
    }

    #[test]
    fn extra_vars_need_a_key() {
        assert!(parse_extra_vars(&["=x".into()]).is_err());
        assert_eq!(parse_extra_vars(&["a=b=c".into()]).unwrap()["a"], "b=c");
    }
}
