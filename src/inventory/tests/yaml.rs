use super::*;

const SITE: &str = "
all:
  vars:
    tier: base
    ntp: pool.ntp.org
  hosts:
    bastion:
      ansible_host: 203.0.113.1
  children:
    app:
      vars:
        tier: app
        port: 2200
      hosts:
        app1:
        app2:
          tier: special
        app3:
      children:
        app_eu:
          vars:
            tier: eu
          hosts:
            app2:
            app4:
    db:
      hosts:
        db1:
          port: 5022
staging:
  hosts:
    app3:
    db1:
";

#[test]
fn yaml_hosts_keep_first_appearance_order() {
    let inventory = yaml(SITE);
    assert_eq!(
        all_names(&inventory),
        ["bastion", "app1", "app2", "app3", "app4", "db1"]
    );
}

#[test]
fn yaml_groups_include_parents_all_and_ungrouped() {
    let inventory = yaml(SITE);
    let groups = |name: &str| inventory.host(name).expect("host").groups.clone();
    assert_eq!(groups("bastion"), ["all", "ungrouped"]);
    assert_eq!(groups("app1"), ["all", "app"]);
    assert_eq!(groups("app2"), ["all", "app", "app_eu"]);
    assert_eq!(groups("app3"), ["all", "app", "staging"]);
    assert_eq!(groups("app4"), ["all", "app", "app_eu"]);
    assert_eq!(groups("db1"), ["all", "db", "staging"]);
}

#[test]
fn yaml_vars_precedence_all_then_parent_then_child_then_host() {
    let inventory = yaml(SITE);
    let var = |host: &str, name: &str| inventory.host(host).expect("host").vars[name].clone();
    assert_eq!(var("bastion", "tier"), json!("base"));
    assert_eq!(var("app1", "tier"), json!("app"));
    assert_eq!(var("app4", "tier"), json!("eu"));
    // Host vars beat the deeper group's.
    assert_eq!(var("app2", "tier"), json!("special"));
    assert_eq!(var("app2", "port"), json!(2200));
    assert_eq!(var("db1", "ntp"), json!("pool.ntp.org"));
    assert_eq!(var("db1", "port"), json!(5022));
}

#[test]
fn yaml_targets_use_aliases_and_defaults() {
    let inventory = yaml(SITE);
    let bastion = target(inventory.host("bastion").expect("host")).expect("target");
    assert_eq!(
        bastion,
        Target {
            name: "bastion".into(),
            address: "203.0.113.1".into(),
            port: 22,
            user: "alice".into(),
            identity_file: None,
            connection: Connection::Ssh,
            host_key_checking: HostKeyChecking::Strict,
            ssh: SshOptions::default(),
        }
    );
    let app1 = target(inventory.host("app1").expect("host")).expect("target");
    assert_eq!((app1.address.as_str(), app1.port), ("app1", 2200));
}

#[test]
fn yaml_same_depth_groups_apply_in_name_order() {
    let inventory = yaml(
        "
zeta:
  vars: {color: zeta}
  hosts: {h1: }
alpha:
  vars: {color: alpha, size: 1}
  hosts: {h1: }
",
    );
    let host = inventory.host("h1").expect("host");
    assert_eq!(host.groups, ["all", "alpha", "zeta"]);
    assert_eq!(host.vars["color"], json!("zeta"));
    assert_eq!(host.vars["size"], json!(1));
}

#[test]
fn yaml_depth_is_the_longest_path_from_all() {
    // `deep` is both a direct child of `all` and a grandchild through `mid`, so it
    // sits below `mid` and overrides it.
    let inventory = yaml(
        "
all:
  children:
    deep:
      vars: {v: deep}
    mid:
      vars: {v: mid}
      children:
        deep:
          hosts: {h: }
",
    );
    let host = inventory.host("h").expect("host");
    assert_eq!(host.groups, ["all", "mid", "deep"]);
    assert_eq!(host.vars["v"], json!("deep"));
}

#[test]
fn yaml_repeated_group_and_host_definitions_merge() {
    let inventory = yaml(
        "
web:
  vars: {a: 1}
  hosts:
    w1: {x: 1, y: 1}
db:
  hosts:
    w1: {y: 2}
web:
  vars: {b: 2}
",
    );
    let host = inventory.host("w1").expect("host");
    assert_eq!(host.groups, ["all", "db", "web"]);
    assert_eq!(host.vars["a"], json!(1));
    assert_eq!(host.vars["b"], json!(2));
    assert_eq!(host.vars["x"], json!(1));
    assert_eq!(host.vars["y"], json!(2));
}

#[test]
fn yaml_ranges_expand_with_padding() {
    let inventory = yaml(
        "
web:
  hosts:
    web[08:11]:
      role: web
    db-[a:c].example.com:
    n[0:6:3]:
",
    );
    assert_eq!(
        all_names(&inventory),
        [
            "web08",
            "web09",
            "web10",
            "web11",
            "db-a.example.com",
            "db-b.example.com",
            "db-c.example.com",
            "n0",
            "n3",
            "n6"
        ]
    );
    assert_eq!(
        inventory.host("web10").expect("host").vars["role"],
        json!("web")
    );
}

#[test]
fn yaml_values_keep_their_types() {
    let inventory = yaml(
        "
all:
  hosts:
    h:
      list: [1, two]
      map: {k: v}
      flag: true
      ratio: 0.5
      nothing: ~
      1: numeric key
",
    );
    let vars = &inventory.host("h").expect("host").vars;
    assert_eq!(vars["list"], json!([1, "two"]));
    assert_eq!(vars["map"], json!({"k": "v"}));
    assert_eq!(vars["flag"], json!(true));
    assert_eq!(vars["ratio"], json!(0.5));
    assert_eq!(vars["nothing"], Value::Null);
    assert_eq!(vars["1"], json!("numeric key"));
}

#[test]
fn yaml_empty_documents_give_an_empty_inventory() {
    assert!(yaml("").hosts().next().is_none());
    assert!(yaml("# nothing yet\n").hosts().next().is_none());
    assert!(yaml("all:\n").hosts().next().is_none());
    assert!(yaml("---\nall:\n  hosts:\n").hosts().next().is_none());
}

#[test]
fn yaml_numeric_host_names_are_names() {
    let inventory = yaml("all:\n  hosts:\n    10.0.0.1:\n    42:\n");
    assert_eq!(all_names(&inventory), ["10.0.0.1", "42"]);
}

#[test]
fn yaml_errors_name_file_line_and_column() {
    assert_eq!(
        yaml_err("all:\n  hosts:\n    web1:\n  web:\n    hosts: {}\n"),
        "inv.yml:4:3: all: unknown field `web`, expected one of `hosts`, `vars`, `children`"
    );
    assert_eq!(
            yaml_err("all:\n  hosts:\n    web 1:\n"),
            "inv.yml:3:5: all.hosts: invalid host name \"web 1\": only letters, digits, '.', '-' and '_' \
             are allowed"
        );
    assert_eq!(
            yaml_err("all:\n  children:\n    web/servers:\n"),
            "inv.yml:3:5: all.children: invalid group name \"web/servers\": only letters, digits, '.', '-' \
             and '_' are allowed"
        );
    assert_eq!(
        yaml_err("all:\n  hosts:\n    web[3:1]:\n"),
        "inv.yml:3:5: all.hosts: invalid host range in \"web[3:1]\": the start is after the end"
    );
    assert_eq!(
        yaml_err("all:\n  hosts:\n    - web1\n"),
        "inv.yml:3:5: all.hosts: invalid type: sequence, expected a map"
    );
    assert_eq!(
        yaml_err("all:\n  hosts:\n    web1: web2\n"),
        "inv.yml:3:11: all.hosts.web1: invalid type: string \"web2\", expected a map"
    );
    assert_eq!(
        yaml_err("all:\n  hosts:\n   web1:\n  - x\n"),
        "inv.yml:4:3: did not find expected key, while parsing a block mapping at line 2 \
             column 3"
    );
    assert_eq!(
        yaml_err("all:\n\thosts:\n"),
        "inv.yml:2:1: found character that cannot start any token, while scanning for the \
             next token"
    );
    assert_eq!(
        yaml_err("- web1\n"),
        "inv.yml:1:1: invalid type: sequence, expected a map"
    );
    assert_eq!(
        yaml_err("all: {}\n---\nweb: {}\n"),
        "inv.yml: deserializing from YAML containing more than one document is not supported"
    );
}

#[test]
fn yaml_error_location_is_exposed() {
    let error =
        Inventory::parse_yaml("all:\n  hostz:\n", Path::new("i.yml")).expect_err("unknown key");
    let InventoryError::Yaml { line, column, .. } = error else {
        panic!("expected a YAML error, got {error:?}");
    };
    assert_eq!((line, column), (2, 3));
}

#[test]
fn children_cycles_are_errors() {
    assert_eq!(
        yaml_err("a:\n  children:\n    b:\n      children:\n        a:\n"),
        "inv.yml: group children form a cycle: a -> b -> a"
    );
    assert_eq!(
        yaml_err("web:\n  children:\n    all:\n"),
        "inv.yml: group children form a cycle: all -> web -> all"
    );
    assert_eq!(
        ini_err("[a:children]\na\n"),
        "hosts.ini: group children form a cycle: a -> a"
    );
}
