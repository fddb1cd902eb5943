use std::collections::BTreeSet;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::channel::{append_note, signal_note};
use super::known_hosts::*;
use super::*;
use crate::transport::SshOptions;

#[test]
fn fingerprint_is_openssh_style() {
    let digest: Vec<u8> = (0u8..32).collect();
    assert_eq!(
        fingerprint(&digest),
        "SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
    );
    assert!(!fingerprint(&digest).ends_with('='));
}

#[test]
fn host_patterns_follow_openssh() {
    assert_eq!(host_pattern("10.0.0.1", 22), "10.0.0.1");
    assert_eq!(host_pattern("web1.example", 2222), "[web1.example]:2222");
    assert_eq!(host_pattern("::1", 2200), "[::1]:2200");
}

#[test]
fn known_hosts_line_holds_pattern_type_and_padded_key() {
    let blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20abcdefghijklmnopqrstuvwxyz012345";
    assert_eq!(
        known_hosts_line("[h]:2222", "ssh-ed25519", blob),
        format!("[h]:2222 ssh-ed25519 {}\n", STANDARD.encode(blob))
    );
    assert_eq!(blob_key_type(blob), Some("ssh-ed25519"));
    assert_eq!(blob_key_type(b"\0\0\0\x09short"), None);
    assert_eq!(blob_key_type(b"\0\0"), None);
    assert_eq!(blob_key_type(b""), None);
}

#[test]
fn known_hosts_parsing_keeps_line_numbers_and_markers() {
    let text = "# comment\n\
                    \n\
                    web1,10.0.0.1 ssh-ed25519 AAAA1 a comment\n\
                    |1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAA2\n\
                    @revoked bad ssh-rsa AAAA3\n\
                    broken-line ssh-rsa\n\
                    \t[web2]:2222 ssh-rsa AAAA4";
    let entries: Vec<Entry<'_>> = parse_known_hosts(text).collect();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0].line, 3);
    assert_eq!(entries[0].hosts, "web1,10.0.0.1");
    assert!(!entries[0].hashed());
    assert_eq!(entries[0].bare(), "web1,10.0.0.1 ssh-ed25519 AAAA1");
    assert_eq!(entries[1].line, 4);
    assert!(entries[1].hashed());
    assert_eq!(entries[1].key_type, "ecdsa-sha2-nistp256");
    assert_eq!(entries[2].marker, Some("@revoked"));
    assert_eq!(entries[2].hosts, "bad");
    assert_eq!(entries[3].line, 7);
    assert_eq!(entries[3].hosts, "[web2]:2222");
    assert!(entries[0].may_name("10.0.0.1"));
    assert!(!entries[0].may_name("10.0.0.2"));
    assert!(entries[1].may_name("10.0.0.2"));
}

#[test]
fn findings_follow_openssh_host_matching() {
    let session = Session::new().expect("libssh2 session");
    let key: Vec<u8> = b"\0\0\0\x0bssh-ed25519\0\0\0\x20"
        .iter()
        .copied()
        .chain(0u8..32)
        .collect();
    let encoded = STANDARD.encode(&key);
    assert_eq!(
        encoded,
        "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
    );
    let other = "AAAAC3NzaC1lZDI1NTE5AAAAIP8BAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
    // Written by `ssh-keygen -H` for [10.0.0.1]:2222 and the key above.
    let hashed = format!(
        "|1|6SJHRxTeP2l1DshLg0bJNTJadbA=|PR/XF4MvMtZ95aCQIN1tso2ouEk= ssh-ed25519 {encoded}"
    );
    let text = format!(
        "10.0.0.1 ssh-ed25519 {other}\n\
             web,[10.0.0.1]:2222 ssh-ed25519 {encoded}\n\
             [10.0.0.1]:2200 ssh-ed25519 {other}\n\
             {hashed}\n\
             @cert-authority * ssh-ed25519 {encoded}\n\
             unparsable-by-libssh2 sk-ssh-ed25519@openssh.com AAAA\n"
    );
    let port_2222 = findings(&session, &text, "10.0.0.1", "[10.0.0.1]:2222", &key);
    let lines: Vec<(usize, bool, bool)> = port_2222
        .iter()
        .map(|f| (f.line, f.hashed, f.same_key))
        .collect();
    assert_eq!(lines, [(2, false, true), (4, true, true)]);

    let port_22 = findings(&session, &text, "10.0.0.1", "10.0.0.1", &key);
    assert_eq!(port_22.len(), 1);
    assert_eq!((port_22[0].line, port_22[0].same_key), (1, false));
    assert_eq!(
        judge(&port_22, "ssh-ed25519"),
        Verdict::Changed {
            file: 0,
            line: 1,
            hashed: false
        }
    );

    let none = findings(&session, &text, "10.0.0.9", "[10.0.0.9]:2222", &key);
    assert!(none.is_empty());

    let revoked = format!("{text}@revoked * ssh-ed25519 {encoded}\n");
    let found = findings(&session, &revoked, "10.0.0.9", "10.0.0.9", &key);
    assert_eq!(
        judge(&found, "ssh-ed25519"),
        Verdict::Revoked { file: 0, line: 7 }
    );
}

fn finding(line: usize, key_type: &str, same_key: bool) -> Finding {
    Finding {
        file: 0,
        line,
        hashed: false,
        revoked: false,
        key_type: key_type.to_owned(),
        same_key,
    }
}

#[test]
fn judging_findings() {
    assert_eq!(judge(&[], "ssh-ed25519"), Verdict::Unknown);
    assert_eq!(
        judge(
            &[
                finding(1, "ssh-rsa", false),
                finding(2, "ssh-ed25519", true)
            ],
            "ssh-ed25519"
        ),
        Verdict::Known
    );
    let mut hashed = finding(5, "ssh-ed25519", false);
    hashed.hashed = true;
    assert_eq!(
        judge(&[finding(1, "ssh-rsa", false), hashed], "ssh-ed25519"),
        Verdict::Changed {
            file: 0,
            line: 5,
            hashed: true
        }
    );
    assert_eq!(
        judge(&[finding(3, "ssh-rsa", false)], "ssh-ed25519"),
        Verdict::OtherTypes {
            file: 0,
            line: 3,
            key_type: "ssh-rsa".to_owned()
        }
    );
    let mut revoked = finding(9, "ssh-ed25519", true);
    revoked.revoked = true;
    assert_eq!(
        judge(
            &[finding(1, "ssh-ed25519", true), revoked.clone()],
            "ssh-ed25519"
        ),
        Verdict::Revoked { file: 0, line: 9 }
    );
    revoked.same_key = false;
    assert_eq!(judge(&[revoked], "ssh-ed25519"), Verdict::Unknown);
}

#[test]
fn preference_puts_known_types_first_and_drops_certificates() {
    let supported = [
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp256-cert-v01@openssh.com",
        "ssh-ed25519",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
    ];
    let known: BTreeSet<String> = ["ssh-ed25519".to_owned(), "ssh-rsa".to_owned()].into();
    assert_eq!(
        host_key_preference(&supported, &known),
        [
            "ssh-ed25519",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
            "ecdsa-sha2-nistp256"
        ]
    );
    assert_eq!(
        host_key_preference(&supported, &BTreeSet::new())[0],
        "ecdsa-sha2-nistp256"
    );
}

#[test]
fn messages_name_the_entry_and_the_remedy() {
    let path = Path::new("/home/u/.ssh/known_hosts");
    let key = "ssh-ed25519 key SHA256:abc";
    let unknown = unknown_key_message(path, "[10.0.0.1]:2222", "10.0.0.1", 2222, key);
    assert!(unknown.contains("[10.0.0.1]:2222 is not in /home/u/.ssh/known_hosts"));
    assert!(unknown.contains("SHA256:abc"));
    assert!(unknown.contains("ssh-keyscan -p 2222 10.0.0.1 >> ~/.ssh/known_hosts"));
    assert!(unknown.contains("host_key_checking: accept-new"));
    let changed = changed_key_message(path, "web1", key, 4, true);
    assert!(changed.starts_with("REMOTE HOST IDENTIFICATION HAS CHANGED"));
    assert!(changed.contains("line 4 (a hashed entry)"));
    assert!(changed.contains("ssh-keygen -R 'web1'"));
    let plain = changed_key_message(path, "web1", key, 4, false);
    assert!(plain.contains("at line 4 of /home/u/.ssh/known_hosts"));
    let other = other_types_message(path, "web1", key, 2, "ssh-rsa");
    assert!(other.starts_with("Line 2 of"), "{other}");
}

#[test]
fn liveness_follows_server_alive_settings() {
    let mut options = SshOptions::default();
    assert_eq!(
        liveness(&options),
        (KEEPALIVE_INTERVAL, Duration::from_secs(45))
    );
    options.server_alive_interval = Some(Duration::from_secs(5));
    assert_eq!(
        liveness(&options),
        (Duration::from_secs(5), Duration::from_secs(15))
    );
    options.server_alive_count_max = Some(10);
    assert_eq!(liveness(&options).1, Duration::from_secs(50));
    // `ServerAliveCountMax 0` would give up at once; one unanswered ask is the least.
    options.server_alive_count_max = Some(0);
    assert_eq!(liveness(&options).1, Duration::from_secs(5));
    // `ServerAliveInterval 0` is ssh's "off": converge keeps its own keepalives.
    options.server_alive_interval = Some(Duration::ZERO);
    assert_eq!(
        liveness(&options),
        (KEEPALIVE_INTERVAL, Duration::from_secs(45))
    );
}

#[test]
fn notes_start_on_a_new_line() {
    let mut stderr = b"partial".to_vec();
    append_note(&mut stderr, &signal_note("KILL", ""));
    assert_eq!(
        stderr,
        b"partial\nconverge: the remote command was killed by signal SIGKILL\n"
    );
    assert_eq!(
        signal_note("TERM", "bye"),
        "converge: the remote command was killed by signal SIGTERM (bye)"
    );
}
