//! Authentication: ssh-agent's keys, then key files with their certificates, as `ssh`
//! offers them.

use std::io;
use std::path::{Path, PathBuf};

use ssh2::{ErrorCode, Session};

use super::{LIBSSH2_ERROR_FILE, PASSPHRASE_ATTEMPTS};
use crate::transport::keys::{self, NoPassphrase, Protection};
use crate::transport::{Target, TransportError};

/// Key files tried, in this order, when the target names none and ssh-agent fails.
const DEFAULT_KEY_FILES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// The key files to offer for `target`, and whether only they may be offered.
fn key_files(target: &Target) -> (Vec<PathBuf>, bool) {
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
    // Asked only after the keys: the question costs a round trip, and its answer only
    // explains a refusal. Asking also tries the "none" method, which some servers accept.
    let methods = session.auth_methods(user);
    if session.authenticated() {
        return Ok(());
    }
    if let Ok(methods) = methods {
        if !methods.split(',').any(|m| m == "publickey") {
            return Err(fail(format!(
                "the server does not offer public key authentication (it offers: {methods})"
            )));
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

/// Why ssh-agent logged nobody in.
#[derive(Debug, thiserror::Error)]
enum AgentError {
    #[error("SSH_AUTH_SOCK is not set")]
    NoSocket,
    #[error("unavailable: {}", .0.message())]
    Unavailable(#[source] ssh2::Error),
    #[error("cannot connect: {}", .0.message())]
    Connect(#[source] ssh2::Error),
    #[error("cannot list keys: {}", .0.message())]
    List(#[source] ssh2::Error),
    #[error("it holds none of the configured keys")]
    NoneConfigured,
    #[error("it holds no keys")]
    NoKeys,
    #[error("none of its {count} usable keys was accepted")]
    Refused { count: usize },
}

/// Why one key file logged nobody in.
#[derive(Debug, thiserror::Error)]
enum KeyFileError {
    #[error("cannot read it: {0}")]
    Read(#[source] io::Error),
    #[error("{}", reason.explain(key))]
    Passphrase { key: PathBuf, reason: NoPassphrase },
    /// The server refused the key, offered with `certificate` or alone.
    #[error("{}{}", with_certificate(certificate.as_deref()), source.message())]
    Refused {
        certificate: Option<PathBuf>,
        source: ssh2::Error,
    },
    #[error("the passphrase was wrong {PASSPHRASE_ATTEMPTS} times")]
    WrongPassphrase,
}

/// `with CERT: ` when a certificate was offered with the key.
fn with_certificate(certificate: Option<&Path>) -> String {
    certificate
        .map(|c| format!("with {}: ", c.display()))
        .unwrap_or_default()
}

/// Tries ssh-agent's keys: those of `files` first (by their `.pub` files), then, unless
/// `only`, every other key it holds.
fn try_agent(
    session: &Session,
    user: &str,
    files: &[PathBuf],
    only: bool,
) -> Result<(), AgentError> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none_or(|s| s.is_empty()) {
        return Err(AgentError::NoSocket);
    }
    let mut agent = session.agent().map_err(AgentError::Unavailable)?;
    agent.connect().map_err(AgentError::Connect)?;
    let wanted: Vec<Vec<u8>> = files.iter().filter_map(|f| keys::public_blob(f)).collect();
    let result = agent
        .list_identities()
        .and_then(|()| agent.identities())
        .map_err(AgentError::List)
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
                    AgentError::NoneConfigured
                } else {
                    AgentError::NoKeys
                });
            }
            let count = candidates.len();
            for identity in &candidates {
                if agent.userauth(user, identity).is_ok() {
                    return Ok(());
                }
            }
            Err(AgentError::Refused { count })
        });
    // Only the connection to the agent is closed here; the session stays logged in.
    let _ = agent.disconnect();
    result
}

/// Tries one private key file: with its certificates first, then alone. An encrypted key
/// gets its passphrase from [`keys::passphrase`], asked again after a wrong one.
fn try_key_file(
    session: &Session,
    user: &str,
    path: &Path,
    extra_certificates: &[PathBuf],
) -> Result<(), KeyFileError> {
    let protection = keys::protection(path).map_err(KeyFileError::Read)?;
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
                keys::passphrase(path, rejected.as_deref()).map_err(|reason| {
                    KeyFileError::Passphrase {
                        key: path.to_path_buf(),
                        reason,
                    }
                })?,
            );
        }
        let mut last = None;
        let mut wrong_passphrase = false;
        for certificate in &attempts {
            match session.userauth_pubkey_file(user, *certificate, path, passphrase.as_deref()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    wrong_passphrase = protection == Protection::Encrypted
                        && e.code() == ErrorCode::Session(LIBSSH2_ERROR_FILE);
                    last = Some(KeyFileError::Refused {
                        certificate: certificate.map(Path::to_path_buf),
                        source: e,
                    });
                    if wrong_passphrase {
                        break;
                    }
                }
            }
        }
        if !wrong_passphrase {
            // `attempts` always ends with the key alone, so one attempt was refused.
            return Err(last.unwrap_or(KeyFileError::WrongPassphrase));
        }
        rejected = passphrase.take();
    }
    Err(KeyFileError::WrongPassphrase)
}
