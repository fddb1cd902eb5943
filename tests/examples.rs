//! Every example playbook and every YAML snippet in the README is valid: it parses, and
//! every task renders and validates for a host of each group it targets. No host is
//! contacted (`--syntax-check`).

mod fleet;
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use support::Converge;

const GROUPS: &[&str] = &["app", "workers", "pis", "control", "all_hosts"];

fn inventory(dir: &Path) -> PathBuf {
    let mut yaml =
        String::from("all:\n  vars:\n    sidekiq_exec: /bin/sleep infinity\n  children:\n");
    for (index, group) in GROUPS.iter().enumerate() {
        let _ = write!(
            yaml,
            "    {group}:\n      hosts:\n        {group}{index}: {{ host: 127.0.0.1, port: 1 }}\n"
        );
    }
    let path = dir.join("inventory.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn syntax_check(playbook: &Path, inventory: &Path) {
    let output = Converge::new()
        .arg(playbook)
        .arg("-i")
        .arg(inventory)
        .arg("--syntax-check")
        .output();
    assert!(
        output.status.success(),
        "{} does not pass --syntax-check:\n{}{}",
        playbook.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_example_playbook_passes_syntax_check() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("playbooks")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "yml") {
            syntax_check(&path, &inventory);
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn readme_playbook_snippets_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = inventory(dir.path());
    // Snippets referring to templates find them beside the example playbooks.
    let templates = root.join("playbooks/templates");
    std::os::unix::fs::symlink(&templates, dir.path().join("templates")).unwrap();
    let mut checked = 0;
    for (index, block) in readme.split("```yaml\n").skip(1).enumerate() {
        let snippet = block.split("```").next().unwrap();
        if !snippet.trim_start().starts_with("- ") {
            continue; // an inventory, not a playbook
        }
        let path = dir.path().join(format!("readme-{index}.yml"));
        std::fs::write(&path, snippet).unwrap();
        syntax_check(&path, &inventory);
        checked += 1;
    }
    assert!(checked >= 1, "no playbook snippet found in README.md");
}
