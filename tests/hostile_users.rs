//! An unprivileged account on a managed host plays the attacker: it plants symbolic
//! links where converge writes, swaps them in and out while converge runs, and leaves
//! a huge file where converge reads. After each attack the host's protected files are
//! checked from the host's side: owner, mode, content and existence unchanged, and
//! converge either refused (naming the unsafe component) or did the job inside the
//! user's own tree.

mod fleet;
mod support;

use fleet::{Fleet, TestHost};
use support::{inventory, stat, text};

/// What must never change, as the host sees it: owner, mode, size and hash of each.
const PROTECTED: &str = "/etc/shadow /root/.ssh/authorized_keys /etc/systemd /etc/systemd/system /srv/important/data /srv/important/data/keep";

fn protected_state(host: &TestHost) -> String {
    host.ssh_ok(&format!(
        "for p in {PROTECTED}; do stat -c '%n %U:%G %a %F' -- \"$p\"; \
         if [ -f \"$p\" ]; then sha256sum < \"$p\"; fi; done; \
         ls -A /etc/systemd; ls -A /etc/systemd/user 2>&1 || true"
    ))
}

/// Adds the attacker and what it wants to reach on the host.
fn prepare(host: &TestHost) {
    host.ssh_ok(
        "useradd --create-home --shell /bin/sh mallory
mkdir -p /srv/important/data && echo precious > /srv/important/data/keep",
    );
}

fn as_mallory(host: &TestHost, script: &str) {
    host.ssh_ok(&format!(
        "runuser -u mallory -- sh -c {}",
        converge_modules::shell::quote(script)
    ));
}

fn write_playbook(fleet: &Fleet, name: &str, tasks: &str) -> String {
    let path = fleet.dir().join(name);
    std::fs::write(&path, format!("- hosts: app\n  tasks:\n{tasks}")).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Each planted link of the attacks, on one host, while a second, clean host
/// converges the same playbook in the same run.
#[test]
fn symbolic_links_on_the_way_are_refused_and_the_other_host_converges() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let (victim, clean) = (&fleet.hosts()[0], &fleet.hosts()[1]);
    for host in [victim, clean] {
        prepare(host);
    }
    as_mallory(
        victim,
        "ln -s /etc ~/.config; ln -s /root/.ssh ~/.ssh; ln -s /srv/important ~/cache",
    );
    let before = protected_state(victim);
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();

    let attacks = [
        (
            "user units dir",
            "    - directory: { path: /home/mallory/.config/systemd/user, owner: mallory }\n",
            "/home/mallory/.config is a symbolic link",
        ),
        (
            "authorized keys",
            "    - directory: { path: /home/mallory/.ssh, owner: mallory, mode: \"0700\" }\n    - file: { path: /home/mallory/.ssh/authorized_keys, content: \"ssh-ed25519 AAAA mallory\\n\", owner: mallory, mode: \"0600\" }\n",
            "/home/mallory/.ssh is a symbolic link",
        ),
        (
            "cache removal",
            "    - directory: { path: /home/mallory/cache/data, state: absent }\n",
            "/home/mallory/cache is a symbolic link",
        ),
        (
            "user unit",
            "    - linger: { user: mallory }\n    - systemd_unit: { name: worker.service, scope: user, user: mallory, content: \"[Service]\\nExecStart=/bin/sleep infinity\\n\" }\n",
            "/home/mallory/.config",
        ),
    ];
    for (label, task, reason) in attacks {
        let playbook = write_playbook(&fleet, "attack.yml", task);
        for mode in [&["--check", "--diff"][..], &[]] {
            let mut args = vec![playbook.as_str(), "-i", inventory];
            args.extend_from_slice(mode);
            let output = fleet.converge(&args);
            let all = text(&output);
            assert_eq!(output.status.code(), Some(1), "{label} {mode:?}: {all}");
            assert!(
                all.contains(reason),
                "{label} {mode:?}: no {reason:?} in {all}"
            );
            assert!(
                all.contains(&format!("{}: ok=", clean.name)) || all.contains(&clean.name),
                "{all}"
            );
            assert_eq!(
                protected_state(victim),
                before,
                "{label} {mode:?} changed the host"
            );
        }
        // The clean host did the job, inside mallory's own tree.
        let owner = clean.ssh_ok(
            "stat -c %U /home/mallory/.config/systemd/user /home/mallory/.ssh 2>/dev/null || true",
        );
        assert!(!owner.contains("root"), "{label}: {owner}");
    }
    assert_eq!(
        clean.ssh_ok("stat -c '%U %a' /home/mallory/.config /home/mallory/.config/systemd /home/mallory/.config/systemd/user"),
        "mallory 755\nmallory 755\nmallory 755"
    );
    assert_eq!(
        clean.ssh_ok("cat /home/mallory/.ssh/authorized_keys; stat -c '%U %a' /home/mallory/.ssh/authorized_keys"),
        "ssh-ed25519 AAAA mallory\nmallory 600"
    );
}

/// Reading is as careful as writing: `--check --diff` of a file behind a planted link
/// never shows the file the link points to, and a directory of root's inside the
/// user's home is an unsafe transition.
#[test]
fn reads_never_follow_a_planted_link_and_unsafe_transitions_are_refused() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    prepare(host);
    as_mallory(host, "ln -s /etc ~/etc; ln -s /etc/shadow ~/shadow");
    host.ssh_ok("mkdir /home/mallory/rootdir");
    let shadow_root = host.ssh_ok("grep '^root:' /etc/shadow");
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let playbook = write_playbook(
        &fleet,
        "read.yml",
        "    - file: { path: /home/mallory/etc/shadow, content: \"x\\n\" }\n",
    );
    let output = fleet.converge(&[&playbook, "-i", inventory, "--check", "--diff"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(!text(&output).contains(&shadow_root), "{}", text(&output));
    assert!(
        text(&output).contains("/home/mallory/etc is a symbolic link"),
        "{}",
        text(&output)
    );

    // A link at the file's own name is refused, and never written through.
    let before = protected_state(host);
    let playbook = write_playbook(
        &fleet,
        "own-name.yml",
        "    - file: { path: /home/mallory/shadow, content: \"mine\\n\", owner: mallory }\n",
    );
    let output = fleet.converge(&[&playbook, "-i", inventory, "--diff"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("/home/mallory/shadow is a symbolic link; expected a regular file"),
        "{}",
        text(&output)
    );
    assert!(!text(&output).contains(&shadow_root), "{}", text(&output));
    assert_eq!(protected_state(host), before);
    assert_eq!(host.ssh_ok("readlink /home/mallory/shadow"), "/etc/shadow");

    let playbook = write_playbook(
        &fleet,
        "transition.yml",
        "    - file: { path: /home/mallory/rootdir/app.conf, content: \"x\\n\" }\n",
    );
    let output = fleet.converge(&[&playbook, "-i", inventory, "--check"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains(
            "/home/mallory/rootdir belongs to root but lies in a directory that mallory owns"
        ),
        "{}",
        text(&output)
    );
}

/// The races: a helper process of mallory's swaps links in and out as fast as it can
/// while converge writes, chmods, creates and removes in mallory's home, run after run.
#[test]
fn racing_links_never_redirect_a_write_chmod_mkdir_or_removal() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    prepare(host);
    as_mallory(host, "mkdir -p ~/.config/systemd/user ~/data ~/cache/data");
    let before = protected_state(host);
    // Swaps each directory converge goes through for a link to a protected place and
    // back, and renames a link over every private working directory it sees.
    host.ssh_ok(concat!(
        "systemd-run --unit=attack --uid=mallory --property=Nice=10 sh -c '",
        "cd /home/mallory; i=0; while :; do i=$((i+1)); ",
        "mv .config .config.real 2>/dev/null && ln -s /etc .config && sleep 0.00$((i % 3)) && rm -f .config && mv .config.real .config; ",
        "mv data data.real 2>/dev/null && ln -s /root/.ssh data && rm -f data && mv data.real data; ",
        "mv cache cache.real 2>/dev/null && ln -s /srv/important cache && rm -f cache && mv cache.real cache; ",
        "for f in data/notes; do [ -f \"$f\" ] && mv \"$f\" \"$f.real\" && ln -s /etc/shadow \"$f\" && rm -f \"$f\" && mv \"$f.real\" \"$f\"; done; ",
        "for w in .config/systemd/user/.converge.* data/.converge.*; do [ -d \"$w\" ] && mv \"$w\" \"$w.x\" && ln -s /etc \"$w\"; done 2>/dev/null; ",
        "done'"
    ));
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let playbook = write_playbook(
        &fleet,
        "race.yml",
        concat!(
            "    - directory: { path: /home/mallory/.config/systemd/user/app.d, owner: mallory, mode: \"0750\" }\n",
            "    - file: { path: /home/mallory/.config/systemd/user/app.service, content: \"[Service]\\nExecStart=/bin/true\\n\", owner: mallory }\n",
            "    - file: { path: /home/mallory/data/notes, content: \"notes\\n\", owner: mallory, mode: \"0644\" }\n",
            "    - file: { path: /home/mallory/data/notes, mode: \"0600\" }\n",
            "    - file: { path: /home/mallory/data/notes, mode: \"0644\" }\n",
            "    - directory: { path: /home/mallory/cache/data, state: absent }\n",
            "    - directory: { path: /home/mallory/cache/data, owner: mallory }\n",
            "    - directory: { path: /home/mallory/.config/systemd/user/app.d, state: absent }\n",
        ),
    );
    let mut refused = 0;
    let mut converged = 0;
    for _ in 0..25 {
        let output = fleet.converge(&[&playbook, "-i", inventory]);
        match output.status.code() {
            Some(0) => converged += 1,
            Some(1) => {
                let all = text(&output);
                assert!(
                    [
                        "refusing",
                        "will not touch",
                        "is a symbolic link",
                        "does not exist",
                        "No such file",
                    ]
                    .iter()
                    .any(|refusal| all.contains(refusal)),
                    "a failure that is not a refusal: {all}"
                );
                refused += 1;
            }
            _ => panic!("{}", text(&output)),
        }
        assert_eq!(protected_state(host), before, "a race changed the host");
    }
    host.ssh_ok("systemctl stop attack");
    eprintln!("25 runs under attack: {converged} converged, {refused} refused");
    assert!(
        refused > 0,
        "the attacker never got in the way: the race did not run"
    );
    assert_eq!(
        host.ssh_ok("find / -xdev -user mallory ! -path '/home/mallory*' ! -path '/proc/*' ! -path '/tmp/*' ! -path '/var/*' ! -path '/run/*' 2>/dev/null | wc -l"),
        "0",
        "mallory owns something outside its home"
    );
    // Left alone, the same playbook converges.
    let output = fleet.converge(&[&playbook, "-i", inventory]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// A user's 20 GB sparse file where converge reads fails that host's task with the
/// limit, and every other host finishes, with its recap and report.
#[test]
fn a_huge_file_fails_its_task_and_the_other_host_finishes() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let (victim, clean) = (&fleet.hosts()[0], &fleet.hosts()[1]);
    for host in [victim, clean] {
        prepare(host);
        as_mallory(host, "mkdir -p ~/.config/systemd/user");
    }
    as_mallory(victim, "truncate -s 20G ~/.config/systemd/user/big.service");
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let report = fleet.dir().join("report.json");
    let playbook = write_playbook(
        &fleet,
        "big.yml",
        "    - file: { path: /home/mallory/.config/systemd/user/big.service, content: \"[Service]\\nExecStart=/bin/true\\n\" }\n",
    );
    let output = fleet.converge(&[
        &playbook,
        "-i",
        inventory,
        "--check",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("is larger than 16 MiB, the most converge reads of one file"),
        "{}",
        text(&output)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(stat(&report, &victim.name, "failed"), 1, "{report}");
    assert_eq!(stat(&report, &clean.name, "failed"), 0, "{report}");
    assert_eq!(stat(&report, &clean.name, "changed"), 1, "{report}");
}
