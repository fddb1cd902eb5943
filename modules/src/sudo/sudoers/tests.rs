//! Sudoers plans and rule checks, from recorded facts.

use super::*;
use crate::fact::{Fact, Sudo, SystemInfo};
use crate::paths::PathChange;
use crate::paths::{PathFact, PathKey};
use crate::sudo::SudoChange;
use crate::sudo::SudoFact;

fn units_form() -> Sudoers {
    Sudoers {
        name: "sidekiq".into(),
        content: None,
        src: None,
        template: None,
        user: Some("deploy".into()),
        group: None,
        commands: None,
        units: Some(vec!["sidekiq.service".into()]),
        verbs: Some(vec!["restart".into(), "quiet".into()]),
        allow_wildcards: false,
        nopasswd: true,
        runas: None,
        state: Presence::Present,
    }
}

#[test]
fn units_form_generates_exact_rules() {
    assert_eq!(units_form().validate(), Ok(()));
    assert_eq!(
        units_form().rendered(&[SYSTEMCTL]),
        "# Managed by converge; changes made here will be reverted.\n\
         deploy ALL=(root) NOPASSWD: /bin/systemctl restart sidekiq\n\
         deploy ALL=(root) NOPASSWD: /bin/systemctl restart sidekiq.service\n\
         deploy ALL=(root) NOPASSWD: /bin/systemctl kill -s TSTP sidekiq\n\
         deploy ALL=(root) NOPASSWD: /bin/systemctl kill --kill-who\\=main -s TSTP sidekiq\n\
         deploy ALL=(root) NOPASSWD: /bin/systemctl kill -s TSTP sidekiq.service\n\
         deploy ALL=(root) NOPASSWD: /bin/systemctl kill --kill-who\\=main -s TSTP sidekiq.service\n"
    );
}

#[test]
fn commands_form_for_a_group() {
    let sudoers = Sudoers {
        user: None,
        group: Some("deploy".into()),
        units: None,
        verbs: None,
        commands: Some(vec!["/bin/systemctl restart sidekiq".into()]),
        nopasswd: false,
        ..units_form()
    };
    assert_eq!(sudoers.validate(), Ok(()));
    assert!(sudoers
        .rendered(&[SYSTEMCTL])
        .ends_with("%deploy ALL=(ALL) /bin/systemctl restart sidekiq\n"));
}

#[test]
fn names_sudo_would_skip_are_refused() {
    for name in ["sidekiq.conf", "sidekiq~"] {
        let sudoers = Sudoers {
            name: name.into(),
            ..units_form()
        };
        assert!(sudoers.validate().is_err(), "{name}");
    }
}

#[test]
fn unknown_verb_is_refused_with_the_allowed_list() {
    let sudoers = Sudoers {
        verbs: Some(vec!["reboot".into()]),
        ..units_form()
    };
    assert_eq!(
        sudoers.validate().unwrap_err().to_string(),
        "`verbs` has \"reboot\"; allowed: start, stop, restart, reload, status, quiet"
    );
}

#[test]
fn relative_command_is_refused() {
    let sudoers = Sudoers {
        units: None,
        verbs: None,
        commands: Some(vec!["systemctl restart x".into()]),
        ..units_form()
    };
    assert!(sudoers.validate().is_err());
}

#[test]
fn command_entries_cannot_smuggle_in_more_rules() {
    let with = |command: &str| Sudoers {
        units: None,
        verbs: None,
        commands: Some(vec![command.to_owned()]),
        ..units_form()
    };
    for (command, reason) in [
        ("/bin/ls, /bin/sh", "has an unescaped `,`, which sudo reads as the start of another command; write it as `\\,`"),
        ("/bin/ls : ALL=(ALL) NOPASSWD: ALL", "has an unescaped `:`, which sudo reads as the start of another rule; write it as `\\:`"),
        ("/bin/rm #/tmp/x", "has an unescaped `#`, which sudo reads as the start of a comment; write it as `\\#`"),
        ("/bin/ls \\", "ends in a lone `\\`, which would join the next rule onto it"),
    ] {
        assert_eq!(
            with(command).validate().unwrap_err().to_string(),
            format!("`commands` entry {command:?} {reason}")
        );
    }
    for command in [
        "/bin/echo a\\,b",
        "/bin/echo a\\:b \\#1 \\\\",
        "/bin/echo a=b",
        "/bin/ls",
    ] {
        assert_eq!(with(command).validate(), Ok(()), "{command}");
    }
}

#[test]
fn commands_grant_no_more_than_they_show() {
    let with = |command: &str, allow_wildcards: bool| Sudoers {
        units: None,
        verbs: None,
        commands: Some(vec![command.to_owned()]),
        allow_wildcards,
        ..units_form()
    };
    let program_wildcard = "has a sudo wildcard (`*`) in its program path, which would let the user run every program it matches; name one program by its full path (allow_wildcards never applies to the program)";
    let argument_wildcard = |ch: char| {
        format!("has a sudo wildcard (`{ch}`) in its arguments, which matches more than it shows (`*` matches `/`, `..` and spaces: `/bin/cat /var/log/app/*` also allows `/bin/cat /var/log/app/../../../etc/shadow`); list each exact command line, or set allow_wildcards: true if the wildcard is meant")
    };
    for (command, allow, reason) in [
        ("/bin/cat /var/log/app/*", false, argument_wildcard('*')),
        ("/bin/ls /tmp/?", false, argument_wildcard('?')),
        ("/bin/ls /tmp/[ab]", false, argument_wildcard('[')),
        ("/usr/bin/*", false, program_wildcard.to_owned()),
        ("/usr/bin/*", true, program_wildcard.to_owned()),
        ("/usr/*/cat /etc/motd", true, program_wildcard.to_owned()),
        ("/usr/bin/", false, "names the directory /usr/bin/, which sudo reads as every program in it; name one program, e.g. /usr/bin/NAME".to_owned()),
        ("/usr/bin/ -x", true, "names the directory /usr/bin/, which sudo reads as every program in it; name one program, e.g. /usr/bin/NAME".to_owned()),
        ("/bin/cat ^/var/log/.*$", false, "has a sudo regular expression (`^...$`) in its arguments, which matches more than it shows; list each exact command line, or set allow_wildcards: true if it is meant".to_owned()),
        ("cat /etc/motd", false, "must be one line starting with an absolute path (sudo requires it)".to_owned()),
    ] {
        assert_eq!(
            with(command, allow).validate().unwrap_err().to_string(),
            format!("`commands` entry {command:?} {reason}"),
            "{command}"
        );
    }
    for (command, allow) in [
        ("/bin/cat /var/log/app/*", true),
        ("/bin/cat ^/var/log/.*$", true),
        ("/usr/bin/journalctl -u sidekiq.service", false),
        ("/bin/echo a\\ b", false),
        ("/usr/local/bin/deploy", false),
    ] {
        assert_eq!(with(command, allow).validate(), Ok(()), "{command}");
    }
    let literal = Sudoers {
        content: Some("x ALL=(ALL) /bin/ls\n".into()),
        user: None,
        units: None,
        verbs: None,
        allow_wildcards: true,
        ..units_form()
    };
    assert!(literal.validate().is_err());
    let units = Sudoers {
        allow_wildcards: true,
        ..units_form()
    };
    assert_eq!(
        units.validate().unwrap_err().to_string(),
        "`allow_wildcards` goes with commands"
    );
}

#[test]
fn the_proof_after_a_write_carries_the_file_it_replaced() {
    let plan = units_form().plan(&store("old\n", None)).unwrap();
    let Change::Sudo(SudoChange::Verify { path, before, .. }) = &plan.changes[1] else {
        panic!("{:?}", plan.changes);
    };
    assert_eq!(path, "/etc/sudoers.d/sidekiq");
    assert_eq!(before.as_deref(), Some(&b"old\n"[..]));
    let command = plan.changes[1].command();
    assert_eq!(command.stdin, b"old\n");
    assert_eq!(
        command.argv[4..8],
        ["deploy", "root", "/etc/sudoers.d/sidekiq", "1"]
    );
}

fn store(content: &str, refused: Option<&str>) -> FactStore {
    use crate::fact::PathState;
    let sudoers = units_form();
    let mut store = FactStore::default();
    store.insert(
        FactKey::Paths(PathKey::Path(sudoers.path())),
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::File,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o440,
        })),
    );
    store.insert(
        FactKey::Paths(PathKey::Content(sudoers.path())),
        Fact::Paths(PathFact::Content(Some(content.as_bytes().to_vec()))),
    );
    store.insert(
        sudoers.verifiable().unwrap().fact(),
        Fact::Sudo(SudoFact::Refused(refused.map(str::to_owned))),
    );
    store.insert(FactKey::System, Fact::System(merged_usr_host()));
    store
}

/// A Debian 12 host: sudo, and `systemctl` in both `/bin` and `/usr/bin`.
fn merged_usr_host() -> SystemInfo {
    SystemInfo {
        sudo: Some(Sudo {
            path: "/usr/bin/sudo".into(),
            flavour: "sudo".into(),
            version: "1.9.13p3".into(),
        }),
        visudo: Some("/usr/sbin/visudo".into()),
        systemctl: vec!["/bin/systemctl".into(), "/usr/bin/systemctl".into()],
        ..SystemInfo::default()
    }
}

#[test]
fn rules_name_every_systemctl_the_host_has_and_need_sudo_and_visudo() {
    let sudoers = units_form();
    let mut facts = store("", None);
    let plan = sudoers.plan(&facts).unwrap();
    let Change::Paths(PathChange::WriteFile(write)) = &plan.changes[0] else {
        panic!("{plan:?}")
    };
    let text = String::from_utf8(write.content.clone()).unwrap();
    assert!(
        text.contains("NOPASSWD: /bin/systemctl restart sidekiq\n"),
        "{text}"
    );
    assert!(
        text.contains("NOPASSWD: /usr/bin/systemctl restart sidekiq\n"),
        "{text}"
    );
    let mut no_visudo = merged_usr_host();
    no_visudo.visudo = None;
    facts.insert(FactKey::System, Fact::System(no_visudo));
    assert_eq!(
        sudoers.plan(&facts).unwrap_err().to_string(),
        "visudo is not installed on this host (neither sudo nor sudo-rs provides it): install sudo or sudo-rs before a sudoers task"
    );
    facts.insert(FactKey::System, Fact::System(SystemInfo::default()));
    assert!(sudoers
        .plan(&facts)
        .unwrap_err()
        .to_string()
        .starts_with("sudo is not installed"));
}

#[test]
fn new_rules_are_written_then_verified() {
    let plan = units_form().plan(&store("old\n", None)).unwrap();
    let described: Vec<String> = plan.changes.iter().map(Change::describe).collect();
    assert_eq!(
        described,
        [
            "update /etc/sudoers.d/sidekiq (validated with visudo)",
            "verify with sudo -l that deploy may run the 6 commands"
        ]
    );
}

#[test]
fn installed_rules_are_verified_every_run() {
    let sudoers = units_form();
    let host = ["/bin/systemctl", "/usr/bin/systemctl"];
    let plan = sudoers
        .plan(&store(&sudoers.rendered(&host), None))
        .unwrap();
    assert!(plan.changes.is_empty(), "{plan:?}");
    assert_eq!(
        plan.notes,
        ["verified with sudo -l: deploy may run all 6 commands"]
    );
    let error = sudoers
        .plan(&store(
            &sudoers.rendered(&host),
            Some("systemctl restart sidekiq"),
        ))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "sudo refuses to let deploy run `systemctl restart sidekiq` although /etc/sudoers.d/sidekiq is in place: another sudoers rule overrides it"
    );
}

#[test]
fn verification_uses_plain_command_lines() {
    let sudoers = Sudoers {
        units: Some(vec!["app@a:b.service".into()]),
        verbs: Some(vec!["restart".into()]),
        ..units_form()
    };
    assert!(sudoers
        .rendered(&[SYSTEMCTL])
        .contains("/bin/systemctl restart app@a\\:b\n"));
    let verification = sudoers.verifiable().unwrap();
    // A bare systemctl: the proof asks about every systemctl the host has.
    assert_eq!(verification.commands[0], "systemctl restart app@a:b");
    assert_eq!(verification.runas, "root");
    assert_eq!(unescape("/bin/echo a\\,b"), "/bin/echo a,b");
}

#[test]
fn sudoers_special_characters_are_escaped() {
    assert_eq!(escape_argument("a:b,c=d\\e"), "a\\:b\\,c\\=d\\\\e");
}
