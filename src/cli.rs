//! The command line, as the contract defines it.

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

/// Agentless, declarative configuration management for systemd hosts over SSH.
///
/// Exit status: 0 in the desired state (or no drift with --check); 1 a task failed or a
/// host was unreachable; 2 --check found drift; 3 invalid input (nothing was contacted).
#[derive(Debug, Parser)]
#[command(
    name = "converge",
    version,
    about,
    long_about = None,
    max_term_width = 100,
    after_help = "Also: `converge completions bash|zsh|fish` prints a shell completion script; \
                  `converge man` prints the man page; `converge history --help` and \
                  `converge dashboard --help` read a run history."
)]
pub struct Cli {
    /// The playbook to run.
    pub playbook: PathBuf,

    /// Inventory file (YAML or INI) or a comma-separated host list (`web1,web2:2222`).
    /// Default: inventory.yml, then inventory, beside the playbook.
    #[arg(short = 'i', long, value_name = "INVENTORY")]
    pub inventory: Option<String>,

    /// Read every host's state and report what would change, changing nothing.
    #[arg(long)]
    pub check: bool,

    /// Show a unified diff for every file whose content changes (or would).
    #[arg(long)]
    pub diff: bool,

    /// Only work on hosts matching this pattern (`app`, `web*`, `app:!app3`).
    #[arg(short = 'l', long, value_name = "PATTERN")]
    pub limit: Option<String>,

    /// How many hosts are worked on at once (default: all, at most 64).
    #[arg(short = 'f', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: Option<u16>,

    /// Only run tasks with one of these tags.
    #[arg(short = 't', long, value_name = "T1,T2", value_delimiter = ',')]
    pub tags: Vec<String>,

    /// Skip tasks with one of these tags (even `always` ones, when named).
    #[arg(long, value_name = "T1,T2", value_delimiter = ',')]
    pub skip_tags: Vec<String>,

    /// Start at the first task with this name: earlier plays and tasks do not run.
    #[arg(long, value_name = "NAME")]
    pub start_at_task: Option<String>,

    /// Set a variable (highest precedence): KEY=VALUE (a string), @FILE (YAML or JSON),
    /// or a YAML or JSON mapping; may be repeated.
    #[arg(short = 'e', long = "extra-vars", value_name = "KEY=VALUE|@FILE|{..}")]
    pub extra_vars: Vec<String>,

    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Also write the JSON report to this file (written atomically, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Permissions of the report file, in octal (default 0600).
    #[arg(long, value_name = "MODE", requires = "report", value_parser = parse_mode)]
    pub report_mode: Option<u32>,
    /// Append this run to a history store: a SQLite file, or a `postgres://` URL; may be
    /// repeated to write to several.
    #[arg(long, value_name = "PATH|URL")]
    pub history: Vec<String>,

    /// Write the run's metrics to this file in node_exporter's textfile format
    /// (atomically).
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,

    /// OpenSSH client config to read instead of `~/.ssh/config` and `/etc/ssh/ssh_config`.
    #[arg(short = 'F', long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,

    /// Connection for every host: `local` runs on this machine without SSH.
    #[arg(short = 'c', long, value_enum, value_name = "ssh|local")]
    pub connection: Option<ConnectionArg>,

    /// Check the playbook and inventory, then exit without contacting any host.
    #[arg(long)]
    pub syntax_check: bool,

    /// List the hosts each play would run on, then exit.
    #[arg(long)]
    pub list_hosts: bool,

    /// List the tasks and handlers of each play, then exit.
    #[arg(long)]
    pub list_tasks: bool,

    /// How long to wait for another converge run to finish with a host (its lock).
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_wait: u32,

    /// Most output read from any one remote command (stdout and stderr together), in
    /// bytes or with K, M or G; past it that host's task fails.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = crate::transport::parse_size)]
    pub max_output: u64,

    /// Show the remote commands run (-vv: in full).
    #[arg(short = 'v', long, action = ArgAction::Count)]
    pub verbose: u8,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// `--connection` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConnectionArg {
    Ssh,
    Local,
}

/// A `--report-mode` value that is not an octal file mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a file mode; write it in octal, e.g. 0640")]
pub struct ModeError {
    text: String,
}

/// An octal file mode such as `0640`.
fn parse_mode(text: &str) -> Result<u32, ModeError> {
    let octal =
        !text.is_empty() && text.len() <= 4 && text.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(text, 8) {
        Ok(mode) if octal && mode <= 0o777 => Ok(mode),
        _ => Err(ModeError {
            text: text.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn contract_flags_parse() {
        let cli = Cli::try_parse_from([
            "converge",
            "site.yml",
            "-i",
            "web1,web2:2222",
            "--check",
            "--diff",
            "--limit",
            "app:!app3",
            "--forks",
            "5",
            "--tags",
            "a,b",
            "-e",
            "x=1",
            "--format",
            "json",
            "--report",
            "r.json",
            "--connection",
            "local",
            "-vv",
        ])
        .unwrap();
        assert_eq!(cli.tags, ["a", "b"]);
        assert_eq!(cli.forks, Some(5));
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.connection, Some(ConnectionArg::Local));
    }

    #[test]
    fn report_mode_is_octal() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("600"), Ok(0o600));
        for bad in ["", "0o640", "+644", "0800", "4755", "12345", "rw"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        let cli = Cli::try_parse_from(["converge", "site.yml", "--report-mode", "0640"]);
        assert!(cli.is_err(), "--report-mode needs --report");
    }
}
