use super::*;

fn host_with(vars: Value) -> InventoryHost {
    let Value::Object(map) = vars else {
        panic!("vars must be an object");
    };
    InventoryHost {
        name: "web1".into(),
        groups: vec!["all".into()],
        vars: map.into_iter().collect(),
        templates: Templates::new(),
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
