//! One run of a playbook, from the parsed command line to its exit status: load the
//! playbook and inventory, cast each play's hosts, list or check the input, run the
//! plays, then print and write what happened.
//!
//! Hosts are cast once: every inventory host some play selects becomes one
//! [`HostRun`], in inventory order, and each play names its hosts by position in that
//! list, so a host's connection and facts carry over from one play to the next.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Instant;

use crate::cli::{Cli, ConnectionArg, Format};
use crate::engine::{self, HostRun, Options};
use crate::inventory::{Inventory, InventoryError, InventoryHost, Vars};
use crate::playbook::{self, NoSuchTask, Playbook, PlaybookError, TagFilter};
use crate::report::{self, RunReport, Style, Summary};
use crate::transport::{self, Connection, TargetSettings};
use crate::{exit_status, history, listing, metrics, rollout, ssh_config};
use crate::{EXIT_CONVERGED, EXIT_FAILED};

/// Input that is wrong before any host is contacted.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Task(#[from] engine::InputError),
    #[error(transparent)]
    SshConfig(#[from] ssh_config::SshConfigError),
    #[error("-e {argument:?}: expected KEY=VALUE, @FILE or a mapping ({{\"key\": \"value\"}})")]
    ExtraVar { argument: String },
    #[error("-e: {0}")]
    ExtraVarsFile(#[from] playbook::VarsFileError),
    #[error(transparent)]
    StartAt(#[from] NoSuchTask),
}

/// The hosts a playbook runs on and which of them each play runs on.
pub struct Cast {
    /// Every host some play selects, in inventory order.
    pub hosts: Vec<HostRun>,
    /// Each play's index in the playbook and its hosts, as positions in `hosts`.
    pub plays: Vec<(usize, Vec<usize>)>,
}

/// Casts `playbook`'s plays on `inventory`'s hosts, making a [`HostRun`] of each host
/// some play selects with `host_run`.
pub fn cast<E>(
    playbook: &Playbook,
    inventory: &Inventory,
    mut host_run: impl FnMut(&InventoryHost) -> Result<HostRun, E>,
) -> Result<Cast, E> {
    let selections: Vec<Vec<&InventoryHost>> = playbook
        .plays
        .iter()
        .map(|play| inventory.select(&play.hosts))
        .collect();
    let mut hosts = Vec::new();
    let mut positions: HashMap<&str, usize> = HashMap::new();
    for host in inventory.hosts() {
        let selected = selections
            .iter()
            .any(|members| members.iter().any(|member| member.name == host.name));
        if selected {
            positions.insert(&host.name, hosts.len());
            hosts.push(host_run(host)?);
        }
    }
    let plays = selections
        .iter()
        .enumerate()
        .map(|(index, members)| {
            let members = members
                .iter()
                .map(|member| positions[member.name.as_str()])
                .collect();
            (index, members)
        })
        .collect();
    Ok(Cast { hosts, plays })
}

/// `-e` arguments, later ones winning: `KEY=VALUE` (a string), `@FILE` (a YAML or JSON
/// mapping, relative to the working directory) or an inline mapping (`{"a": [1]}`,
/// YAML or JSON), whose values keep their types.
fn parse_extra_vars(arguments: &[String]) -> Result<Vars, InputError> {
    let mut vars = Vars::new();
    for argument in arguments {
        if let Some(file) = argument.strip_prefix('@') {
            vars.extend(playbook::read_vars_file(std::path::Path::new(file))?);
            continue;
        }
        if argument.trim_start().starts_with('{') {
            let parsed = playbook::parse_vars(argument, std::path::Path::new("-e"))
                .map_err(playbook::VarsFileError::Yaml)?;
            vars.extend(parsed);
            continue;
        }
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

/// Runs the playbook the command line names; an input error means no host was
/// contacted.
pub fn run(cli: &Cli) -> Result<u8, InputError> {
    let started = Instant::now();
    let started_ms = history::time::now_ms();
    let mut playbook = Playbook::load(&cli.playbook)?;
    if let Some(name) = &cli.start_at_task {
        playbook.start_at_task(name)?;
    }
    let tags = TagFilter {
        only: cli.tags.clone(),
        skip: cli.skip_tags.clone(),
    };
    let mut inventory = load_inventory(cli, &playbook)?;
    if let Some(limit) = &cli.limit {
        inventory.limit(limit)?;
    }

    let ssh_config = ssh_config::SshConfig::load(cli.ssh_config.as_deref())?;
    let command_line = TargetSettings {
        connection: cli.connection.map(|connection| match connection {
            ConnectionArg::Ssh => Connection::Ssh,
            ConnectionArg::Local => Connection::Local,
        }),
        ..TargetSettings::default()
    };
    let Cast { mut hosts, plays } = cast(&playbook, &inventory, |host| {
        let target = ssh_config.target(&host.name, command_line.clone().over(host.settings()?))?;
        Ok::<_, InputError>(
            HostRun::new(host.name.clone(), target, host.vars.clone())
                .with_templates(host.templates.clone()),
        )
    })?;

    if cli.list_hosts || cli.list_tasks {
        let asked = listing::Asked {
            hosts: cli.list_hosts,
            tasks: cli.list_tasks,
        };
        let listing = listing::listing(&playbook, &plays, &hosts, asked, &tags);
        if cli.format == Format::Json {
            println!("{}", listing::json(&listing));
        } else {
            print!("{}", listing::human(&listing));
        }
        return Ok(EXIT_CONVERGED);
    }

    let options = Options {
        check: cli.check,
        forks: cli.forks.map_or(hosts.len().clamp(1, 64), usize::from),
        tags,
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
        if !publish(cli, &document, started_ms) {
            status = EXIT_FAILED;
        }
    }
    Ok(status)
}

/// `--list-hosts` and `--list-tasks` for people: each play, its hosts and the tasks
/// `--tags` selects.
/// Prints the JSON report (`--format json`) and writes it where the command line asks
/// (`--report`, `--history`, `--metrics`). Returns whether every write succeeded; each
/// failure is reported on stderr.
fn publish(cli: &Cli, document: &RunReport, started_ms: i64) -> bool {
    let mut written = true;
    let json = serde_json::to_string_pretty(document).expect("the report serializes");
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
            written = false;
        }
    }
    for message in history::record(&cli.history, document, started_ms) {
        eprintln!("error: cannot write history: {message}");
        written = false;
    }
    if let Some(path) = &cli.metrics {
        let text = metrics::render(document, started_ms);
        if let Err(error) = report::write_atomically(path, &text, 0o644) {
            eprintln!("error: cannot write metrics {}: {error}", path.display());
            written = false;
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_cast_once_in_inventory_order_and_plays_name_them_by_position() {
        let playbook = Playbook::parse(
            "- hosts: web3\n  tasks: []\n- hosts: web1\n  tasks: []\n- hosts: web3\n  tasks: []\n",
            std::path::Path::new("site.yml"),
        )
        .unwrap();
        let inventory = Inventory::from_host_list("web1,web2,web3").unwrap();
        let Cast { hosts, plays } = cast(&playbook, &inventory, |host| {
            Ok::<_, InventoryError>(HostRun::new(
                host.name.clone(),
                transport::Target::new(&host.name, host.settings()?, "root"),
                host.vars.clone(),
            ))
        })
        .unwrap();
        let names: Vec<&str> = hosts.iter().map(|host| host.name.as_str()).collect();
        assert_eq!(names, ["web1", "web3"], "web2 is in no play");
        assert_eq!(plays, [(0, vec![1]), (1, vec![0]), (2, vec![1])]);
    }

    #[test]
    fn extra_vars_need_a_key() {
        assert!(parse_extra_vars(&["=x".into()]).is_err());
        assert_eq!(parse_extra_vars(&["a=b=c".into()]).unwrap()["a"], "b=c");
    }

    #[test]
    fn extra_vars_come_from_files_and_mappings_with_their_types() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("vars.yml");
        std::fs::write(&file, "workers: 2\ngroups: [a, b]\nname: one\n").unwrap();
        let vars = parse_extra_vars(&[
            format!("@{}", file.display()),
            r#"{"name": "two", "on": true}"#.into(),
            "workers=3".into(),
        ])
        .unwrap();
        assert_eq!(vars["groups"], serde_json::json!(["a", "b"]));
        assert_eq!(vars["name"], "two", "later arguments win");
        assert_eq!(vars["on"], true);
        assert_eq!(vars["workers"], "3");

        std::fs::write(&file, "a: 1\nb: [\n").unwrap();
        let error = parse_extra_vars(&[format!("@{}", file.display())])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!("-e: {}:3:1: ", file.display())),
            "{error}"
        );
        let error = parse_extra_vars(&["@/nonexistent/vars.yml".into()])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("-e: cannot read variables file /nonexistent/vars.yml:"),
            "{error}"
        );
        let error = parse_extra_vars(&["{a: [1}".into()])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("-e: -e:1:"), "{error}");
    }
}
