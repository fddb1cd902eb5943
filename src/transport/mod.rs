//! How converge reaches a host: SSH (the `ssh2` crate) or the local machine.
//!
//! A [`Transport`] runs one shell command line and returns its exit status and output.
//! Everything above this layer (modules, engine) sees a host only through this trait;
//! commands arrive here already rendered and quoted, so a transport never builds shell
//! strings itself.

pub mod local;
pub mod ssh;

use std::path::PathBuf;

/// What a command returned.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit status; `-1` when the remote side closed without one (killed by a signal).
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A connection to one host, reused for every command sent to it.
pub trait Transport: Send {
    /// Runs `command_line` with a POSIX shell (the login shell over SSH, `sh -c` locally),
    /// feeding it `stdin` and closing stdin afterwards.
    fn run(&mut self, command_line: &str, stdin: &[u8]) -> Result<Output, TransportError>;
}

/// How to reach a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Ssh,
    Local,
}

/// What to do with the host key the server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyChecking {
    /// The key must already be in the `known_hosts` file; a different key is refused.
    Strict,
    /// An unknown key is added to the `known_hosts` file; a different key is refused.
    AcceptNew,
    /// No checking at all (throwaway hosts only).
    Off,
}

/// Everything needed to open a [`Transport`] to one inventory host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host's inventory name, used in messages.
    pub name: String,
    /// DNS name or IP address to connect to.
    pub address: String,
    pub port: u16,
    /// Remote login user.
    pub user: String,
    /// Private key file; when absent, ssh-agent and then the default key files are tried.
    pub identity_file: Option<PathBuf>,
    pub connection: Connection,
    pub host_key_checking: HostKeyChecking,
}

/// Why a host could not be reached or a command could not be run on it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {address}:{port}: {source}")]
    Connect {
        address: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("SSH handshake with {address}:{port} failed: {message}")]
    Handshake {
        address: String,
        port: u16,
        message: String,
    },
    #[error("host key verification failed for {host}: {message}")]
    HostKey { host: String, message: String },
    #[error("authentication as {user}@{host} failed: {message}")]
    Auth {
        user: String,
        host: String,
        message: String,
    },
    #[error("connection to {host} lost: {message}")]
    Channel { host: String, message: String },
    #[error("cannot run a local command: {0}")]
    Local(#[from] std::io::Error),
}

/// Opens a transport to `target`.
pub fn connect(target: &Target) -> Result<Box<dyn Transport>, TransportError> {
    match target.connection {
        Connection::Local => Ok(Box::new(local::LocalTransport::new())),
        Connection::Ssh => Ok(Box::new(ssh::SshTransport::connect(target)?)),
    }
}
