//! What a run costs in round trips, counted on real hosts (never timed): with nothing
//! to change, every host gets one SSH connection and one remote command, however many
//! tasks the play has; a first converge costs two (the read that takes the lock, and one
//! script with every change that ends with the read that confirms them), and a command
//! whose output a later task reads two more; the JSON report's `commands` and the `-v`
//! lines agree.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fleet::{Fleet, TestHost};
use serde_json::Value;
use support::text;

/// Ten resources per host, a package and a user unit among them: the unit's path
/// depends on the user's home, so reading its facts takes a second command.
const SIDEKIQ_SCENARIO: &str = "benches/sidekiq-scenario.yml";

/// SSH logins the host's sshd has accepted so far, this query's own included.
fn logins(host: &TestHost) -> usize {
    // `--sync` returns once everything logged before it is in the journal.
    let count = host.ssh_ok(
        "journalctl --sync; journalctl -q -o cat _COMM=sshd | grep -c 'Accepted publickey'",
    );
    count.parse().unwrap()
}

/// Runs converge with `-v --format json`; returns the exit status, the report and the
/// `-v` output.
fn converge_verbose(fleet: &Fleet, args: &[&str]) -> (i32, Value, String) {
    let mut all = args.to_vec();
    all.extend(["-v", "--format", "json"]);
    let output = fleet.converge(&all);
    let report = support::report_of(&output);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap(), report, stderr)
}

/// `hosts[].commands` of a report, for `host`.
fn commands(report: &Value, host: &str) -> usize {
    let entry = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == host)
        .unwrap_or_else(|| panic!("{host} not in the report"));
    usize::try_from(entry["commands"].as_u64().unwrap()).unwrap()
}

/// Remote commands `-v` printed for `host`.
fn shown(stderr: &str, host: &str) -> usize {
    let prefix = format!("[{host}] $ ");
    stderr
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .count()
}

/// Changes the report lists for `host`: each is one remote command.
fn changes(report: &Value, host: &str) -> usize {
    report["plays"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|play| play["hosts"].as_array().unwrap())
        .filter(|h| h["host"] == host)
        .flat_map(|h| h["tasks"].as_array().unwrap())
        .map(|task| task["changes"].as_array().unwrap().len())
        .sum()
}

/// A playbook with `count` file resources under a directory of their own.
fn file_playbook(dir: &Path, count: usize) -> PathBuf {
    let mut yaml = format!(
        "- hosts: bench\n  tasks:\n    - directory: {{ path: /etc/round-trips-{count}, mode: \"0755\" }}\n"
    );
    for i in 0..count {
        let _ = write!(
            yaml,
            "    - name: file {i}\n      file:\n        path: /etc/round-trips-{count}/file-{i}.conf\n        \
             content: \"setting_{i} = {i}\\n\"\n        mode: \"0644\"\n"
        );
    }
    let path = dir.join(format!("files-{count}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_run_with_nothing_to_change_costs_one_connection_and_at_most_two_commands_per_host() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let inventory = fleet.write_inventory("bench");
    let inventory = inventory.to_str().unwrap();
    let first = fleet.converge(&[SIDEKIQ_SCENARIO, "-i", inventory]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    let before: Vec<usize> = fleet.hosts().iter().map(logins).collect();
    let (code, report, stderr) = converge_verbose(&fleet, &[SIDEKIQ_SCENARIO, "-i", inventory]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["changed"], 0, "{report:#}");
    for (host, before) in fleet.hosts().iter().zip(before) {
        // The count includes the query's own login.
        assert_eq!(
            logins(host) - before - 1,
            1,
            "SSH connections to {}",
            host.name
        );
        let count = commands(&report, &host.name);
        assert!(
            (1..=2).contains(&count),
            "{} remote commands on {}:\n{stderr}",
            count,
            host.name
        );
        assert_eq!(
            shown(&stderr, &host.name),
            count,
            "-v and the report disagree on {}:\n{stderr}",
            host.name
        );
    }
}

#[test]
fn two_hundred_resources_cost_the_same_commands_as_ten_when_nothing_changes() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0].name;
    let inventory = fleet.write_inventory("bench");
    let inventory = inventory.to_str().unwrap();
    let mut no_change = Vec::new();
    for count in [10, 200] {
        let playbook = file_playbook(fleet.dir(), count);
        let playbook = playbook.to_str().unwrap();

        // A first run: the read that takes the lock, then one script with every change
        // (the files' content on its stdin) and the read that confirms them.
        let (code, report, stderr) = converge_verbose(&fleet, &[playbook, "-i", inventory]);
        assert_eq!(code, 0, "{stderr}\n{report:#}");
        let made = changes(&report, host);
        assert_eq!(made, count + 1, "{report:#}");
        assert_eq!(
            commands(&report, host),
            2,
            "{} commands for {made} changes:\n{stderr}",
            commands(&report, host)
        );
        assert_eq!(shown(&stderr, host), commands(&report, host), "{stderr}");

        let (code, report, stderr) = converge_verbose(&fleet, &[playbook, "-i", inventory]);
        assert_eq!(code, 0, "{stderr}\n{report:#}");
        assert_eq!(report["summary"]["changed"], 0, "{report:#}");
        assert_eq!(report["summary"]["ok"], count + 1, "{report:#}");
        assert_eq!(shown(&stderr, host), commands(&report, host), "{stderr}");
        no_change.push(commands(&report, host));
    }
    assert_eq!(
        no_change[0], no_change[1],
        "remote commands with 10 and 200 resources"
    );
    assert!(no_change[1] <= 2, "{no_change:?}");
}

/// Every warning `host`'s tasks carry in `report`.
fn warnings(report: &Value, host: &str) -> Vec<String> {
    support::tasks_on(report, host)
        .iter()
        .flat_map(|task| task["warnings"].as_array().cloned().unwrap_or_default())
        .map(|warning| warning.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_first_converge_of_the_benchmark_scenario_costs_two_commands_and_a_second_run_one() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = fleet.write_inventory("bench");
    let inventory = inventory.to_str().unwrap();
    let (code, report, stderr) = converge_verbose(&fleet, &[SIDEKIQ_SCENARIO, "-i", inventory]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["changed"], 6, "{report:#}");
    // The read that takes the lock, then the script, which ends with the read that
    // confirms it: every task planned again against that read finds nothing to do.
    assert_eq!(commands(&report, &host.name), 2, "{stderr}");
    assert_eq!(shown(&stderr, &host.name), 2, "{stderr}");
    assert_eq!(warnings(&report, &host.name), Vec::<String>::new());
    host.ssh_ok("systemctl is-active sidekiq.service");
    host.ssh_ok(
        "runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$(id -u deploy) systemctl --user is-active sidekiq-low.service",
    );
    host.ssh_ok("test -f /etc/sudoers.d/sidekiq && test -f /var/lib/systemd/linger/deploy");

    let (code, report, stderr) = converge_verbose(&fleet, &[SIDEKIQ_SCENARIO, "-i", inventory]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    assert_eq!(report["summary"]["changed"], 0, "{report:#}");
    assert_eq!(commands(&report, &host.name), 1, "{stderr}");
}

#[test]
fn a_command_whose_output_a_later_when_reads_costs_two_commands_more() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let inventory = fleet.write_inventory("bench");
    let inventory = inventory.to_str().unwrap();
    let scenario = std::fs::read_to_string(SIDEKIQ_SCENARIO).unwrap();
    let marker = "    - name: deploy's manager outlives its sessions\n";
    let inserted = "    - name: which release\n      command: { cmd: \"cat /etc/debian_version\" }\n      \
                    register: release\n      changed_when: false\n\n    - name: release note\n      \
                    file: { path: /etc/motd.release, content: \"{{ release.stdout }}\\n\" }\n      \
                    when: release.stdout | length > 0\n\n";
    assert!(scenario.contains(marker));
    let playbook = fleet.dir().join("scenario-with-command.yml");
    std::fs::write(
        &playbook,
        scenario.replace(marker, &format!("{inserted}{marker}")),
    )
    .unwrap();
    let playbook = playbook.to_str().unwrap();

    let (code, report, stderr) = converge_verbose(&fleet, &[playbook, "-i", inventory]);
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    // The first script ends with the command, whose output the `when` reads, and its
    // confirming read; the `when`'s task was not rendered before the command ran, so
    // its facts are read on their own. The rest goes as a second script, confirmed at
    // its end.
    assert_eq!(commands(&report, &host.name), 4, "{stderr}");
    assert_eq!(warnings(&report, &host.name), Vec::<String>::new());
    let release = host.ssh_ok("cat /etc/debian_version");
    assert_eq!(host.ssh_ok("cat /etc/motd.release"), release);
    host.ssh_ok(
        "runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$(id -u deploy) systemctl --user is-active sidekiq-low.service",
    );
}
