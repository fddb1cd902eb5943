//! Probe outputs parsed into facts, the batched read, and the fact store.

use super::*;
use crate::accounts::{AccountFact, AccountKey};
use crate::commands::{CommandFact, CommandKey};
use crate::paths::{PathFact, PathKey};
use crate::sudo::{SudoFact, SudoKey};
use crate::systemd::{SystemdFact, SystemdKey};

fn system_unit(name: &str) -> FactKey {
    FactKey::Systemd(SystemdKey::Unit(UnitRef {
        manager: Manager::System,
        name: name.to_owned(),
    }))
}

const ETC: &str = "directory:0:root:root:755:/etc\n";

#[test]
fn path_output_parses() {
    let key = FactKey::Paths(PathKey::Path("/etc/x".into()));
    assert_eq!(
        parse(&key, &format!("{ETC}regular file:0:root:root:644:/etc/x\n")).unwrap(),
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::File,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644
        }))
    );
    assert_eq!(
        parse(
            &key,
            &format!("{ETC}directory:1000:deploy:deploy:2775:/etc/x\n")
        )
        .unwrap(),
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::Directory,
            owner: "deploy".into(),
            group: "deploy".into(),
            mode: 0o2775
        }))
    );
    assert_eq!(
        parse(&key, &format!("{ETC}missing\n")).unwrap(),
        Fact::Paths(PathFact::Path(PathState::missing()))
    );
    assert_eq!(
        parse(&key, "missing\nmissing\n").unwrap(),
        Fact::Paths(PathFact::Path(PathState::missing()))
    );
    assert!(parse(&key, "garbage").is_err());
    assert!(parse(&key, "regular file:0:root:root:644:/etc/x\n").is_err());
}

#[test]
fn a_path_behind_a_symbolic_link_or_an_unsafe_transition_is_refused() {
    let key = FactKey::Paths(PathKey::Path("/home/deploy/.config/systemd".into()));
    let home = "directory:0:root:root:755:/home\ndirectory:1000:deploy:deploy:750:/home/deploy\n";
    let Fact::Refused(reason) = parse(
        &key,
        &format!("{home}symbolic link:1000:deploy:deploy:777:/home/deploy/.config\ndirectory:0:root:root:755:/home/deploy/.config/systemd\n"),
    )
    .unwrap() else {
        panic!("not refused")
    };
    assert!(
        reason.starts_with("/home/deploy/.config is a symbolic link"),
        "{reason}"
    );
    let Fact::Refused(reason) = parse(
        &key,
        &format!("{home}directory:0:root:root:755:/home/deploy/.config\ndirectory:0:root:root:755:/home/deploy/.config/systemd\n"),
    )
    .unwrap() else {
        panic!("not refused")
    };
    assert!(reason.contains("unsafe ownership transition"), "{reason}");
    let error = FactStore::default();
    let mut store = error;
    store.insert(key.clone(), Fact::Refused(reason));
    assert!(store
        .path("/home/deploy/.config/systemd")
        .unwrap_err()
        .to_string()
        .starts_with(
            "will not touch /home/deploy/.config/systemd: /home/deploy/.config belongs to root"
        ));
}

#[test]
fn path_output_about_another_path_is_refused() {
    let key = FactKey::Paths(PathKey::Path("/etc/x".into()));
    assert!(parse(&key, &format!("{ETC}regular file:0:root:root:644:/etc/y\n")).is_err());
    assert!(parse(
        &key,
        &format!("{ETC}regular file:0:root:root:644:/etc/x \n")
    )
    .is_err());
    assert!(parse(&key, &format!("{ETC}regular file:0:root:root:644\n")).is_err());
    let odd = FactKey::Paths(PathKey::Path("/srv/a:b c\n".into()));
    assert_eq!(
        parse(
            &odd,
            "directory:0:root:root:755:/srv\nsymbolic link:0:root:root:777:/srv/a:b c\n\n"
        )
        .unwrap(),
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::Symlink,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o777
        }))
    );
}

#[test]
fn content_output_parses() {
    let key = FactKey::Paths(PathKey::Content("/etc/x".into()));
    assert_eq!(
        parse(&key, "absent\n").unwrap(),
        Fact::Paths(PathFact::Content(None))
    );
    assert_eq!(
        parse(&key, "present\n").unwrap(),
        Fact::Paths(PathFact::Content(Some(vec![])))
    );
    assert_eq!(
        parse(&key, "present\naGVs\nbG8K\n").unwrap(),
        Fact::Paths(PathFact::Content(Some(b"hello\n".to_vec())))
    );
}

#[test]
fn user_output_parses() {
    let key = FactKey::Accounts(AccountKey::User("deploy".into()));
    let output = "deploy:x:1000:1000::/home/deploy:/bin/bash\ndeploy sudo adm deploy\n";
    assert_eq!(
        parse(&key, output).unwrap(),
        Fact::Accounts(AccountFact::User(Some(UserInfo {
            uid: Some(1000),
            home: "/home/deploy".into(),
            shell: "/bin/bash".into(),
            primary_group: "deploy".into(),
            groups: vec!["adm".into(), "sudo".into()],
        })))
    );
    assert_eq!(
        parse(&key, "\n\n").unwrap(),
        Fact::Accounts(AccountFact::User(None))
    );
    // Deleted between `getent` and `id`.
    let Fact::Accounts(AccountFact::User(Some(vanished))) =
        parse(&key, "deploy:x:1000:1000::/home/deploy:/bin/bash\n\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (vanished.primary_group, vanished.groups),
        (String::new(), vec![])
    );
}

#[test]
fn unit_output_parses() {
    let output =
        "LoadState=loaded\nActiveState=active\nNeedDaemonReload=no\nUnitFileState=enabled\n";
    let Fact::Systemd(SystemdFact::Unit(state)) = parse(&system_unit("a.service"), output).unwrap()
    else {
        panic!()
    };
    assert!(state.exists() && state.is_active() && state.is_enabled());
    assert!(!state.need_daemon_reload);
    let missing =
        "LoadState=not-found\nActiveState=inactive\nNeedDaemonReload=no\nUnitFileState=\n";
    let Fact::Systemd(SystemdFact::Unit(state)) =
        parse(&system_unit("a.service"), missing).unwrap()
    else {
        panic!()
    };
    assert!(!state.exists());
    let user_key = FactKey::Systemd(SystemdKey::Unit(UnitRef {
        manager: Manager::User("deploy".into()),
        name: "a.service".into(),
    }));
    let Fact::Systemd(SystemdFact::Unit(state)) = parse(&user_key, "manager=down\n").unwrap()
    else {
        panic!()
    };
    assert_eq!(state.manager, ManagerState::Down);
}

/// Runs the probe for `deploy`'s `sidekiq.service` in `sh`, with `id`, `getent`,
/// `systemctl` and `runuser` replaced by scripts that act out a host's state.
fn probe_user_unit(manager: &str, show: &str) -> UnitState {
    // Unique per call: tests run in parallel threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("converge-probe-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".config/systemd/user/default.target.wants")).unwrap();
    std::fs::write(home.join(".config/systemd/user/sidekiq.service"), "").unwrap();
    std::os::unix::fs::symlink(
        "../sidekiq.service",
        home.join(".config/systemd/user/default.target.wants/sidekiq.service"),
    )
    .unwrap();
    let fakes = [
        ("id", "echo 1000".to_owned()),
        (
            "getent",
            format!("echo deploy:x:1000:1000::{}:/bin/sh", home.display()),
        ),
        ("systemctl", format!("echo {manager}")),
        ("runuser", show.to_owned()),
    ];
    for (name, body) in fakes {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let key = FactKey::Systemd(SystemdKey::Unit(UnitRef {
        manager: Manager::User("deploy".into()),
        name: "sidekiq.service".into(),
    }));
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(key.probe())
        .env("PATH", path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    match parse(&key, &String::from_utf8(output.stdout).unwrap()).unwrap() {
        Fact::Systemd(SystemdFact::Unit(state)) => state,
        other => panic!("{other:?}"),
    }
}

#[test]
fn user_unit_probe_reads_a_running_manager() {
    let state = probe_user_unit(
        "active",
        "printf 'LoadState=loaded\\nActiveState=active\\nUnitFileState=enabled\\nNeedDaemonReload=no\\n'",
    );
    assert_eq!(state.manager, ManagerState::Running);
    assert!(state.exists() && state.is_active() && state.is_enabled());
}

#[test]
fn user_unit_probe_asks_the_manager_as_its_user_through_its_runtime_dir() {
    let state = probe_user_unit(
        "active",
        r#"printf 'LoadState=loaded\nActiveState=%s\n' "$XDG_RUNTIME_DIR $*""#,
    );
    assert_eq!(
        state.active,
        "/run/user/1000 -u deploy -- systemctl --user show -p LoadState -p ActiveState -p UnitFileState -p NeedDaemonReload -- sidekiq.service"
    );
}

#[test]
fn user_unit_probe_counts_a_manager_that_stops_answering_as_down() {
    // Lingering was just turned off: systemd still lists the manager as active
    // for a moment, but it no longer answers.
    let state = probe_user_unit("active", "echo 'Failed to connect to bus' >&2; exit 1");
    assert_eq!(state.manager, ManagerState::Down);
    assert!(state.is_enabled(), "{state:?}");
    for starting_or_stopping in ["activating", "deactivating", "inactive"] {
        let state = probe_user_unit(starting_or_stopping, "exit 99");
        assert_eq!(state.manager, ManagerState::Down, "{starting_or_stopping}");
    }
}

#[test]
fn batch_round_trip() {
    let keys = vec![
        FactKey::Systemd(SystemdKey::Linger("deploy".into())),
        FactKey::Accounts(AccountKey::Group("deploy".into())),
    ];
    let script = batch_script(&keys, "n0nce");
    assert!(script.contains("::converge:n0nce:0::"));
    let output =
        "::converge:n0nce:0::\nyes\n::converge:n0nce:1::\ndeploy:x:1000:\n::converge:n0nce:end::\n";
    let facts = split_batch(&keys, "n0nce", output).unwrap();
    assert_eq!(facts[0].1, Fact::Systemd(SystemdFact::Linger(true)));
    assert_eq!(
        facts[1].1,
        Fact::Accounts(AccountFact::Group(Some(GroupInfo { gid: Some(1000) })))
    );
}

#[test]
fn batch_cut_short_is_an_error() {
    let keys = vec![
        FactKey::Systemd(SystemdKey::Linger("a".into())),
        FactKey::Systemd(SystemdKey::Linger("b".into())),
    ];
    let output = "::converge:n:0::\nyes\n::converge:n:1::\n";
    assert_eq!(
        split_batch(&keys, "n", output).unwrap_err(),
        FactError::Truncated {
            key: "linger for b".into()
        }
    );
}

/// Runs the batch script for `keys` in `shell` and cuts its output apart.
fn run_batch(shell: &str, keys: &[FactKey], nonce: &str) -> Vec<(FactKey, Fact)> {
    let output = std::process::Command::new(shell)
        .arg("-c")
        .arg(batch_script(keys, nonce))
        .output()
        .unwrap();
    split_batch(keys, nonce, &String::from_utf8(output.stdout).unwrap()).unwrap()
}

#[test]
fn one_stat_gives_every_path_the_facts_of_its_own_probe() {
    let dir = std::env::temp_dir().join(format!("converge-stat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).unwrap();
    for name in [
        "a:b c",
        "it's *",
        "back\\slash",
        "tab\there",
        "line\nbreak",
        "-dash",
    ] {
        std::fs::write(dir.join(name), "").unwrap();
    }
    std::os::unix::fs::symlink("nowhere", dir.join("dangling")).unwrap();
    let path = |name: &str| format!("{}/{name}", dir.display());
    // Missing paths between present ones, names that hold the `:` separating
    // stat's fields, a name another one starts or ends with, the same path twice,
    // and a newline, which takes the path out of the shared `stat`.
    let keys: Vec<FactKey> = [
        "gone",
        "a",
        "b c",
        "a:b c",
        "a:b",
        "it's *",
        "line\nbreak",
        "back\\slash",
        "tab\there",
        "-dash",
        "dangling",
        "a",
        "gone too",
    ]
    .into_iter()
    .map(|name| FactKey::Paths(PathKey::Path(path(name))))
    .chain([
        FactKey::Systemd(SystemdKey::Linger("converge-nobody".into())),
        FactKey::Paths(PathKey::Path(path("a/."))),
    ])
    .collect();
    let script = batch_script(&keys, "n");
    assert_eq!(
        script.matches("converge_stat=\"$(stat ").count(),
        1,
        "{script}"
    );
    let shells: Vec<&str> = ["sh", "bash"]
        .into_iter()
        .filter(|shell| {
            std::process::Command::new(shell)
                .arg("-c")
                .arg(":")
                .status()
                .is_ok()
        })
        .collect();
    for shell in shells {
        let facts = run_batch(shell, &keys, "n");
        for (key, fact) in &facts {
            let own = std::process::Command::new(shell)
                .arg("-c")
                .arg(key.probe())
                .env("LC_ALL", "C")
                .output()
                .unwrap();
            let expected = parse(key, &String::from_utf8(own.stdout).unwrap()).unwrap();
            assert_eq!(*fact, expected, "{shell}: {key}");
        }
        let kinds: Vec<PathKind> = facts
            .iter()
            .filter_map(|(_, fact)| match fact {
                Fact::Paths(PathFact::Path(state)) => Some(state.kind),
                _ => None,
            })
            .collect();
        let (d, f, m, l) = (
            PathKind::Directory,
            PathKind::File,
            PathKind::Missing,
            PathKind::Symlink,
        );
        assert_eq!(kinds, [m, d, m, f, m, f, f, f, f, f, l, d, m, d], "{shell}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn system_probe_reads_the_host_name() {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(FactKey::System.probe())
        .output()
        .unwrap();
    let Fact::System(info) =
        parse(&FactKey::System, &String::from_utf8(output.stdout).unwrap()).unwrap()
    else {
        panic!()
    };
    let uname = std::process::Command::new("uname")
        .arg("-n")
        .output()
        .unwrap();
    assert_eq!(
        info.hostname,
        String::from_utf8(uname.stdout).unwrap().trim_end()
    );
    assert!(!info.os.is_empty());
    assert!(!info.systemctl.is_empty() || info.systemd_version.is_none());
}

#[test]
fn system_output_names_the_sudo_flavour_and_the_tools() {
    let head = "h\ndebian\n13\n";
    let parsed = |rest: &str| match parse(&FactKey::System, &format!("{head}{rest}")).unwrap() {
        Fact::System(info) => info,
        other => panic!("{other:?}"),
    };
    let info = parsed("systemd=257\nsudo=/usr/bin/sudo\nsudo_version=Sudo version 1.9.16p2\nvisudo=/usr/sbin/visudo\nsystemctl=/bin/systemctl\nsystemctl=/usr/bin/systemctl\n");
    assert_eq!(info.systemd_version, Some(257));
    assert_eq!(
        info.sudo,
        Some(Sudo {
            path: "/usr/bin/sudo".into(),
            flavour: "sudo".into(),
            version: "1.9.16p2".into()
        })
    );
    assert_eq!(info.visudo.as_deref(), Some("/usr/sbin/visudo"));
    assert_eq!(info.systemctl, ["/bin/systemctl", "/usr/bin/systemctl"]);
    let rs = parsed("systemd=257\nsudo=/usr/bin/sudo-rs\nsudo_version=sudo-rs 0.2.5\nvisudo=/usr/bin/visudo-rs\n");
    assert_eq!(rs.sudo.as_ref().unwrap().flavour, "sudo-rs");
    assert_eq!(rs.sudo.as_ref().unwrap().version, "0.2.5");
    let none = parsed("systemd=\n");
    assert_eq!(
        (none.sudo, none.visudo, none.systemd_version),
        (None, None, None)
    );
}

#[test]
fn batch_script_runs_in_sh() {
    let keys = vec![
        FactKey::Paths(PathKey::Path("/".into())),
        FactKey::Paths(PathKey::Path("/nonexistent/converge".into())),
        FactKey::Paths(PathKey::Content("/nonexistent/converge".into())),
        FactKey::Commands(CommandKey::Probe("exit 3".into())),
    ];
    let script = batch_script(&keys, "t");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let facts = split_batch(&keys, "t", &String::from_utf8(output.stdout).unwrap()).unwrap();
    assert!(matches!(
        &facts[0].1,
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::Directory,
            ..
        }))
    ));
    assert_eq!(
        facts[1].1,
        Fact::Paths(PathFact::Path(PathState::missing()))
    );
    assert_eq!(facts[2].1, Fact::Paths(PathFact::Content(None)));
    assert_eq!(facts[3].1, Fact::Commands(CommandFact::Probe(3)));
}

#[test]
fn sudo_check_output_parses() {
    let key = FactKey::Sudo(SudoKey::Refused {
        user: "deploy".into(),
        runas: "root".into(),
        commands: vec!["/bin/systemctl restart sidekiq".into()],
    });
    assert_eq!(
        parse(&key, "allowed\n").unwrap(),
        Fact::Sudo(SudoFact::Refused(None))
    );
    assert_eq!(
        parse(&key, "refused:/bin/systemctl restart sidekiq\n").unwrap(),
        Fact::Sudo(SudoFact::Refused(Some(
            "/bin/systemctl restart sidekiq".into()
        )))
    );
    assert!(parse(&key, "sudo: unknown user\n").is_err());
}

#[test]
fn forgetting_a_tree_keeps_siblings() {
    let mut store = FactStore::default();
    store.insert(
        FactKey::Paths(PathKey::Path("/opt/app".into())),
        Fact::Paths(PathFact::Path(PathState::missing())),
    );
    store.insert(
        FactKey::Paths(PathKey::Path("/opt/app/x".into())),
        Fact::Paths(PathFact::Path(PathState::missing())),
    );
    store.insert(
        FactKey::Paths(PathKey::Path("/opt/apple".into())),
        Fact::Paths(PathFact::Path(PathState::missing())),
    );
    store.forget(&Touch::Tree("/opt/app".into()));
    assert!(!store.has(&FactKey::Paths(PathKey::Path("/opt/app/x".into()))));
    assert!(store.has(&FactKey::Paths(PathKey::Path("/opt/apple".into()))));
}
