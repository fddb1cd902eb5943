//! Authentication: ssh-agent's keys, then key files with their certificates, as `ssh`
//! offers them.

use std::path::{Path, PathBuf};

use ssh2::{ErrorCode, Session};

use super::{LIBSSH2_ERROR_FILE, PASSPHRASE_ATTEMPTS};
use crate::transport::keys::{self, Protection};
use crate::transport::{Target, TransportError};

/// Key files tried, in this order, when the target names none and ssh-agent fails.
pub(super) const DEFAULT_KEY_FILES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// The key files to offer for `target`, and whether only they may be offered.
pub(super) fn key_files(target: &Target) -> (Vec<PathBuf>, bool) {
    if let Some(path) = &target.identity_file {
        return (vec![path.clone()], true);
    }
    if !target.ssh.identity_files.is_empty() {
        return (
            target.ssh.identity_files.clone(),
            target.ssh.identities_only,
        );
    }
    let defaults = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| {
            let dir = Path::new(&home).join(".ssh");
            DEFAULT_KEY_FILES
                .iter()
                .map(|name| dir.join(name))
                .collect()
        })
        .unwrap_or_default();
    (defaults, target.ssh.identities_only)
}

/// Logs in as `target.user`: ssh-agent's keys, then the key files (see the module docs).
pub(super) fn authenticate(session: &Session, target: &Target) -> Result<(), TransportError> {
    let user = target.user.as_str();
    let fail = |message: String| TransportError::Auth {
        user: target.user.clone(),
        host: target.name.clone(),
        message,
    };

    if let Some(path) = &target.identity_file {
        if !path.is_file() {
            return Err(fail(format!(
                "the identity file {} does not exist or is not a file",
                path.display()
            )));
        }
    }

    // Asking for the methods also tries the "none" method, which some servers accept.
    if let Ok(methods) = session.auth_methods(user) {
        if !methods.split(',').any(|m| m == "publickey") {
            return Err(fail(format!(
                "the server does not offer public key authentication (it offers: {methods})"
            )));
        }
    }
    if session.authenticated() {
        return Ok(());
    }

    let (wanted, only) = key_files(target);
    let files: Vec<PathBuf> = wanted
        .iter()
        .filter(|path| path.is_file())
        .cloned()
        .collect();
    let mut tried = Vec::new();
    match try_agent(session, user, &files, only) {
        Ok(()) => return Ok(()),
        Err(reason) => tried.push(format!("ssh-agent ({reason})")),
    }
    for path in &files {
        match try_key_file(session, user, path, &target.ssh.certificate_files) {
            Ok(()) => return Ok(()),
            Err(reason) => tried.push(format!("{} ({reason})", path.display())),
        }
    }
    if files.is_empty() {
        let names: Vec<String> = wanted.iter().map(|p| p.display().to_string()).collect();
        tried.push(if names.is_empty() {
            "no key file ($HOME is not set)".to_owned()
        } else {
            format!("{} (none exists)", names.join(", "))
        });
    }
    Err(fail(format!(
        "no key was accepted; tried {}",
        tried.join("; ")
    )))
}

/// Tries ssh-agent's keys: those of `files` first (by their `.pub` files), then, unless
/// `only`, every other key it holds.
pub(super) fn try_agent(
    session: &Session,
    user: &str,
    files: &[PathBuf],
    only: bool,
) -> Result<(), String> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none_or(|s| s.is_empty()) {
        return Err("SSH_AUTH_SOCK is not set".to_owned());
    }
    let mut agent = session
        .agent()
        .map_err(|e| format!("unavailable: {}", e.message()))?;
    agent
        .connect()
        .map_err(|e| format!("cannot connect: {}", e.message()))?;
    let wanted: Vec<Vec<u8>> = files.iter().filter_map(|f| keys::public_blob(f)).collect();
    let result = agent
        .list_identities()
        .and_then(|()| agent.identities())
        .map_err(|e| format!("cannot list keys: {}", e.message()))
        .and_then(|identities| {
            let (mine, others): (Vec<_>, Vec<_>) = identities
                .into_iter()
                .partition(|identity| wanted.iter().any(|blob| blob == identity.blob()));
            let candidates: Vec<_> = if only {
                mine
            } else {
                mine.into_iter().chain(others).collect()
            };
            if candidates.is_empty() {
                return Err(if only {
                    "it holds none of the configured keys".to_owned()
                } else {
                    "it holds no keys".to_owned()
                });
            }
            let count = candidates.len();
            for identity in &candidates {
                if agent.userauth(user, identity).is_ok() {
                    return Ok(());
                }
            }
            Err(format!("none of its {count} usable keys was accepted"))
        });
    // Only the connection to the agent is closed here; the session stays logged in.
    let _ = agent.disconnect();
    result
}

/// Tries one private key file: with its certificates first, then alone. An encrypted key
/// gets its passphrase from [`keys::passphrase`], asked again after a wrong one.
pub(super) fn try_key_file(
    session: &Session,
    user: &str,
    path: &Path,
    extra_certificates: &[PathBuf],
) -> Result<(), String> {
    let protection = keys::protection(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut certificates: Vec<PathBuf> = Vec::new();
    let mut own = path.as_os_str().to_owned();
    own.push("-cert.pub");
    let own = PathBuf::from(own);
    if own.is_file() {
        certificates.push(own);
    }
    certificates.extend(extra_certificates.iter().filter(|c| c.is_file()).cloned());
    let attempts: Vec<Option<&Path>> = certificates
        .iter()
        .map(|c| Some(c.as_path()))
        .chain([None])
        .collect();

    let mut passphrase: Option<String> = None;
    let mut rejected: Option<String> = None;
    for _ in 0..PASSPHRASE_ATTEMPTS {
        if protection == Protection::Encrypted {
            passphrase = Some(
                keys::passphrase(path, rejected.as_deref())
                    .map_err(|reason| reason.explain(path))?,
            );
        }
        let mut last = String::new();
        let mut wrong_passphrase = false;
        for certificate in &attempts {
            match session.userauth_pubkey_file(user, *certificate, path, passphrase.as_deref()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    wrong_passphrase = protection == Protection::Encrypted
                        && e.code() == ErrorCode::Session(LIBSSH2_ERROR_FILE);
                    last = match certificate {
                        Some(c) => format!("with {}: {}", c.display(), e.message()),
                        None => e.message().to_owned(),
                    };
                    if wrong_passphrase {
                        break;
                    }
                }
            }
        }
        if !wrong_passphrase {
            return Err(last);
        }
        rejected = passphrase.take();
    }
    Err(format!(
        "the passphrase was wrong {PASSPHRASE_ATTEMPTS} times"
    ))
}
