use super::*;

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
