use std::time::Duration;

use super::apply::host_matches;
use super::include::expand_glob;
use super::lexer::split_line;
use super::settings::{parse_jump, JumpSpec};
use super::*;
use crate::transport::{Connection, HostKeyChecking, Target, TargetSettings};

fn local() -> Local {
    Local {
        home: Some(PathBuf::from("/home/ops")),
        user: "ops".to_owned(),
    }
}

fn config(text: &str) -> SshConfig {
    SshConfig::parse(text, Path::new("config"), None, local()).unwrap()
}

fn config_err(text: &str) -> String {
    SshConfig::parse(text, Path::new("config"), None, local())
        .unwrap_err()
        .to_string()
}

/// Settings as the inventory gives them when it gives only an address.
fn given(address: &str) -> TargetSettings {
    TargetSettings {
        host: Some(address.to_owned()),
        ..TargetSettings::default()
    }
}

fn applied(config: &SshConfig, address: &str) -> Target {
    config.target("inv", given(address)).unwrap()
}

#[test]
fn lines_split_like_openssh() {
    let split = |line: &str| split_line(line).unwrap();
    assert_eq!(split("  # comment"), None);
    assert_eq!(split(""), None);
    assert_eq!(
        split("HostName=10.0.0.1"),
        Some(("hostname".into(), vec!["10.0.0.1".into()]))
    );
    assert_eq!(
        split("Port = 2222 # the bastion's"),
        Some(("port".into(), vec!["2222".into()]))
    );
    assert_eq!(
        split("IdentityFile \"~/my keys/id\" 'x y'"),
        Some((
            "identityfile".into(),
            vec!["~/my keys/id".into(), "x y".into()]
        ))
    );
    assert_eq!(
        split("\tHost\tweb-#1 db"),
        Some(("host".into(), vec!["web-#1".into(), "db".into()]))
    );
    assert_eq!(
        split_line("User \"ops").unwrap_err().to_string(),
        "unterminated quote"
    );
}

#[test]
fn first_obtained_value_wins_and_identity_files_accumulate() {
    let config = config(
        "Host web1\n  Port 2201\n  IdentityFile ~/.ssh/web\n\
             Host web*\n  Port 2200\n  User deploy\n  IdentityFile ~/.ssh/%r-%h-%p\n\
             Host *\n  User nobody\n  ConnectTimeout 5\n",
    );
    let web1 = applied(&config, "web1");
    assert_eq!(web1.port, 2201);
    assert_eq!(web1.user, "deploy");
    assert_eq!(
        web1.ssh.identity_files,
        [
            PathBuf::from("/home/ops/.ssh/web"),
            PathBuf::from("/home/ops/.ssh/deploy-web1-2201")
        ]
    );
    assert_eq!(web1.ssh.connect_timeout, Some(Duration::from_secs(5)));
    let db = applied(&config, "DB1");
    assert_eq!((db.port, db.user.as_str()), (22, "nobody"));
    assert!(db.ssh.identity_files.is_empty());
}

#[test]
fn negated_patterns_exclude() {
    let config = config("Host *.prod !bastion.prod\n  ProxyJump bastion.prod\n");
    assert_eq!(applied(&config, "app.prod").ssh.jumps.len(), 1);
    assert!(applied(&config, "bastion.prod").ssh.jumps.is_empty());
    assert!(applied(&config, "app.test").ssh.jumps.is_empty());
    // Only negations: never matches.
    let config = self::config("Host !a\n  Port 1\n");
    assert_eq!(applied(&config, "b").port, 22);
}

#[test]
fn host_name_replaces_the_address_and_known_hosts_use_it() {
    let config = config(
        "Host app?\n  HostName %h.internal.example\n  \
             UserKnownHostsFile ~/.ssh/known_%n %d/other\n",
    );
    let app1 = applied(&config, "app1");
    assert_eq!(app1.address, "app1.internal.example");
    assert_eq!(
        app1.ssh.known_hosts_files,
        Some(vec![
            PathBuf::from("/home/ops/.ssh/known_app1"),
            PathBuf::from("/home/ops/other")
        ])
    );
    let none = self::config("Host *\n  UserKnownHostsFile none\n");
    assert_eq!(applied(&none, "x").ssh.known_hosts_files, Some(vec![]));
    assert_eq!(applied(&self::config(""), "x").ssh.known_hosts_files, None);
}

#[test]
fn inventory_values_win() {
    let config = config(
        "Host 10.0.0.5\n  HostName 10.9.9.9\n  Port 2222\n  User cfg\n  \
             StrictHostKeyChecking no\n  IdentityFile ~/.ssh/cfg\n",
    );
    let inventory = TargetSettings {
        port: Some(2200),
        user: Some("inv".to_owned()),
        host_key_checking: Some(HostKeyChecking::AcceptNew),
        identity_file: Some(PathBuf::from("/keys/inv")),
        ..given("10.0.0.5")
    };
    let target = config.target("inv", inventory).unwrap();
    assert_eq!(target.port, 2200);
    assert_eq!(target.user, "inv");
    assert_eq!(target.host_key_checking, HostKeyChecking::AcceptNew);
    assert_eq!(target.identity_file, Some(PathBuf::from("/keys/inv")));
    // HostName maps the name ssh is given, as `ssh 10.0.0.5` would.
    assert_eq!(target.address, "10.9.9.9");
    let plain = applied(&config, "10.0.0.5");
    assert_eq!(
        (plain.port, plain.user.as_str(), plain.host_key_checking),
        (2222, "cfg", HostKeyChecking::Off)
    );
}

#[test]
fn local_targets_are_left_alone() {
    let config = config("Host *\n  Port 2222\n");
    let local = TargetSettings {
        connection: Some(Connection::Local),
        ..given("localhost")
    };
    let target = config.target("inv", local).unwrap();
    assert_eq!(target.port, 22);
}

#[test]
fn strict_host_key_checking_values() {
    for (value, mode) in [
        ("yes", HostKeyChecking::Strict),
        ("ask", HostKeyChecking::Strict),
        ("accept-new", HostKeyChecking::AcceptNew),
        ("no", HostKeyChecking::Off),
        ("off", HostKeyChecking::Off),
    ] {
        let config = config(&format!("StrictHostKeyChecking {value}\n"));
        assert_eq!(applied(&config, "h").host_key_checking, mode, "{value}");
    }
}

#[test]
fn proxy_jump_chains_resolve_each_hop_with_its_own_settings() {
    let config = config(
        "Host app*\n  ProxyJump inner,ops2@edge.example:2022\n  User deploy\n\
             Host inner\n  HostName 10.0.0.2\n  ProxyJump outer\n  IdentityFile ~/.ssh/inner\n\
             Host outer\n  HostName outer.example\n  Port 2200\n\
             Host edge.example\n  ProxyJump ignored\n  StrictHostKeyChecking accept-new\n",
    );
    let app = applied(&config, "app1");
    assert_eq!(app.user, "deploy");
    let hops: Vec<(String, String, u16, String)> = app
        .ssh
        .jumps
        .iter()
        .map(|hop| {
            (
                hop.name.clone(),
                hop.address.clone(),
                hop.port,
                hop.user.clone(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            ("outer".into(), "outer.example".into(), 2200, "ops".into()),
            ("inner".into(), "10.0.0.2".into(), 22, "ops".into()),
            (
                "ops2@edge.example:2022".into(),
                "edge.example".into(),
                2022,
                "ops2".into()
            ),
        ]
    );
    assert_eq!(
        app.ssh.jumps[1].ssh.identity_files,
        [PathBuf::from("/home/ops/.ssh/inner")]
    );
    assert!(app.ssh.jumps.iter().all(|hop| hop.ssh.jumps.is_empty()));
    assert_eq!(
        app.ssh.jumps[2].host_key_checking,
        HostKeyChecking::AcceptNew
    );
}

#[test]
fn proxy_jump_none_and_first_proxy_setting_wins() {
    let config = config(
        "Host direct\n  ProxyJump none\nHost cmd\n  ProxyCommand ssh -W %h:%p gw\n\
             Host * !gw\n  ProxyJump gw\n",
    );
    assert!(applied(&config, "direct").ssh.jumps.is_empty());
    let cmd = applied(&config, "cmd");
    assert!(cmd.ssh.jumps.is_empty());
    assert_eq!(cmd.ssh.proxy_command.as_deref(), Some("ssh -W %h:%p gw"));
    assert_eq!(applied(&config, "other").ssh.jumps[0].name, "gw");
}

#[test]
fn proxy_jump_loops_are_errors() {
    let config = config("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n");
    assert_eq!(
        config.target("inv", given("a")).unwrap_err().to_string(),
        "host inv: the ProxyJump chain a -> b -> a is too long or loops"
    );
}

#[test]
fn jump_specs() {
    let spec = |text: &str| parse_jump(text).unwrap();
    assert_eq!(
        spec("ops@gw:2200"),
        JumpSpec {
            user: Some("ops".into()),
            host: "gw".into(),
            port: Some(2200)
        }
    );
    assert_eq!(spec("ssh://gw/").host, "gw");
    assert_eq!(spec("[::1]:22").host, "::1");
    assert_eq!(spec("[::1]:22").display(), "[::1]:22");
    assert_eq!(spec("a@b@gw").user.as_deref(), Some("a@b"));
    assert_eq!(
        parse_jump("gw:0").unwrap_err().to_string(),
        "ProxyJump \"gw:0\": the port must be an integer from 1 to 65535"
    );
    assert!(parse_jump("@gw").is_err());
    assert!(parse_jump("[::1").is_err());
}

#[test]
fn match_blocks_are_skipped_except_match_all() {
    let config = config(
        "Match host web exec true\n  Port 1\nMatch all\n  User everyone\nHost web\n  Port 2\n",
    );
    let web = applied(&config, "web");
    assert_eq!((web.port, web.user.as_str()), (2, "everyone"));
}

#[test]
fn invalid_values_name_file_and_line() {
    assert_eq!(
        config_err("Host a\n  Port abc\n"),
        "config:2: Port \"abc\": expected an integer from 1 to 65535"
    );
    assert_eq!(
        config_err("StrictHostKeyChecking maybe"),
        "config:1: StrictHostKeyChecking \"maybe\": expected yes, accept-new, no, off or ask"
    );
    assert_eq!(
        config_err("Host\n"),
        "config:1: Host needs at least one pattern"
    );
    assert_eq!(
        config_err("User a b\n"),
        "config:1: User takes one value, found 2"
    );
    assert_eq!(
        config_err("ConnectTimeout 1.5\n"),
        "config:1: ConnectTimeout \"1.5\": expected a whole number of seconds"
    );
    // Unknown keywords are someone else's business.
    config("ForwardAgent yes\nSendEnv LANG LC_*\n");
}

#[test]
fn unsupported_tokens_are_errors_naming_the_setting() {
    let config = config("Host h\n  IdentityFile ~/.ssh/%C\n");
    assert_eq!(
        config.target("inv", given("h")).unwrap_err().to_string(),
        "host inv: IdentityFile: the token %C is not supported here \
             (supported: %d %h %n %p %r %u %%) (config:2)"
    );
}

#[test]
fn includes_are_relative_to_the_ssh_dir_globbed_and_conditional() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    fs::create_dir(&conf).unwrap();
    fs::write(conf.join("20-db.conf"), "Host db\n  Port 2020\n").unwrap();
    fs::write(conf.join("10-web.conf"), "Host web\n  Port 1010\n").unwrap();
    fs::write(conf.join(".hidden.conf"), "Host *\n  Port 9\n").unwrap();
    fs::write(
        dir.path().join("users"),
        "User inside\nHost other\n  User x\n",
    )
    .unwrap();
    let text = "Include conf.d/*.conf\nHost staging\n  Include users\n  Port 3030\n\
                    Host *\n  User outside\n";
    let config =
        SshConfig::parse(text, &dir.path().join("config"), Some(dir.path()), local()).unwrap();
    assert_eq!(applied(&config, "web").port, 1010);
    assert_eq!(applied(&config, "db").port, 2020);
    let staging = applied(&config, "staging");
    // The included file's first lines sit inside `Host staging`; its own `Host`
    // line only narrows further; after it, `Port 3030` is back in `Host staging`.
    assert_eq!((staging.port, staging.user.as_str()), (3030, "inside"));
    assert_eq!(applied(&config, "other").user, "outside");
    assert_eq!(applied(&config, "web").user, "outside");
}

#[test]
fn include_loops_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("loop"), "Include loop\n").unwrap();
    let error = SshConfig::parse(
        "Include loop\n",
        &dir.path().join("config"),
        Some(dir.path()),
        local(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.ends_with("loop:1: Include nested more than 16 deep"),
        "{error}"
    );
}

#[test]
fn missing_explicit_file_is_an_error() {
    let error = SshConfig::load(Some(Path::new("/nonexistent/ssh_config")))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cannot read ssh config /nonexistent/ssh_config:"),
        "{error}"
    );
}

#[test]
fn wildcards() {
    assert!(crate::glob::matches("*.example.com", "a.example.com"));
    assert!(!crate::glob::matches("*.example.com", "example.com"));
    assert!(crate::glob::matches("web?", "web1"));
    assert!(!crate::glob::matches("web?", "web10"));
    assert!(crate::glob::matches("*", ""));
    assert!(host_matches(
        &["10.0.*".into(), "!10.0.0.1".into()],
        "10.0.0.2"
    ));
    assert!(!host_matches(
        &["10.0.*".into(), "!10.0.0.1".into()],
        "10.0.0.1"
    ));
}

#[test]
fn include_globs_sort_skip_hidden_files_and_take_brackets_literally() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.conf", "a.conf", ".hidden.conf", "c.txt", "d[1"] {
        fs::write(dir.path().join(name), "").unwrap();
    }
    let names = |pattern: &str| -> Vec<String> {
        expand_glob(&dir.path().join(pattern))
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names("*.conf"), ["a.conf", "b.conf"]);
    assert_eq!(names(".*.conf"), [".hidden.conf"]);
    assert_eq!(names("d[1"), ["d[1"]);
    assert!(names("missing").is_empty());
}
