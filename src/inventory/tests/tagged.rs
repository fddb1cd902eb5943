use super::*;

fn templates(inventory: &Inventory, host: &str) -> Vec<(String, String)> {
    inventory
        .host(host)
        .expect("host")
        .templates
        .iter()
        .map(|(name, file)| (name.clone(), file.display().to_string()))
        .collect()
}

#[test]
fn a_value_tagged_template_is_a_template_and_untagged_ones_are_data() {
    let inventory = yaml(
        "all:\n  vars:\n    base_dir: /srv\n    app_dir: !template \"{{ base_dir }}/app\"\n    \
         motd: \"{{ base_dir }}\"\n    quiet: !unsafe \"{{ x }}\"\n  hosts:\n    web1:\n",
    );
    let web1 = inventory.host("web1").expect("host");
    assert_eq!(web1.vars["app_dir"], json!("{{ base_dir }}/app"));
    assert_eq!(web1.vars["motd"], json!("{{ base_dir }}"));
    assert_eq!(web1.vars["quiet"], json!("{{ x }}"));
    assert_eq!(
        templates(&inventory, "web1"),
        [("app_dir".to_owned(), "inv.yml".to_owned())]
    );
}

#[test]
fn a_tagged_value_may_be_a_list_or_a_map() {
    let inventory = yaml(
        "all:\n  hosts:\n    web1:\n      dirs: !template [\"{{ a }}\", b]\n      \
         env: !template {HOME: \"{{ home }}\"}\n",
    );
    let web1 = inventory.host("web1").expect("host");
    assert_eq!(web1.vars["dirs"], json!(["{{ a }}", "b"]));
    assert_eq!(web1.vars["env"], json!({"HOME": "{{ home }}"}));
    assert_eq!(web1.templates.len(), 2);
}

#[test]
fn the_level_that_sets_a_variable_last_decides_whether_it_is_a_template() {
    let inventory = yaml(
        "all:\n  vars:\n    a: !template \"{{ x }}\"\n    b: \"{{ x }}\"\n  \
         children:\n    web:\n      vars:\n        a: plain\n        b: !template \"{{ y }}\"\n      \
         hosts:\n        web1:\n        web2:\n          b: \"{{ z }}\"\n",
    );
    assert_eq!(
        templates(&inventory, "web1"),
        [("b".to_owned(), "inv.yml".to_owned())]
    );
    assert!(templates(&inventory, "web2").is_empty());
    assert_eq!(
        inventory.host("web2").expect("host").vars["b"],
        json!("{{ z }}")
    );
}

#[test]
fn group_and_host_vars_files_may_tag_values_and_are_named_as_their_origin() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("hosts.yml"), "web:\n  hosts:\n    web1:\n").expect("write");
    std::fs::create_dir_all(dir.path().join("group_vars")).expect("dir");
    std::fs::create_dir_all(dir.path().join("host_vars")).expect("dir");
    std::fs::write(
        dir.path().join("group_vars/web.yml"),
        "app_dir: !template \"{{ base }}/app\"\nlog_dir: !template \"{{ base }}/log\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("host_vars/web1.yml"),
        "log_dir: /var/log/app\n",
    )
    .expect("write");
    let inventory = Inventory::from_file(&dir.path().join("hosts.yml")).expect("valid");
    let web1 = inventory.host("web1").expect("host");
    assert_eq!(web1.vars["log_dir"], json!("/var/log/app"));
    assert_eq!(
        web1.templates.get("app_dir").map(PathBuf::as_path),
        Some(dir.path().join("group_vars/web.yml").as_path())
    );
    assert!(!web1.templates.contains_key("log_dir"));
}

#[test]
fn misplaced_and_unknown_tags_are_errors_at_their_position() {
    assert_eq!(
        yaml_err("all:\n  vars:\n    a: !vault \"x\"\n"),
        "inv.yml:3:8: all.vars.a: unknown tag `!vault`: an inventory value may be tagged `!template` \
         (render it as a template) or `!unsafe` (data, as every untagged value is)"
    );
    assert_eq!(
        yaml_err("all:\n  hosts:\n    web1:\n      ansible_host: !template \"{{ ip }}\"\n"),
        "inv.yml:4:7: all.hosts.web1: `ansible_host` is a connection setting, which cannot be a `!template` \
         (it is needed before any variable is rendered)"
    );
    let nested = yaml_err("all:\n  vars:\n    a: [!template \"{{ x }}\"]\n");
    assert!(nested.starts_with("inv.yml:3:"), "{nested}");
}

#[test]
fn ini_inventories_refuse_the_template_tag() {
    let expected = "hosts.ini:2: `app_dir`: `!template` is read in YAML only (INI values are \
                    always data); set this variable in a YAML inventory or a group_vars/host_vars \
                    file";
    assert_eq!(ini_err("[web]\nweb1 app_dir=!template\n"), expected);
    assert_eq!(
        ini_err("[web]\nweb1\n[web:vars]\napp_dir=!template \"{{ x }}/app\"\n"),
        expected.replace("hosts.ini:2", "hosts.ini:4")
    );
    // Text that merely starts the same way is data.
    assert_eq!(
        ini("[web]\nweb1 note=!templated\n")
            .host("web1")
            .expect("host")
            .vars["note"],
        json!("!templated")
    );
}
