//! Pull mode, end to end: `playbooks/pull.yml` installs a timer on a host that updates a
//! git checkout of the playbook repository and converges the host itself with
//! `--connection local`, leaving a report.

mod fleet;
mod support;

use fleet::Fleet;
use serde_json::Value;
use support::{push, text};

#[test]
fn a_host_pulls_its_playbooks_and_converges_itself() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let root = fleet::repo_root();

    // The host needs git (from its own apt sources) and the converge binary.
    let git = host.ssh(
        "export DEBIAN_FRONTEND=noninteractive; timeout 300 apt-get update -qq >/dev/null && timeout 300 apt-get install -y -qq --no-install-recommends git >/dev/null",
    );
    assert!(
        git.status.success(),
        "installing git on the host failed: {}",
        String::from_utf8_lossy(&git.stderr)
    );
    push(
        &fleet,
        host,
        std::path::Path::new(env!("CARGO_BIN_EXE_converge")),
        "/usr/local/bin/converge",
        "0755",
    );

    // The playbook repository: the Sidekiq playbook with its template and application,
    // and an inventory naming this host.
    push(
        &fleet,
        host,
        &root.join("playbooks/sidekiq.yml"),
        "/srv/site/site.yml",
        "0644",
    );
    push(
        &fleet,
        host,
        &root.join("playbooks/templates/sidekiq.service.j2"),
        "/srv/site/templates/sidekiq.service.j2",
        "0644",
    );
    push(
        &fleet,
        host,
        &root.join("playbooks/app/worker.rb"),
        "/srv/site/app/worker.rb",
        "0644",
    );
    let inventory = fleet.dir().join("site-inventory.yml");
    std::fs::write(
        &inventory,
        format!(
            "all:\n  vars:\n    sidekiq_exec: /bin/sleep infinity\n  children:\n    app:\n      hosts:\n        {}: {{ connection: local }}\n",
            host.name
        ),
    )
    .unwrap();
    push(&fleet, host, &inventory, "/srv/site/inventory.yml", "0644");
    host.ssh_ok(
        "cd /srv/site && git init -q && git add -A && git -c user.name=ops -c user.email=ops@example.invalid commit -qm site && git clone -q --bare /srv/site /srv/site.git",
    );

    let bootstrap = support::inventory(&fleet, "");
    let output = fleet.converge(&[
        "playbooks/pull.yml",
        "-i",
        bootstrap.to_str().unwrap(),
        "-e",
        "pull_repo=/srv/site.git",
        "-e",
        "pull_schedule=*:*:0/5",
        "-e",
        "pull_random_delay=0",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    let waited = host.ssh(
        "for i in $(seq 1 240); do test -s /var/lib/converge/pull.json && ! systemctl is-active --quiet converge-pull.service && exit 0; sleep 0.5; done; exit 1",
    );
    assert!(
        waited.status.success(),
        "no pull report after 120 s:\n{}",
        host.ssh_ok("systemctl status --no-pager converge-pull.timer converge-pull.service; journalctl --no-pager -u converge-pull.service | tail -30")
    );
    let report: Value =
        serde_json::from_str(&host.ssh_ok("cat /var/lib/converge/pull.json")).unwrap();
    support::check_report(&report);
    assert_eq!(report["exit_code"], 0, "{report:#}");
    // The timer fires every few seconds, so the report may be the first run's or a later
    // one's; the journal keeps every run's output, the first one's changes included.
    let journal = host.ssh_ok("journalctl --no-pager -u converge-pull.service");
    assert!(journal.contains("start sidekiq.service"), "{journal}");
    assert_eq!(host.ssh_ok("systemctl is-active sidekiq"), "active");
}
