//! The guides' examples are valid: every playbook snippet in `docs/cookbook.md` and
//! `docs/coming-from-ansible.md` passes `--syntax-check`, and every ssh config snippet in
//! them and in `docs/ssh.md` is read by `-F` without error. No host is contacted.

mod fleet;
mod support;

use support::Converge;

use std::path::Path;
use std::process::Output;

const GUIDES: &[&str] = &[
    "docs/cookbook.md",
    "docs/coming-from-ansible.md",
    "docs/ssh.md",
];

/// The fenced blocks of `text` whose opening fence names `language` ("" for none).
fn blocks(text: &str, language: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<(bool, String)> = None;
    for line in text.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some((wanted, body)) => {
                    if wanted {
                        found.push(body);
                    }
                }
                None => current = Some((info.trim() == language, String::new())),
            }
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        }
    }
    found
}

fn explain(what: &str, output: &Output) -> String {
    format!(
        "{what}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn guide_playbooks_pass_syntax_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        root.join("playbooks/templates"),
        dir.path().join("templates"),
    )
    .unwrap();
    // The application tree the playbooks ship with `copy` (a copy: a symbolic link in
    // place of the tree is refused).
    std::fs::create_dir(dir.path().join("app")).unwrap();
    for entry in std::fs::read_dir(root.join("playbooks/app")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join("app").join(entry.file_name())).unwrap();
    }
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(
        &inventory,
        "all:\n  vars:\n    sidekiq_exec: /bin/sleep infinity\n  children:\n    app:\n      \
         hosts:\n        app1: { host: 127.0.0.1, port: 1 }\n",
    )
    .unwrap();
    let mut checked = 0;
    for guide in GUIDES {
        let text = std::fs::read_to_string(root.join(guide)).unwrap();
        for (index, snippet) in blocks(&text, "yaml").iter().enumerate() {
            let first = snippet.lines().find(|line| !line.starts_with('#'));
            if !first.is_some_and(|line| line.starts_with("- ")) {
                continue; // an inventory or variables, not a playbook
            }
            let path = dir.path().join(format!("guide-{checked}-{index}.yml"));
            std::fs::write(&path, snippet).unwrap();
            let output = Converge::new().arg(&path).run(&[
                "-i",
                inventory.to_str().unwrap(),
                "--syntax-check",
            ]);
            assert!(
                output.status.success(),
                "{}",
                explain(&format!("{guide}, yaml block {index}"), &output)
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} playbook snippets found");
}

#[test]
fn guide_ssh_configs_are_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("site.yml");
    std::fs::write(&playbook, "- hosts: all\n  tasks: []\n").unwrap();
    let mut checked = 0;
    for guide in GUIDES {
        let text = std::fs::read_to_string(root.join(guide)).unwrap();
        for (index, snippet) in blocks(&text, "").iter().enumerate() {
            let body = snippet
                .lines()
                .find(|line| !line.starts_with('#') && !line.trim().is_empty())
                .unwrap_or("");
            if !body.starts_with("Host ") {
                continue;
            }
            let config = dir.path().join(format!("ssh-{checked}.conf"));
            std::fs::write(&config, snippet).unwrap();
            let output = Converge::new().arg(&playbook).run(&[
                "-i",
                "app1,bastion,10.1.0.7,",
                "-F",
                config.to_str().unwrap(),
                "--list-hosts",
            ]);
            assert!(
                output.status.success(),
                "{}",
                explain(&format!("{guide}, block {index}"), &output)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} ssh config snippets found");
}
