//! The `copy` module on real hosts: an app tree (a script with its executable bit, a
//! file of bytes that are not UTF-8, nested and empty directories) shipped with the
//! owner asked for, `--check` on the fresh host listing every change the apply then
//! makes, a second run with nothing to do (one remote command), drift (a file edited, a
//! file deleted, extras under `delete: true`) found by `--check` (exit 2) and repaired,
//! and a directory under `dest` that is a user's symbolic link refused, never followed.
//! `file` takes the same non-UTF-8 bytes from its `src`.

mod fleet;
mod support;

use std::os::unix::fs::PermissionsExt as _;

use fleet::{Fleet, TestHost};
use support::{changes_on, converge_json, inventory, refused, stat, tasks_on};

const SCRIPT: &str = "#!/bin/sh\necho running\n";
/// An ELF-like header: bytes no UTF-8 decoder accepts.
const BLOB: &[u8] = &[
    0x7f, b'E', b'L', b'F', 0x02, 0x01, 0xff, 0xfe, 0x00, 0x80, b'\n',
];

const TASKS: &str = "- hosts: app\n  tasks:\n    - name: app tree\n      copy: { src: app, dest: /srv/app, owner: deploy, group: deploy, delete: true }\n    - name: logo\n      file: { path: /srv/logo.bin, src: logo.bin }\n";

/// The tree beside the playbook: `files/app/...`, and `files/logo.bin`.
fn write_tree(fleet: &Fleet) -> String {
    let files = fleet.dir().join("files");
    let app = files.join("app");
    for dir in ["bin", "lib/native", "config", "log"] {
        std::fs::create_dir_all(app.join(dir)).unwrap();
    }
    std::fs::write(app.join("bin/run"), SCRIPT).unwrap();
    std::fs::set_permissions(app.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(app.join("lib/native/blob.bin"), BLOB).unwrap();
    std::fs::write(app.join("config/app.conf"), "workers = 2\n").unwrap();
    std::fs::write(files.join("logo.bin"), BLOB).unwrap();
    let playbook = fleet.dir().join("copy.yml");
    std::fs::write(&playbook, TASKS).unwrap();
    playbook.to_str().unwrap().to_owned()
}

fn sha256(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

fn listing(host: &TestHost) -> String {
    host.ssh_ok("cd /srv/app && find . -mindepth 1 -printf '%y %m %u:%g %P\\n' | sort -k4")
}

#[test]
fn app_trees_are_shipped_with_any_bytes_kept_in_step_and_never_through_a_users_link() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let inventory = inventory(&fleet, "");
    let inventory = inventory.to_str().unwrap();
    let [host] = fleet.hosts() else { panic!() };
    host.ssh_ok("useradd -m deploy");
    let site = write_tree(&fleet);
    let everything = [
        "app tree: create directory /srv/app",
        "app tree: create directory /srv/app/bin",
        "app tree: create directory /srv/app/config",
        "app tree: create directory /srv/app/lib",
        "app tree: create directory /srv/app/lib/native",
        "app tree: create directory /srv/app/log",
        "app tree: create /srv/app/bin/run",
        "app tree: create /srv/app/config/app.conf",
        "app tree: create /srv/app/lib/native/blob.bin",
        "logo: create /srv/logo.bin",
    ];

    // --check on the fresh host lists every change the apply then makes.
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), everything);
    assert_eq!(
        host.ssh_ok("test -e /srv/app && echo there || echo none"),
        "none"
    );
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), everything);
    assert_eq!(
        listing(host),
        [
            "d 755 deploy:deploy bin",
            "f 755 deploy:deploy bin/run",
            "d 755 deploy:deploy config",
            "f 644 deploy:deploy config/app.conf",
            "d 755 deploy:deploy lib",
            "d 755 deploy:deploy lib/native",
            "f 644 deploy:deploy lib/native/blob.bin",
            "d 755 deploy:deploy log",
        ]
        .join("\n")
    );
    assert_eq!(host.ssh_ok("stat -c %U:%G /srv/app"), "deploy:deploy");
    assert_eq!(host.ssh_ok("su deploy -c /srv/app/bin/run"), "running");
    let blob = sha256(BLOB);
    assert_eq!(
        host.ssh_ok("sha256sum /srv/app/lib/native/blob.bin /srv/logo.bin | cut -c1-64"),
        format!("{blob}\n{blob}")
    );

    // Nothing to do the second time, known from hashes in the one batched read.
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");
    assert_eq!(stat(&report, &host.name, "commands"), 1, "{report:#}");

    // Drift: a file edited, a file deleted, the binary changed, extras added. --check
    // finds it all (exit 2), with a text diff and a note for the binary, and changes
    // nothing; apply repairs it; then no drift.
    host.ssh_ok(concat!(
        "echo 'workers = 9' > /srv/app/config/app.conf && rm /srv/app/bin/run && ",
        "printf '\\377\\376' > /srv/app/lib/native/blob.bin && ",
        "echo stale > /srv/app/extra.txt && mkdir -p /srv/app/cache/deep && touch /srv/app/cache/deep/x"
    ));
    let drift = [
        "app tree: create /srv/app/bin/run",
        "app tree: update /srv/app/config/app.conf",
        "app tree: update /srv/app/lib/native/blob.bin",
        "app tree: remove directory /srv/app/cache",
        "app tree: remove regular file /srv/app/extra.txt",
    ];
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), drift);
    let task = &tasks_on(&report, &host.name)[0];
    let diffs = task["diffs"].as_array().unwrap();
    assert!(
        diffs
            .iter()
            .any(|diff| diff["path"] == "/srv/app/config/app.conf"
                && diff["before"] == "workers = 9\n"
                && diff["after"] == "workers = 2\n"),
        "{report:#}"
    );
    assert!(
        task["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|note| note == "binary files differ: /srv/app/lib/native/blob.bin"),
        "{report:#}"
    );
    assert_eq!(host.ssh_ok("cat /srv/app/extra.txt"), "stale");
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(changes_on(&report, &host.name), drift);
    assert_eq!(host.ssh_ok("ls /srv/app"), "bin\nconfig\nlib\nlog");
    assert_eq!(host.ssh_ok("cat /srv/app/config/app.conf"), "workers = 2");
    assert_eq!(host.ssh_ok("stat -c %a /srv/app/bin/run"), "755");
    assert_eq!(
        host.ssh_ok("sha256sum /srv/app/lib/native/blob.bin | cut -c1-64"),
        blob
    );
    let (code, report) = converge_json(&fleet, &[&site, "-i", inventory, "--check"]);
    assert_eq!(code, 0, "{report:#}");
    assert!(changes_on(&report, &host.name).is_empty(), "{report:#}");

    // A directory under dest replaced by the owner's symbolic link to elsewhere: the
    // copy is refused, and nothing is written where the link points.
    host.ssh_ok(concat!(
        "rm -rf /srv/app/lib && mkdir /home/deploy/elsewhere && chown deploy: /home/deploy/elsewhere && ",
        "ln -s /home/deploy/elsewhere /srv/app/lib && chown -h deploy: /srv/app/lib"
    ));
    refused(
        &fleet,
        &[&site, "-i", inventory],
        "/srv/app/lib is a symbolic link; expected a directory",
    );
    assert_eq!(host.ssh_ok("ls -A /home/deploy/elsewhere"), "");
}
