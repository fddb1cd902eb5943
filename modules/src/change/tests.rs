//! Each change's command, run against a scratch directory where it touches paths.

use super::*;
use crate::accounts::AccountChange;
use crate::fact::{Manager, PathKind, UnitRef};
use crate::paths::PathChange;
use crate::shell::join;
use crate::systemd::SystemdChange;

#[test]
fn write_file_is_one_script_with_quoted_arguments() {
    let change = Change::Paths(PathChange::WriteFile(FileWrite {
        path: "/etc/sudoers.d/sidekiq".into(),
        content: b"deploy ALL=(root) NOPASSWD: /bin/systemctl restart sidekiq\n".to_vec(),
        before: None,
        owner: Some("root".into()),
        group: Some("root".into()),
        mode: 0o440,
        validator: Some(Validator::Sudoers),
        secret: false,
    }));
    let cmd = change.command();
    assert_eq!(&cmd.argv[..2], ["sh", "-c"]);
    assert_eq!(
        &cmd.argv[3..],
        [
            "converge",
            "/etc/sudoers.d",
            "sidekiq",
            "root",
            "root",
            "0440",
            "sudoers",
            "59"
        ]
    );
    assert!(cmd.stdin.starts_with(b"deploy"));
    assert_eq!(
        change.describe(),
        "create /etc/sudoers.d/sidekiq (validated with visudo)"
    );
}

#[test]
fn user_scope_units_go_through_runuser() {
    let change = Change::Systemd(SystemdChange::Unit {
        unit: UnitRef {
            manager: Manager::User("deploy".into()),
            name: "sidekiq.service".into(),
        },
        action: UnitAction::Restart,
        reload_follows: false,
        verify: None,
    });
    let line = join(&change.command().argv);
    assert!(
        line.ends_with("converge deploy restart -- sidekiq.service"),
        "{line}"
    );
    assert_eq!(change.describe(), "restart sidekiq.service (user deploy)");
}

#[test]
fn hostile_user_name_stays_one_argument() {
    let change = Change::Accounts(AccountChange::AddUser(NewUser {
        name: "x; touch /tmp/pwned".into(),
        system: false,
        uid: None,
        create_home: true,
        home: None,
        shell: None,
        groups: vec![],
    }));
    assert_eq!(
        join(&change.command().argv),
        "useradd --create-home -- 'x; touch /tmp/pwned'"
    );
}

#[test]
fn content_cut_short_never_replaces_the_file() {
    let dir = std::env::temp_dir().join(format!("converge-short-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("target");
    std::fs::write(&path, "old\n").unwrap();
    let change = Change::Paths(PathChange::WriteFile(FileWrite {
        path: path.to_str().unwrap().into(),
        content: b"new content\n".to_vec(),
        before: Some(b"old\n".to_vec()),
        owner: None,
        group: None,
        mode: 0o600,
        validator: None,
        secret: false,
    }));
    let cmd = change.command();
    let mut child = std::process::Command::new(&cmd.argv[0])
        .args(&cmd.argv[1..])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The sender goes away after half the bytes.
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cmd.stdin[..5]).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(70));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cut short (5 of 12 bytes)"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "temporary file left behind"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn write_file_script_is_atomic_and_cleans_up() {
    let dir = std::env::temp_dir().join(format!("converge-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("target");
    std::fs::write(&path, "old\n").unwrap();
    let change = Change::Paths(PathChange::WriteFile(FileWrite {
        path: path.to_str().unwrap().into(),
        content: b"new\n".to_vec(),
        before: Some(b"old\n".to_vec()),
        owner: None,
        group: None,
        mode: 0o600,
        validator: None,
        secret: false,
    }));
    let cmd = change.command();
    let mut child = std::process::Command::new(&cmd.argv[0])
        .args(&cmd.argv[1..])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cmd.stdin).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(leftovers, 1, "temporary file left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs a change's command with `sh` on this machine.
fn run_here(change: &Change) -> std::process::Output {
    let cmd = change.command();
    let mut child = std::process::Command::new(&cmd.argv[0])
        .args(&cmd.argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cmd.stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn scratch(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("converge-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &std::path::Path, content: &str) -> Change {
    Change::Paths(PathChange::WriteFile(FileWrite {
        path: path.to_str().unwrap().into(),
        content: content.as_bytes().to_vec(),
        before: None,
        owner: None,
        group: None,
        mode: 0o640,
        validator: None,
        secret: false,
    }))
}

#[test]
fn a_file_is_written_into_a_setgid_directory() {
    // Debian's /etc/redis is redis's, mode 2770: the private working directory made in
    // it inherits the setgid bit, and is private all the same.
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("setgid");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2770)).unwrap();
    std::fs::write(dir.join("redis.conf"), "port 6379\n").unwrap();
    let output = run_here(&write(&dir.join("redis.conf"), "port 0\n"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("redis.conf")).unwrap(),
        "port 0\n"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "working directory left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_write_never_goes_through_a_symlinked_directory() {
    let dir = scratch("via-link");
    std::fs::create_dir(dir.join("protected")).unwrap();
    std::fs::write(dir.join("protected/keys"), "root's\n").unwrap();
    std::os::unix::fs::symlink(dir.join("protected"), dir.join("home")).unwrap();
    let output = run_here(&write(&dir.join("home/keys"), "attacker's\n"));
    assert_eq!(output.status.code(), Some(77));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}/home is a symbolic link", dir.display())),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("protected/keys")).unwrap(),
        "root's\n"
    );
    assert_eq!(std::fs::read_dir(dir.join("protected")).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlink_at_the_target_is_replaced_not_followed() {
    let dir = scratch("at-link");
    std::fs::write(dir.join("elsewhere"), "keep\n").unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), dir.join("target")).unwrap();
    let output = run_here(&write(&dir.join("target"), "new\n"));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("elsewhere")).unwrap(),
        "keep\n"
    );
    let meta = std::fs::symlink_metadata(dir.join("target")).unwrap();
    assert!(meta.is_file());
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o640
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("target")).unwrap(),
        "new\n"
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "working directory left behind"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directories_and_removals_never_go_through_a_symlinked_directory() {
    let dir = scratch("dirs");
    std::fs::create_dir_all(dir.join("important/data")).unwrap();
    std::os::unix::fs::symlink(dir.join("important"), dir.join("cache")).unwrap();
    let remove = Change::Paths(PathChange::Remove {
        path: format!("{}/cache/data", dir.display()),
        kind: PathKind::Directory,
    });
    assert_eq!(run_here(&remove).status.code(), Some(77));
    assert!(dir.join("important/data").is_dir());
    let create = Change::Paths(PathChange::CreateDirectory {
        path: format!("{}/cache/new/deeper", dir.display()),
        attributes: Attributes::default(),
    });
    assert_eq!(run_here(&create).status.code(), Some(77));
    assert!(!dir.join("important/new").exists());
    let attributes = Change::Paths(PathChange::SetAttributes {
        path: format!("{}/cache/data", dir.display()),
        attributes: Attributes {
            mode: Some(0o700),
            ..Attributes::default()
        },
    });
    assert_eq!(run_here(&attributes).status.code(), Some(77));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directories_are_created_one_component_at_a_time_with_their_attributes() {
    let dir = scratch("mkdir");
    let create = Change::Paths(PathChange::CreateDirectory {
        path: format!("{}//a/./b/c/", dir.display()),
        attributes: Attributes {
            mode: Some(0o750),
            ..Attributes::default()
        },
    });
    let output = run_here(&create);
    assert!(output.status.success(), "{output:?}");
    for sub in ["a", "a/b", "a/b/c"] {
        let meta = std::fs::metadata(dir.join(sub)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
            0o750,
            "{sub}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_files_mode_in_a_shared_directory_changes_on_a_copy() {
    // The scratch directory's parent is world-writable: the file is changed on a
    // copy renamed over it, never by name.
    let dir = scratch("chmod");
    std::fs::write(dir.join("file"), "content\n").unwrap();
    std::fs::write(dir.join("secret"), "secret\n").unwrap();
    let change = Change::Paths(PathChange::SetAttributes {
        path: format!("{}/file", dir.display()),
        attributes: Attributes {
            mode: Some(0o604),
            ..Attributes::default()
        },
    });
    let output = run_here(&change);
    assert!(output.status.success(), "{output:?}");
    let meta = std::fs::symlink_metadata(dir.join("file")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        0o604
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("file")).unwrap(),
        "content\n"
    );
    // A link swapped in for the file: its target keeps its mode.
    std::fs::remove_file(dir.join("file")).unwrap();
    std::fs::set_permissions(
        dir.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.join("secret"), dir.join("file")).unwrap();
    let _ = run_here(&change);
    let meta = std::fs::metadata(dir.join("secret")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        0o600
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "working directory left behind"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
