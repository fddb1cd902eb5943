use super::*;
use serde_json::{json, Value};

use super::files::is_yaml;
use super::names::{expand_hosts, NameError};
use crate::ssh_config::Local;
use crate::transport::{Connection, HostKeyChecking, SshOptions, Target};

fn yaml(text: &str) -> Inventory {
    Inventory::parse_yaml(text, Path::new("inv.yml")).expect("valid YAML inventory")
}

fn ini(text: &str) -> Inventory {
    Inventory::parse_ini(text, Path::new("hosts.ini")).expect("valid INI inventory")
}

fn yaml_err(text: &str) -> String {
    Inventory::parse_yaml(text, Path::new("inv.yml"))
        .expect_err("invalid YAML inventory")
        .to_string()
}

fn ini_err(text: &str) -> String {
    Inventory::parse_ini(text, Path::new("hosts.ini"))
        .expect_err("invalid INI inventory")
        .to_string()
}

fn names(hosts: &[&InventoryHost]) -> Vec<String> {
    hosts.iter().map(|host| host.name.clone()).collect()
}

fn all_names(inventory: &Inventory) -> Vec<String> {
    inventory.hosts().map(|host| host.name.clone()).collect()
}

fn target(host: &InventoryHost) -> Result<Target, InventoryError> {
    let settings = host.settings_with(Some(Path::new("/home/alice")))?;
    Ok(Target::new(&host.name, settings, "alice"))
}

/// The target the inventory alone describes, with the defaults of this environment.
fn env_target(host: &InventoryHost) -> Result<Target, InventoryError> {
    Ok(Target::new(
        &host.name,
        host.settings()?,
        &Local::from_env().user,
    ))
}

/// Whether the inventory gave the port, the user and the host key checking itself.
fn given(host: &InventoryHost) -> [bool; 3] {
    let settings = host.settings().expect("valid");
    [
        settings.port.is_some(),
        settings.user.is_some(),
        settings.host_key_checking.is_some(),
    ]
}

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

const INI: &str = r#"
# Ansible-style inventory
bastion ansible_host=203.0.113.1

[web]
web[01:03] role=frontend
web04:2222 ansible_user=deploy   # trailing comment
web05 motd="hello world" mode=0755 count=-3 big=99999999999999999999 empty=

[db]
db-[a:b] ansible_port=5432 primary=false
; a comment
[prod:children]
web
db

[prod:vars]
env = production  # inline comment
tier=prod

[all:vars]
ansible_user=admin
tier = base
quoted = "a # b"
enabled=True

[web:vars]
tier=web
"#;

#[test]
fn ini_hosts_groups_and_order() {
    let inventory = ini(INI);
    assert_eq!(
        all_names(&inventory),
        ["bastion", "web01", "web02", "web03", "web04", "web05", "db-a", "db-b"]
    );
    let groups = |name: &str| inventory.host(name).expect("host").groups.clone();
    assert_eq!(groups("bastion"), ["all", "ungrouped"]);
    assert_eq!(groups("web02"), ["all", "prod", "web"]);
    assert_eq!(groups("db-b"), ["all", "prod", "db"]);
}

#[test]
fn ini_values_are_typed_unless_quoted() {
    let inventory = ini(INI);
    let web05 = &inventory.host("web05").expect("host").vars;
    assert_eq!(web05["motd"], json!("hello world"));
    assert_eq!(web05["mode"], json!("0755"));
    assert_eq!(web05["count"], json!(-3));
    assert_eq!(web05["big"], json!("99999999999999999999"));
    assert_eq!(web05["empty"], json!(""));
    assert_eq!(web05["quoted"], json!("a # b"));
    assert_eq!(web05["enabled"], json!(true));
    assert_eq!(web05["env"], json!("production"));
    let db = &inventory.host("db-a").expect("host").vars;
    assert_eq!(db["primary"], json!(false));
    assert_eq!(db["ansible_port"], json!(5432));
}

#[test]
fn ini_vars_precedence() {
    let inventory = ini(INI);
    let var = |host: &str| inventory.host(host).expect("host").vars["tier"].clone();
    assert_eq!(var("bastion"), json!("base"));
    assert_eq!(var("db-a"), json!("prod"));
    assert_eq!(var("web01"), json!("web"));
    assert_eq!(
        inventory.host("web01").expect("host").vars["role"],
        json!("frontend")
    );
}

#[test]
fn ini_targets() {
    let inventory = ini(INI);
    let web04 = target(inventory.host("web04").expect("host")).expect("target");
    assert_eq!((web04.port, web04.user.as_str()), (2222, "deploy"));
    let web01 = target(inventory.host("web01").expect("host")).expect("target");
    assert_eq!(
        (web01.address.as_str(), web01.port, web01.user.as_str()),
        ("web01", 22, "admin")
    );
    let db = target(inventory.host("db-b").expect("host")).expect("target");
    assert_eq!(db.port, 5432);
    let bastion = target(inventory.host("bastion").expect("host")).expect("target");
    assert_eq!(bastion.address, "203.0.113.1");
}

#[test]
fn ini_quotes_and_escapes() {
    let inventory = ini(
        r#"h1 a='single "q"' b="double \"q\" \\ \n" c=x"y z"w d="true" e="42"
"#,
    );
    let vars = &inventory.host("h1").expect("host").vars;
    assert_eq!(vars["a"], json!("single \"q\""));
    assert_eq!(vars["b"], json!("double \"q\" \\ \\n"));
    assert_eq!(vars["c"], json!("xy zw"));
    assert_eq!(vars["d"], json!("true"));
    assert_eq!(vars["e"], json!("42"));
}

#[test]
fn ini_vars_before_group_definition_and_bom() {
    let inventory = ini("\u{feff}[late:vars]\nx=1\n\n[late]\nh1\n");
    assert_eq!(inventory.host("h1").expect("host").vars["x"], json!(1));
}

#[test]
fn ini_children_defines_the_child_group() {
    let inventory = ini("[parent:children]\nkid\n\n[kid:vars]\nx=1\n[kid]\nh1\n");
    let host = inventory.host("h1").expect("host");
    assert_eq!(host.groups, ["all", "parent", "kid"]);
    assert_eq!(host.vars["x"], json!(1));
    assert!(ini("[parent:children]\nkid\n\n[kid:vars]\nx=1\n")
        .hosts()
        .next()
        .is_none());
}

#[test]
fn ini_host_in_a_group_leaves_ungrouped() {
    let inventory = ini("h1\n[ungrouped:vars]\nu=1\n[web]\nh1\nh2\n[all]\nh3\n");
    let h1 = inventory.host("h1").expect("host");
    assert_eq!(h1.groups, ["all", "web"]);
    assert!(!h1.vars.contains_key("u"));
    let h3 = inventory.host("h3").expect("host");
    assert_eq!(h3.groups, ["all", "ungrouped"]);
    assert_eq!(h3.vars["u"], json!(1));
}

#[test]
fn ini_errors_name_file_and_line() {
    assert_eq!(
        ini_err("[web\nh1\n"),
        "hosts.ini:1: malformed section header `[web`: expected [group], [group:vars] or \
             [group:children]"
    );
    assert_eq!(
        ini_err("h0\n\n[web:hosts]\nh1\n"),
        "hosts.ini:3: unknown section type `hosts` in `[web:hosts]`: expected vars or children"
    );
    assert_eq!(
        ini_err("[web]\nh1 role\n"),
        "hosts.ini:2: expected key=value after the host name, found `role`"
    );
    assert_eq!(
        ini_err("[web]\nh1 motd=\"unfinished\n"),
        "hosts.ini:2: unterminated quote"
    );
    assert_eq!(
        ini_err("[web]\nh1\n[web:vars]\njust_a_word\n"),
        "hosts.ini:4: expected key=value in [web:vars], found `just_a_word`"
    );
    assert_eq!(
        ini_err("[web]\nh1\n[all:children]\nweb db\n"),
        "hosts.ini:4: expected a single group name in [all:children], found `web db`"
    );
    assert_eq!(
        ini_err("[web]\nweb/1\n"),
        "hosts.ini:2: invalid host name \"web/1\": only letters, digits, '.', '-' and '_' \
             are allowed"
    );
    assert_eq!(
        ini_err("[web servers]\n"),
        "hosts.ini:1: invalid group name \"web servers\": only letters, digits, '.', '-' \
             and '_' are allowed"
    );
    assert_eq!(
        ini_err("[web]\nh1:99999\n"),
        "hosts.ini:2: invalid port in \"h1:99999\": expected an integer from 1 to 65535"
    );
    assert_eq!(
        ini_err("[web]\nh1\n\n[wbe:vars]\nx=1\n"),
        "hosts.ini:4: [wbe:vars] is for group wbe, which this inventory never defines"
    );
}

#[test]
fn range_errors() {
    let message = |pattern: &str| expand_hosts(pattern).expect_err(pattern).to_string();
    assert_eq!(
        message("web[1:3"),
        "invalid host range in \"web[1:3\": missing `]`"
    );
    assert_eq!(
        message("web[01:3]"),
        "invalid host range in \"web[01:3]\": a zero-padded range needs start and end of \
             the same width"
    );
    assert_eq!(
        message("web[a:3]"),
        "invalid host range in \"web[a:3]\": bounds must be two integers or two letters of \
             the same case"
    );
    assert_eq!(
        message("web[1]"),
        "invalid host range in \"web[1]\": expected [start:end] or [start:end:step]"
    );
    assert_eq!(
        message("web[1:3:0]"),
        "invalid host range in \"web[1:3:0]\": the step must be a positive integer"
    );
    assert_eq!(
        message("web[0:99999999]"),
        "invalid host range in \"web[0:99999999]\": expands to too many hosts"
    );
    assert_eq!(
        message("a[0:999]b[0:999]"),
        "invalid host range in \"a[0:999]b[0:999]\": expands to too many hosts"
    );
    assert_eq!(
        message("web[0:99999999999999999999999]"),
        "invalid host range in \"web[0:99999999999999999999999]\": range bounds are too large"
    );
}

#[test]
fn huge_range_bounds_do_not_overflow() {
    let pattern = format!("h[0:{}]", u64::MAX);
    assert!(matches!(
        expand_hosts(&pattern),
        Err(NameError::Range {
            reason: "expands to too many hosts",
            ..
        })
    ));
    assert_eq!(
        expand_hosts(&format!("h[{}:{}]", u64::MAX, u64::MAX)).expect("one host"),
        [format!("h{}", u64::MAX)]
    );
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    use std::fmt::Write as _;
    let mut text = String::new();
    for depth in 0..300 {
        let indent = "  ".repeat(depth * 2);
        writeln!(text, "{indent}g{depth}:\n{indent}  children:").expect("write to String");
    }
    let error = Inventory::parse_yaml(&text, Path::new("deep.yml")).expect_err("too deep");
    assert!(matches!(error, InventoryError::Yaml { .. }), "{error}");
    assert!(
        error.to_string().contains("recursion limit exceeded"),
        "{error}"
    );
}

#[test]
fn ranges_combine_and_default_their_start() {
    assert_eq!(
        expand_hosts("r[1:2]-[a:b]").expect("valid"),
        ["r1-a", "r1-b", "r2-a", "r2-b"]
    );
    assert_eq!(expand_hosts("n[:2]").expect("valid"), ["n0", "n1", "n2"]);
    assert_eq!(expand_hosts("[A:C]x").expect("valid"), ["Ax", "Bx", "Cx"]);
    assert_eq!(expand_hosts("v[a:e:2]").expect("valid"), ["va", "vc", "ve"]);
}

#[test]
fn host_list_with_ports() {
    let inventory = Inventory::from_host_list("web1, web2:2222,db[1:2]:2200,").expect("valid");
    assert_eq!(all_names(&inventory), ["web1", "web2", "db1", "db2"]);
    let port = |name: &str| {
        target(inventory.host(name).expect("host"))
            .expect("target")
            .port
    };
    assert_eq!(port("web1"), 22);
    assert_eq!(port("web2"), 2222);
    assert_eq!(port("db2"), 2200);
    assert_eq!(
        inventory.host("web1").expect("host").groups,
        ["all", "ungrouped"]
    );
    assert!(Inventory::from_host_list(",")
        .expect("valid")
        .hosts()
        .next()
        .is_none());
}

#[test]
fn host_list_errors() {
    let message = |list: &str| Inventory::from_host_list(list).expect_err(list).to_string();
    assert_eq!(
        message("web1,web2:ssh"),
        "invalid host list `web1,web2:ssh`: invalid port in \"web2:ssh\": expected an \
             integer from 1 to 65535"
    );
    assert_eq!(
        message("web1,web2:0"),
        "invalid host list `web1,web2:0`: invalid port in \"web2:0\": expected an integer \
             from 1 to 65535"
    );
    assert_eq!(
        message("user@web1,"),
        "invalid host list `user@web1,`: invalid host name \"user@web1\": only letters, \
             digits, '.', '-' and '_' are allowed"
    );
}

const PATTERNS: &str = "
all:
  hosts:
    lone:
  children:
    app:
      hosts: {app1: , app2: , app3: }
    db:
      hosts: {db1: , db2: }
    staging:
      hosts: {app2: , db2: }
    web:
      hosts: {web1: , web2: , web10: }
";

fn select(pattern: &str) -> Vec<String> {
    names(&yaml(PATTERNS).select(pattern))
}

#[test]
fn pattern_all_and_star() {
    let everyone = [
        "lone", "app1", "app2", "app3", "db1", "db2", "web1", "web2", "web10",
    ];
    assert_eq!(select("all"), everyone);
    assert_eq!(select("*"), everyone);
}

#[test]
fn pattern_names() {
    assert_eq!(select("app"), ["app1", "app2", "app3"]);
    assert_eq!(select("db1"), ["db1"]);
    assert_eq!(select("ungrouped"), ["lone"]);
    assert_eq!(select("nothing"), Vec::<String>::new());
    assert_eq!(select("App"), Vec::<String>::new());
}

#[test]
fn pattern_globs() {
    assert_eq!(select("web*"), ["web1", "web2", "web10"]);
    assert_eq!(select("web?"), ["web1", "web2"]);
    assert_eq!(select("*1"), ["app1", "db1", "web1"]);
    assert_eq!(select("st*ing"), ["app2", "db2"]);
    assert_eq!(select("*a*p*"), ["app1", "app2", "app3"]);
    assert_eq!(select("w?b*0"), ["web10"]);
}

#[test]
fn pattern_union_keeps_inventory_order_without_duplicates() {
    assert_eq!(select("db:app"), ["app1", "app2", "app3", "db1", "db2"]);
    assert_eq!(select("staging,app"), ["app1", "app2", "app3", "db2"]);
    assert_eq!(select("db1 , db1:db"), ["db1", "db2"]);
}

#[test]
fn pattern_exclusion() {
    assert_eq!(select("app:!app3"), ["app1", "app2"]);
    assert_eq!(select("app:!staging"), ["app1", "app3"]);
    assert_eq!(select("!app3:app"), ["app1", "app2"]);
    assert_eq!(
        select("!web*"),
        ["lone", "app1", "app2", "app3", "db1", "db2"]
    );
}

#[test]
fn pattern_intersection() {
    assert_eq!(select("app:&staging"), ["app2"]);
    assert_eq!(select("app:db:&staging"), ["app2", "db2"]);
    assert_eq!(select("&staging"), ["app2", "db2"]);
    assert_eq!(select("app:db:&staging:!db2"), ["app2"]);
    assert_eq!(select("web:&staging"), Vec::<String>::new());
}

#[test]
fn pattern_without_terms_matches_nothing() {
    assert_eq!(select(""), Vec::<String>::new());
    assert_eq!(select(" : , "), Vec::<String>::new());
    assert_eq!(select("!:&"), Vec::<String>::new());
}

#[test]
fn glob_matching() {
    assert!(crate::glob::matches("*", ""));
    assert!(crate::glob::matches("a*b*c", "aXbYbZc"));
    assert!(crate::glob::matches("**x", "x"));
    assert!(!crate::glob::matches("a*b", "acbd"));
    assert!(!crate::glob::matches("?", ""));
    assert!(crate::glob::matches("?é", "xé"));
}

#[test]
fn limit_narrows_the_inventory() {
    let mut inventory = yaml(PATTERNS);
    inventory.limit("app:db:!db1").expect("matches");
    assert_eq!(all_names(&inventory), ["app1", "app2", "app3", "db2"]);
    assert_eq!(
        names(&inventory.select("all")),
        ["app1", "app2", "app3", "db2"]
    );
    assert_eq!(names(&inventory.select("staging")), ["app2", "db2"]);
    inventory.limit("web*:app1").expect("matches");
    assert_eq!(all_names(&inventory), ["app1"]);
}

#[test]
fn limit_matching_nothing_is_an_error() {
    let mut inventory = yaml(PATTERNS);
    let error = inventory.limit("web:&db").expect_err("no match");
    assert!(matches!(&error, InventoryError::NoHostsMatched { pattern } if pattern == "web:&db"));
    assert_eq!(
        error.to_string(),
        "no inventory host matches --limit `web:&db`"
    );
    // The inventory is untouched.
    assert_eq!(inventory.hosts().count(), 9);
    assert!(inventory.limit("").is_err());
}

fn host_with(vars: Value) -> InventoryHost {
    let Value::Object(map) = vars else {
        panic!("vars must be an object");
    };
    InventoryHost {
        name: "web1".into(),
        groups: vec!["all".into()],
        vars: map.into_iter().collect(),
    }
}

#[test]
fn target_reads_canonical_settings() {
    let host = host_with(json!({
        "host": "10.0.0.5",
        "port": "2222",
        "user": "deploy",
        "identity_file": "~/.ssh/deploy",
        "connection": "ssh",
        "host_key_checking": "accept-new",
    }));
    assert_eq!(
        target(&host).expect("valid"),
        Target {
            name: "web1".into(),
            address: "10.0.0.5".into(),
            port: 2222,
            user: "deploy".into(),
            identity_file: Some(PathBuf::from("/home/alice/.ssh/deploy")),
            connection: Connection::Ssh,
            host_key_checking: HostKeyChecking::AcceptNew,
            ssh: SshOptions::default(),
        }
    );
    assert_eq!(given(&host), [true, true, true]);
}

#[test]
fn target_reads_ansible_aliases() {
    let host = host_with(json!({
        "ansible_host": "web1.example.com",
        "ansible_port": 2022,
        "ansible_user": "ops",
        "ansible_ssh_private_key_file": "/keys/id",
        "ansible_connection": "local",
        "host_key_checking": "off",
    }));
    assert_eq!(
        target(&host).expect("valid"),
        Target {
            name: "web1".into(),
            address: "web1.example.com".into(),
            port: 2022,
            user: "ops".into(),
            identity_file: Some(PathBuf::from("/keys/id")),
            connection: Connection::Local,
            host_key_checking: HostKeyChecking::Off,
            ssh: SshOptions::default(),
        }
    );
    assert_eq!(given(&host), [true, true, true]);
}

#[test]
fn target_null_is_unset() {
    let host = host_with(json!({"port": null, "user": null}));
    let target = target(&host).expect("valid");
    assert_eq!((target.port, target.user.as_str()), (22, "alice"));
    assert_eq!(given(&host), [false, false, false]);
}

#[test]
fn localhost_still_uses_ssh_unless_told() {
    let inventory = ini("localhost\nlocal2 connection=local\n");
    let ssh = target(inventory.host("localhost").expect("host")).expect("valid");
    assert_eq!(
        (ssh.connection, ssh.address.as_str()),
        (Connection::Ssh, "localhost")
    );
    let local = target(inventory.host("local2").expect("host")).expect("valid");
    assert_eq!(local.connection, Connection::Local);
}

#[test]
fn alias_and_canonical_spellings_override_each_other_by_precedence() {
    let inventory = yaml(
        "
all:
  vars:
    port: 1000
    ansible_user: group-user
  children:
    web:
      vars:
        ansible_port: 2000
      hosts:
        w1:
          user: host-user
        w2:
          port: 3000
          ansible_port: 3001
",
    );
    let w1 = target(inventory.host("w1").expect("host")).expect("valid");
    assert_eq!((w1.port, w1.user.as_str()), (2000, "host-user"));
    assert!(!inventory
        .host("w1")
        .expect("host")
        .vars
        .contains_key("port"));
    // Within one level the later spelling wins.
    let w2 = target(inventory.host("w2").expect("host")).expect("valid");
    assert_eq!(w2.port, 3001);
}

#[test]
fn tilde_expansion() {
    let home = Some(Path::new("/home/u"));
    assert_eq!(expand_tilde("~", home), PathBuf::from("/home/u"));
    assert_eq!(expand_tilde("~/k", home), PathBuf::from("/home/u/k"));
    assert_eq!(expand_tilde("~bob/k", home), PathBuf::from("~bob/k"));
    assert_eq!(expand_tilde("k~", home), PathBuf::from("k~"));
    assert_eq!(expand_tilde("~/k", None), PathBuf::from("~/k"));
}

#[test]
fn invalid_settings_name_host_variable_and_allowed_values() {
    let message = |vars: Value| target(&host_with(vars)).expect_err("invalid").to_string();
    assert_eq!(
        message(json!({"port": "abc"})),
        "host web1: invalid port \"abc\": expected an integer from 1 to 65535"
    );
    assert_eq!(
        message(json!({"ansible_port": 70000})),
        "host web1: invalid ansible_port 70000: expected an integer from 1 to 65535"
    );
    assert_eq!(
        message(json!({"port": 0})),
        "host web1: invalid port 0: expected an integer from 1 to 65535"
    );
    assert_eq!(
        message(json!({"port": 22.5})),
        "host web1: invalid port 22.5: expected an integer from 1 to 65535"
    );
    assert_eq!(
        message(json!({"host_key_checking": "maybe"})),
        "host web1: invalid host_key_checking \"maybe\": expected one of strict, \
             accept-new, off"
    );
    assert_eq!(
        message(json!({"host_key_checking": false})),
        "host web1: invalid host_key_checking false: expected one of strict, accept-new, off"
    );
    assert_eq!(
        message(json!({"connection": "winrm"})),
        "host web1: invalid connection \"winrm\": expected one of ssh, local"
    );
    assert_eq!(
        message(json!({"ansible_connection": "paramiko"})),
        "host web1: invalid ansible_connection \"paramiko\": expected one of ssh, local"
    );
    assert_eq!(
        message(json!({"user": ["a"]})),
        "host web1: invalid user [\"a\"]: expected a non-empty string"
    );
    assert_eq!(
        message(json!({"ansible_host": ""})),
        "host web1: invalid ansible_host \"\": expected a non-empty string"
    );
    assert_eq!(
        message(json!({"identity_file": true})),
        "host web1: invalid identity_file true: expected a non-empty string"
    );
}

#[test]
fn target_errors_through_a_yaml_inventory() {
    let inventory = yaml("all:\n  hosts:\n    db1:\n      port: abc\n");
    let error = env_target(inventory.host("db1").expect("host")).expect_err("invalid port");
    assert!(matches!(
        &error,
        InventoryError::InvalidVar { host, var, .. } if host == "db1" && var == "port"
    ));
}

#[test]
fn target_defaults_come_from_the_environment() {
    let target = env_target(
        Inventory::from_host_list("h1,")
            .expect("valid")
            .host("h1")
            .expect("host"),
    )
    .expect("valid");
    let expected = std::env::var("USER")
        .ok()
        .filter(|user| !user.is_empty())
        .unwrap_or_else(|| "root".into());
    assert_eq!(target.user, expected);
}

#[test]
fn unknown_variables_are_kept() {
    let inventory = ini("h1 app_version=1.2.3 ansible_become=true\n");
    let vars = &inventory.host("h1").expect("host").vars;
    assert_eq!(vars["app_version"], json!("1.2.3"));
    assert_eq!(vars["ansible_become"], json!(true));
    assert!(target(inventory.host("h1").expect("host")).is_ok());
}

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
