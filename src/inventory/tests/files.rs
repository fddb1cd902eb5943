use super::*;

#[test]
fn format_detection() {
    let yaml_file = |name: &str, text: &str| is_yaml(Path::new(name), text);
    assert!(yaml_file("hosts.yml", "[web]\n"));
    assert!(yaml_file("hosts.YAML", ""));
    assert!(yaml_file("hosts.json", "{\"all\": {}}"));
    assert!(yaml_file("inventory", "# c\n\nall:\n  hosts:\n"));
    assert!(yaml_file("inventory", "---\nall:\n"));
    assert!(yaml_file("inventory", "{\n\"all\": {}}\n"));
    assert!(yaml_file("inventory", "all: {hosts: {h: }}\n"));
    assert!(!yaml_file("inventory", "; c\n[web]\nh1\n"));
    assert!(!yaml_file("inventory", "h1\n"));
    assert!(!yaml_file("inventory", "h1:2222 user=x\n"));
    assert!(!yaml_file("inventory", "h1 ansible_host=10.0.0.1\n"));
    assert!(!yaml_file("inventory", "h1 motd=\"note: hi\"\n"));
    assert!(!yaml_file("inventory.ini", ""));
}

#[test]
fn load_from_files_host_lists_and_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let playbook_dir = dir.path();

    let error = Inventory::load(None, playbook_dir).expect_err("no inventory");
    assert_eq!(
        error.to_string(),
        format!(
            "no inventory: pass -i, or create inventory.yml or inventory in {}",
            playbook_dir.display()
        )
    );
    assert_eq!(
        InventoryError::NoDefault {
            dir: PathBuf::new()
        }
        .to_string(),
        "no inventory: pass -i, or create inventory.yml or inventory in ."
    );

    std::fs::write(playbook_dir.join("inventory"), "[web]\nini1\n").expect("write");
    let inventory = Inventory::load(None, playbook_dir).expect("INI default");
    assert_eq!(all_names(&inventory), ["ini1"]);

    std::fs::write(
        playbook_dir.join("inventory.yml"),
        "web:\n  hosts:\n    yml1:\n",
    )
    .expect("write");
    let inventory = Inventory::load(None, playbook_dir).expect("YAML default");
    assert_eq!(all_names(&inventory), ["yml1"]);

    let explicit = playbook_dir.join("other");
    std::fs::write(&explicit, "all:\n  hosts:\n    o1:\n").expect("write");
    let spec = explicit.to_str().expect("UTF-8 path");
    let inventory = Inventory::load(Some(spec), Path::new("/nonexistent")).expect("file");
    assert_eq!(all_names(&inventory), ["o1"]);

    let inventory = Inventory::load(Some("a1,a2:2022"), playbook_dir).expect("host list");
    assert_eq!(all_names(&inventory), ["a1", "a2"]);

    let missing = playbook_dir.join("missing");
    let spec = missing.to_str().expect("UTF-8 path");
    assert_eq!(
        Inventory::load(Some(spec), playbook_dir)
            .expect_err("missing")
            .to_string(),
        format!(
            "inventory {spec} does not exist (to target a single host, write `-i {spec},` \
                 with a trailing comma)"
        )
    );

    // A directory is every inventory file in it, in name order.
    let inventory = Inventory::load(Some(playbook_dir.to_str().expect("UTF-8")), playbook_dir)
        .expect("a directory");
    assert_eq!(all_names(&inventory), ["ini1", "yml1", "o1"]);

    let bad = playbook_dir.join("bad.yaml");
    std::fs::write(&bad, "all:\n  hostz:\n").expect("write");
    assert_eq!(
        Inventory::from_file(&bad).expect_err("bad").to_string(),
        format!(
            "{}:2:3: all: unknown field `hostz`, expected one of `hosts`, `vars`, `children`",
            bad.display()
        )
    );
}

/// Writes `files` (path relative to `dir`, content) into `dir`.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
}

const PRODUCTION: &str = "\
# production, as an Ansible user keeps it
bastion ansible_host=203.0.113.10

[web]
web[01:03]

[db]
db1 ansible_host=10.0.0.9 role=ini-host

[prod:children]
web
db

[web:vars]
tier=web-ini
color=ini

[prod:vars]
env=prod-ini
ntp=ini

[all:vars]
color=all-ini
ansible_user=deploy
";

#[test]
fn group_and_host_vars_directories_follow_ansible_precedence() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_tree(
        dir.path(),
        &[
            ("production", PRODUCTION),
            (
                "group_vars/all.yml",
                "color: all-dir\nntp: all-dir\nenv: all-dir\n",
            ),
            ("group_vars/prod/10-main.yml", "env: prod-dir\n"),
            ("group_vars/prod/20-more.yaml", "ntp: prod-dir\n"),
            ("group_vars/prod/notes.md", "not: [vars"),
            ("group_vars/prod/.hidden.yml", "env: hidden\n"),
            ("group_vars/prod/old.yml~", "env: backup\n"),
            ("group_vars/web", "---\ntier: web-dir\n"),
            ("group_vars/staging.yml", "env: staging\n"),
            (
                "host_vars/web02.yml",
                "tier: host-dir\nansible_port: 2202\n",
            ),
            ("host_vars/db1.json", "{\"role\": \"dir-host\"}"),
            ("host_vars/bastion.yml", ""),
        ],
    );
    let inventory = Inventory::from_file(&dir.path().join("production")).expect("valid");
    assert_eq!(
        all_names(&inventory),
        ["bastion", "web01", "web02", "web03", "db1"]
    );
    let vars = |host: &str| inventory.host(host).expect("host").vars.clone();
    let web01 = vars("web01");
    // group_vars/ outrank every group variable written in the inventory file,
    // group_vars/all included: Ansible's order, surprising as it is.
    assert_eq!(web01["color"], json!("all-dir"));
    assert_eq!(web01["tier"], json!("web-dir"));
    assert_eq!(web01["env"], json!("prod-dir"));
    assert_eq!(web01["ntp"], json!("prod-dir"));
    assert_eq!(web01["ansible_user"], json!("deploy"));
    let web02 = vars("web02");
    assert_eq!(web02["tier"], json!("host-dir"));
    let target = env_target(inventory.host("web02").expect("host")).expect("valid");
    assert_eq!((target.port, target.user.as_str()), (2202, "deploy"));
    // host_vars/ outrank the inventory file's host variables.
    assert_eq!(vars("db1")["role"], json!("dir-host"));
    assert_eq!(vars("db1")["env"], json!("prod-dir"));
    // A group defined nowhere in the inventory is never applied.
    assert!(inventory
        .hosts()
        .all(|host| host.vars["env"] != json!("staging")));
    assert_eq!(vars("bastion")["env"], json!("all-dir"));
}

#[test]
fn vars_files_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_tree(
        dir.path(),
        &[
            ("hosts", "[web]\nweb1\n"),
            ("group_vars/web.yml", "- a\n- b\n"),
        ],
    );
    let error = Inventory::from_file(&dir.path().join("hosts"))
        .expect_err("a list is not variables")
        .to_string();
    let file = dir.path().join("group_vars/web.yml");
    assert_eq!(
        error,
        format!(
            "{}:1:1: invalid type: sequence, expected a map",
            file.display()
        )
    );
    write_tree(
        dir.path(),
        &[("group_vars/web.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n")],
    );
    let error = Inventory::from_file(&dir.path().join("hosts"))
        .expect_err("vault")
        .to_string();
    assert_eq!(
        error,
        format!(
            "{}: the file is encrypted with ansible-vault, which converge cannot read",
            file.display()
        )
    );
}

#[test]
fn inventory_directories_read_every_source_and_their_vars() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_tree(
        dir.path(),
        &[
            ("inventory/01-hosts", "[app]\napp[1:2]\n"),
            ("inventory/02-more.yml", "app:\n  hosts:\n    app3:\n"),
            ("inventory/03-vars", "[app:vars]\nport=2222\n"),
            ("inventory/README.md", "# not an inventory [at all"),
            ("inventory/ansible.ini", "[ignored]\nnope\n"),
            ("inventory/group_vars/app.yml", "user: ops\n"),
        ],
    );
    let inventory = Inventory::load(None, dir.path()).expect("default directory");
    assert_eq!(all_names(&inventory), ["app1", "app2", "app3"]);
    let target = env_target(inventory.host("app3").expect("host")).expect("valid");
    assert_eq!((target.port, target.user.as_str()), (2222, "ops"));
}
