//! converge: agentless, declarative configuration management for systemd hosts.
//!
//! `main` only calls [`run()`], which parses the command line and hands a playbook run
//! to [`run::run`]; the exit status of a run is decided in one place, [`exit_status`],
//! from what the run recorded.

mod cli;
mod dashboard;
mod engine;
#[cfg(test)]
mod engine_tests;
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
mod run;
mod ssh_config;
mod template;
mod terminal;
mod transport;
mod yaml;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::Cli;
use crate::engine::HostStats;

/// Every host is in the desired state (or, with `--check`, no drift).
const EXIT_CONVERGED: u8 = 0;
/// A task failed or a host was unreachable.
const EXIT_FAILED: u8 = 1;
/// `--check` found drift and nothing failed.
const EXIT_DRIFT: u8 = 2;
/// Invalid input; no host was contacted.
const EXIT_INVALID: u8 = 3;

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
    match run::run(&cli) {
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
    } else if check && hosts.iter().any(|host| host.changed + host.pending > 0) {
        EXIT_DRIFT
    } else {
        EXIT_CONVERGED
    }
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
        let pending = HostStats {
            pending: 2,
            ..host(0, 0, 0)
        };
        assert_eq!(exit_status(&[pending], true, false), EXIT_DRIFT);
        assert_eq!(exit_status(&[host(0, 0, 0)], true, true), EXIT_FAILED);
    }
}
