//! Host keys: `known_hosts` files read and matched as OpenSSH matches them, the server
//! asked for a key type already on record, and `accept-new` lines appended under a lock.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use ssh2::{CheckResult, HashType, KnownHostFileKind, MethodType, Session};

use crate::transport::{HostKeyChecking, Target, TransportError};

/// Serializes the read-check-append of `~/.ssh/known_hosts` by `accept-new`.
static KNOWN_HOSTS_LOCK: Mutex<()> = Mutex::new(());

/// `~/.ssh/known_hosts`, from `$HOME`.
fn known_hosts_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".ssh").join("known_hosts"))
}

/// The `known_hosts` files for `target`: its `UserKnownHostsFile`s, else
/// `~/.ssh/known_hosts`.
fn known_hosts_files(target: &Target) -> Result<Vec<PathBuf>, NoKnownHosts> {
    match &target.ssh.known_hosts_files {
        Some(files) => Ok(files.clone()),
        None => known_hosts_path()
            .map(|path| vec![path])
            .ok_or(NoKnownHosts),
    }
}

/// Neither the ssh config nor `$HOME` says where `known_hosts` is.
#[derive(Debug, thiserror::Error)]
#[error("HOME is not set, so ~/.ssh/known_hosts cannot be found")]
struct NoKnownHosts;

/// What every `known_hosts` file says about the server's key `blob`.
fn all_findings(
    session: &Session,
    texts: &[String],
    target: &Target,
    pattern: &str,
    blob: &[u8],
) -> Vec<Finding> {
    texts
        .iter()
        .enumerate()
        .flat_map(|(file, text)| {
            findings(session, text, &target.address, pattern, blob)
                .into_iter()
                .map(move |finding| Finding { file, ..finding })
        })
        .collect()
}

/// The name under which OpenSSH records a host in `known_hosts`.
pub(super) fn host_pattern(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_owned()
    } else {
        format!("[{address}]:{port}")
    }
}

/// One line of a `known_hosts` file that names some hosts and a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry<'a> {
    /// 1-based line number in the file.
    pub(super) line: usize,
    /// `@revoked` or `@cert-authority`, if present.
    pub(super) marker: Option<&'a str>,
    pub(super) hosts: &'a str,
    pub(super) key_type: &'a str,
    pub(super) key: &'a str,
}

impl Entry<'_> {
    pub(super) fn hashed(&self) -> bool {
        self.hosts.starts_with('|')
    }

    /// The entry without marker or comment, as libssh2 reads it.
    pub(super) fn bare(&self) -> String {
        format!("{} {} {}", self.hosts, self.key_type, self.key)
    }

    /// Whether the entry can possibly name `address`; a cheap filter before libssh2's
    /// exact check, which is left to decide hashed names and IPv6 spellings.
    pub(super) fn may_name(&self, address: &str) -> bool {
        self.hashed() || address.contains(':') || self.hosts.contains(address)
    }
}

/// The entries of a `known_hosts` file, skipping blank lines, comments and malformed lines.
pub(super) fn parse_known_hosts(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let mut fields = line.split_whitespace();
        let first = fields.next()?;
        if first.starts_with('#') {
            return None;
        }
        let (marker, hosts) = if first.starts_with('@') {
            (Some(first), fields.next()?)
        } else {
            (None, first)
        };
        Some(Entry {
            line: index + 1,
            marker,
            hosts,
            key_type: fields.next()?,
            key: fields.next()?,
        })
    })
}

/// What the `known_hosts` file says about one entry that names the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    /// Which of the `known_hosts` files, by index.
    pub(super) file: usize,
    pub(super) line: usize,
    pub(super) hashed: bool,
    pub(super) revoked: bool,
    pub(super) key_type: String,
    pub(super) same_key: bool,
}

/// The outcome of checking a presented host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// An entry holds this very key.
    Known,
    /// No entry names the host.
    Unknown,
    /// An entry names the host with a different key of the same type.
    Changed {
        file: usize,
        line: usize,
        hashed: bool,
    },
    /// Entries name the host, but only with keys of other types, which the server no
    /// longer offers.
    OtherTypes {
        file: usize,
        line: usize,
        key_type: String,
    },
    /// The key is marked `@revoked`.
    Revoked { file: usize, line: usize },
}

pub(super) fn judge(findings: &[Finding], presented_type: &str) -> Verdict {
    if let Some(f) = findings.iter().find(|f| f.revoked && f.same_key) {
        return Verdict::Revoked {
            file: f.file,
            line: f.line,
        };
    }
    let trusted: Vec<&Finding> = findings.iter().filter(|f| !f.revoked).collect();
    if trusted.iter().any(|f| f.same_key) {
        return Verdict::Known;
    }
    if let Some(f) = trusted.iter().find(|f| f.key_type == presented_type) {
        return Verdict::Changed {
            file: f.file,
            line: f.line,
            hashed: f.hashed,
        };
    }
    match trusted.first() {
        Some(f) => Verdict::OtherTypes {
            file: f.file,
            line: f.line,
            key_type: f.key_type.clone(),
        },
        None => Verdict::Unknown,
    }
}

/// Asks libssh2 whether `entry` names `pattern`, and if so whether it holds `key`.
fn check_entry(session: &Session, entry: &Entry<'_>, pattern: &str, key: &[u8]) -> Option<bool> {
    let mut hosts = session.known_hosts().ok()?;
    // Lines libssh2 cannot parse (key types it does not know, for one) cannot match.
    hosts
        .read_str(&entry.bare(), KnownHostFileKind::OpenSSH)
        .ok()?;
    match hosts.check(pattern, key) {
        CheckResult::Match => Some(true),
        CheckResult::Mismatch => Some(false),
        CheckResult::NotFound | CheckResult::Failure => None,
    }
}

/// The entries of `text` that name the server, checked against `key`.
///
/// A `@revoked` entry counts whatever hosts it names (usually `*`, a pattern libssh2 does
/// not understand): a revoked key is refused everywhere.
pub(super) fn findings(
    session: &Session,
    text: &str,
    address: &str,
    pattern: &str,
    key: &[u8],
) -> Vec<Finding> {
    let encoded = STANDARD.encode(key);
    parse_known_hosts(text)
        .filter_map(|e| {
            let (revoked, same_key) = match e.marker {
                None if e.may_name(address) => (false, check_entry(session, &e, pattern, key)?),
                Some("@revoked") if e.key == encoded => (true, true),
                _ => return None,
            };
            Some(Finding {
                file: 0,
                line: e.line,
                hashed: e.hashed(),
                revoked,
                key_type: e.key_type.to_owned(),
                same_key,
            })
        })
        .collect()
}

/// Reads a `known_hosts` file; a missing file is an empty one.
fn read_known_hosts(path: &Path) -> io::Result<String> {
    match fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Host key algorithms that produce keys of a `known_hosts` key type.
fn algorithms_for_key_type(key_type: &str) -> &[&str] {
    match key_type {
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-dss" => &["ssh-dss"],
        _ => &[],
    }
}

/// Orders `supported` host key algorithms so that those of `known` key types come first,
/// keeping libssh2's order otherwise and leaving out certificates, which are not checked.
pub(super) fn host_key_preference(supported: &[&str], known: &BTreeSet<String>) -> Vec<String> {
    let wanted: Vec<&str> = known
        .iter()
        .flat_map(|t| algorithms_for_key_type(t).iter().copied())
        .collect();
    let usable = supported.iter().filter(|a| !a.contains("-cert-"));
    let (first, rest): (Vec<&&str>, Vec<&&str>) = usable.partition(|a| wanted.contains(a));
    first
        .into_iter()
        .chain(rest)
        .map(|a| (*a).to_owned())
        .collect()
}

/// Asks the server for a key of a type `known_hosts` already has for it, as OpenSSH does;
/// otherwise libssh2's own preference could pick a type that is not recorded and make a
/// well-known host look changed.
pub(super) fn prefer_known_key_types(
    session: &Session,
    target: &Target,
) -> Result<(), TransportError> {
    let texts: Vec<String> = known_hosts_files(target)
        .unwrap_or_default()
        .iter()
        .map(|path| read_known_hosts(path).unwrap_or_default())
        .collect();
    let pattern = host_pattern(&target.address, target.port);
    // Any key that no entry can hold: every entry naming the host mismatches it.
    let known: BTreeSet<String> = all_findings(session, &texts, target, &pattern, b"\0")
        .into_iter()
        .filter(|f| !f.revoked)
        .map(|f| f.key_type)
        .collect();
    let Ok(supported) = session.supported_algs(MethodType::HostKey) else {
        return Ok(());
    };
    let preference = host_key_preference(&supported, &known);
    if preference.is_empty() {
        return Ok(());
    }
    session
        .method_pref(MethodType::HostKey, &preference.join(","))
        .map_err(|e| TransportError::Handshake {
            address: target.address.clone(),
            port: target.port,
            message: format!("cannot set the host key algorithms: {}", e.message()),
        })
}

/// The key type named at the start of an SSH public key blob.
pub(super) fn blob_key_type(blob: &[u8]) -> Option<&str> {
    let length = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?);
    let end = 4usize.checked_add(usize::try_from(length).ok()?)?;
    std::str::from_utf8(blob.get(4..end)?).ok()
}

/// An OpenSSH fingerprint, `SHA256:` and the unpadded base64 of the key blob's digest.
pub(super) fn fingerprint(sha256: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(sha256))
}

/// The line `accept-new` appends to `known_hosts`.
pub(super) fn known_hosts_line(pattern: &str, key_type: &str, blob: &[u8]) -> String {
    format!("{pattern} {key_type} {}\n", STANDARD.encode(blob))
}

/// Which entry a message points at.
fn entry_description(line: usize, hashed: bool) -> String {
    if hashed {
        format!("line {line} (a hashed entry)")
    } else {
        format!("line {line}")
    }
}

pub(super) fn unknown_key_message(
    path: &Path,
    pattern: &str,
    address: &str,
    port: u16,
    key: &str,
) -> String {
    format!(
        "the host key for {pattern} is not in {} (the server presented {key}); add it with \
         `ssh-keyscan -p {port} {address} >> ~/.ssh/known_hosts` after checking the \
         fingerprint, or set `host_key_checking: accept-new`",
        path.display()
    )
}

pub(super) fn changed_key_message(
    path: &Path,
    pattern: &str,
    key: &str,
    line: usize,
    hashed: bool,
) -> String {
    format!(
        "REMOTE HOST IDENTIFICATION HAS CHANGED: {pattern} presented {key}, which differs \
         from the key recorded at {} of {}; someone may be intercepting the connection, or \
         the host was reinstalled. If the change is expected, remove the old entry with \
         `ssh-keygen -R '{pattern}'` and connect again",
        entry_description(line, hashed),
        path.display()
    )
}

pub(super) fn other_types_message(
    path: &Path,
    pattern: &str,
    key: &str,
    line: usize,
    known_type: &str,
) -> String {
    format!(
        "Line {line} of {} records a key of type {known_type} for {pattern}, but the server \
         no longer offers that type and presented {key} instead; if the change is expected, \
         remove the old entry with `ssh-keygen -R '{pattern}'` and connect again",
        path.display()
    )
}

/// Checks the server's host key as `target.host_key_checking` asks.
pub(super) fn verify_host_key(session: &Session, target: &Target) -> Result<(), TransportError> {
    if target.host_key_checking == HostKeyChecking::Off {
        return Ok(());
    }
    let refuse = |message: String| TransportError::HostKey {
        host: target.name.clone(),
        message,
    };
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| refuse("the server presented no host key".to_owned()))?;
    let blob = blob.to_vec();
    let key_type = blob_key_type(&blob)
        .ok_or_else(|| refuse("the server's host key is malformed".to_owned()))?
        .to_owned();
    let digest = session
        .host_key_hash(HashType::Sha256)
        .ok_or_else(|| refuse("libssh2 did not compute the host key's digest".to_owned()))?;
    let presented = format!("{key_type} key {}", fingerprint(digest));
    let paths = known_hosts_files(target).map_err(|e| refuse(e.to_string()))?;
    let pattern = host_pattern(&target.address, target.port);

    let _guard = (target.host_key_checking == HostKeyChecking::AcceptNew).then(|| {
        KNOWN_HOSTS_LOCK
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    });
    let texts = paths
        .iter()
        .map(|path| {
            read_known_hosts(path)
                .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))
        })
        .collect::<Result<Vec<String>, _>>()?;
    let path_of = |file: usize| paths.get(file).map_or(Path::new(""), PathBuf::as_path);
    match judge(
        &all_findings(session, &texts, target, &pattern, &blob),
        &key_type,
    ) {
        Verdict::Known => Ok(()),
        Verdict::Unknown if target.host_key_checking == HostKeyChecking::AcceptNew => {
            // New keys go to the first file; with `UserKnownHostsFile none` there is
            // nowhere to remember them, as with ssh.
            let (Some(path), Some(text)) = (paths.first(), texts.first()) else {
                return Ok(());
            };
            append_known_host(path, text, &known_hosts_line(&pattern, &key_type, &blob))
                .map_err(|e| refuse(format!("cannot add {pattern} to {}: {e}", path.display())))
        }
        Verdict::Unknown => match paths.first() {
            Some(path) => Err(refuse(unknown_key_message(
                path,
                &pattern,
                &target.address,
                target.port,
                &presented,
            ))),
            None => Err(refuse(format!(
                "the host key for {pattern} cannot be checked: the ssh config sets \
                 UserKnownHostsFile none (the server presented {presented})"
            ))),
        },
        Verdict::Changed { file, line, hashed } => Err(refuse(changed_key_message(
            path_of(file),
            &pattern,
            &presented,
            line,
            hashed,
        ))),
        Verdict::OtherTypes {
            file,
            line,
            key_type,
        } => Err(refuse(other_types_message(
            path_of(file),
            &pattern,
            &presented,
            line,
            &key_type,
        ))),
        Verdict::Revoked { file, line } => Err(refuse(format!(
            "{pattern} presented {presented}, which line {line} of {} marks as revoked",
            path_of(file).display()
        ))),
    }
}

/// Appends `line` to the `known_hosts` file at `path`, whose current content is `text`,
/// creating `~/.ssh` (mode 0700) and the file (mode 0600) if needed.
fn append_known_host(path: &Path, text: &str, line: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let mut record = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        record.push('\n');
    }
    record.push_str(line);
    file.write_all(record.as_bytes())
}
