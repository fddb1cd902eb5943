//! How converge reaches a host: SSH (the `ssh2` crate) or the local machine.
//!
//! A [`Transport`] runs one shell command line and returns its exit status and output.
//! Everything above this layer (modules, engine) sees a host only through this trait;
//! commands arrive here already rendered and quoted, so a transport never builds shell
//! strings itself.

#[cfg(test)]
pub mod fake;
mod jump;
mod keys;
pub mod local;
pub mod ssh;

use std::path::PathBuf;
use std::time::Duration;

/// What a command returned.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit status; `-1` when the remote side closed without one (killed by a signal).
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The default for [`Limits::max_output`]: 64 MiB.
pub const DEFAULT_MAX_OUTPUT: u64 = 64 * 1024 * 1024;

/// Bounds on what one host may cost the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of output (stdout and stderr together) read from any one command; past it
    /// reading stops and the command fails with [`TransportError::OutputLimit`].
    pub max_output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }
}

/// A connection to one host, reused for every command sent to it.
pub trait Transport: Send {
    /// Runs `command_line` with a POSIX shell (the login shell over SSH, `sh -c` locally),
    /// feeding it `stdin` and closing stdin afterwards.
    fn run(&mut self, command_line: &str, stdin: &[u8]) -> Result<Output, TransportError>;

    /// Runs `command_line` like [`Transport::run`], but feeds it `stdin` without closing
    /// it. A command whose stdout so far ends with `ready` is *held*: nothing more is
    /// read from it, and it keeps running, its stdin open, until [`Transport::release`]
    /// or until this connection ends, however it ends (the controller killed, the
    /// network gone).
    /// Returns the output (with `ready` removed) and whether the command is held; a
    /// command that did not say `ready` was waited for, and its status is the output's.
    /// One command at a time can be held.
    fn hold(
        &mut self,
        command_line: &str,
        stdin: &[u8],
        ready: &[u8],
    ) -> Result<(Output, bool), TransportError>;

    /// Closes the held command's stdin, which ends it. Over SSH this is not waited for
    /// (it would cost a round trip): the command ends a moment after the server reads
    /// the end of its input, and whoever wants the host's lock next waits for it there.
    fn release(&mut self);
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
///
/// Built once, by [`Target::new`], from the [`TargetSettings`] of each source: the
/// command line over the inventory ([`crate::inventory::InventoryHost::settings`]) over
/// `~/.ssh/config` ([`crate::ssh_config::SshConfig::target`]): inventory values win over
/// the ssh config, as in Ansible.
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
    /// OpenSSH client settings beyond the inventory's.
    pub ssh: SshOptions,
}

impl Target {
    /// The target for host `name` from `settings` (its sources already folded with
    /// [`TargetSettings::over`]), with defaults for what no source set: the ssh config's
    /// `HostName`, else the inventory's `host`, else `name` as the address; port 22;
    /// `default_user`; no identity file; SSH; strict host key checking.
    pub fn new(name: &str, settings: TargetSettings, default_user: &str) -> Target {
        Target {
            name: name.to_owned(),
            address: settings
                .host_name
                .or(settings.host)
                .unwrap_or_else(|| name.to_owned()),
            port: settings.port.unwrap_or(22),
            user: settings.user.unwrap_or_else(|| default_user.to_owned()),
            identity_file: settings.identity_file,
            connection: settings.connection.unwrap_or(Connection::Ssh),
            host_key_checking: settings
                .host_key_checking
                .unwrap_or(HostKeyChecking::Strict),
            ssh: settings.ssh.unwrap_or_default(),
        }
    }
}

/// What one source (the command line, the inventory, the ssh config, a `ProxyJump`
/// spec) says about how to reach a host; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetSettings {
    /// The name `ssh` would be given (the inventory's `host`); the ssh config's `Host`
    /// lines match it.
    pub host: Option<String>,
    /// The address that name stands for (the ssh config's `HostName`).
    pub host_name: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    pub connection: Option<Connection>,
    pub host_key_checking: Option<HostKeyChecking>,
    /// The OpenSSH client settings, which only the ssh config gives.
    pub ssh: Option<SshOptions>,
}

impl TargetSettings {
    /// These settings over `lower`'s: each one from `self` where `self` has it.
    #[must_use]
    pub fn over(self, lower: TargetSettings) -> TargetSettings {
        TargetSettings {
            host: self.host.or(lower.host),
            host_name: self.host_name.or(lower.host_name),
            port: self.port.or(lower.port),
            user: self.user.or(lower.user),
            identity_file: self.identity_file.or(lower.identity_file),
            connection: self.connection.or(lower.connection),
            host_key_checking: self.host_key_checking.or(lower.host_key_checking),
            ssh: self.ssh.or(lower.ssh),
        }
    }
}

/// SSH client settings that come from `~/.ssh/config` (or `-F FILE`).
///
/// The default is what converge does without any ssh config: no extra keys, a direct
/// connection, `~/.ssh/known_hosts`, built-in timeouts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshOptions {
    /// `IdentityFile`s, in order; used when the inventory names no `identity_file`.
    pub identity_files: Vec<PathBuf>,
    /// `CertificateFile`s, offered with the private key they certify.
    pub certificate_files: Vec<PathBuf>,
    /// `IdentitiesOnly yes`: offer only the configured keys, never the agent's others.
    pub identities_only: bool,
    /// `ProxyJump` hosts, in the order they are passed through (the first is dialled
    /// directly, each next one through the previous one, the target through the last).
    pub jumps: Vec<Target>,
    /// A `ProxyCommand`, which converge cannot run: connecting refuses with the reason.
    pub proxy_command: Option<String>,
    /// `UserKnownHostsFile`s: checked in order, new keys go to the first. `None` means
    /// `~/.ssh/known_hosts`; an empty list (`none`) means no file at all.
    pub known_hosts_files: Option<Vec<PathBuf>>,
    /// `ConnectTimeout`: how long one TCP connection attempt may take.
    pub connect_timeout: Option<Duration>,
    /// `ServerAliveInterval`: silence after which the server is asked for a sign of life.
    pub server_alive_interval: Option<Duration>,
    /// `ServerAliveCountMax`: unanswered keepalives after which the server is given up.
    pub server_alive_count_max: Option<u32>,
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
    /// A command wrote more than [`Limits::max_output`]; the rest was not read.
    #[error(
        "a command on {host} wrote more than {} of output (the limit per command); \
         the rest was not read. If that much output is expected, raise the limit with \
         --max-output SIZE",
        human_size(*limit)
    )]
    OutputLimit { host: String, limit: u64 },
    #[error("cannot run a local command: {0}")]
    Local(#[from] std::io::Error),
    /// Something in the ssh config that converge cannot do.
    #[error("cannot reach {host}: {message}")]
    Unsupported { host: String, message: String },
    /// A jump host could not be reached or logged in to.
    #[error("through jump host {jump}: {source}")]
    Jump {
        jump: String,
        source: Box<TransportError>,
    },
    /// A jump host refused or failed to open the connection to the next host.
    #[error("jump host {jump} could not connect to {destination}: {source}")]
    Forward {
        jump: String,
        destination: String,
        source: jump::RelayError,
    },
}

/// Opens a transport to `target`.
pub fn connect(target: &Target, limits: Limits) -> Result<Box<dyn Transport>, TransportError> {
    // The engine's unit tests reach scripted hosts this way, never the network.
    #[cfg(test)]
    if let Some(fake) = fake::connect(target) {
        return fake;
    }
    match target.connection {
        Connection::Local => Ok(Box::new(local::LocalTransport::new(&target.name, limits))),
        Connection::Ssh => Ok(Box::new(ssh::SshTransport::connect(target, limits)?)),
    }
}

/// A byte count as people write it: `64 MiB`, `512 KiB`, `100 bytes`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}

/// Why a command-line size cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("`{text}` is not a size (e.g. 64M, 512K, 1G, 100000)")]
    NotASize { text: String },
    #[error("`{text}` has an unknown unit (use K, M or G)")]
    Unit { text: String },
    #[error("`{text}` is too large")]
    TooLarge { text: String },
    #[error("the output limit must be at least 1 byte")]
    Zero,
}

/// Parses a size given on the command line: a number of bytes, optionally followed by
/// `K`, `M` or `G` (powers of 1024; `KiB`, `MiB`, `GiB` are accepted too).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let trimmed = text.trim();
    let digits = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits);
    let number: u64 = number.parse().map_err(|_| SizeError::NotASize {
        text: text.to_owned(),
    })?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => {
            return Err(SizeError::Unit {
                text: text.to_owned(),
            })
        }
    };
    let bytes = number
        .checked_mul(factor)
        .ok_or_else(|| SizeError::TooLarge {
            text: text.to_owned(),
        })?;
    if bytes == 0 {
        return Err(SizeError::Zero);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print_as_people_write_them() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100000"), Ok(100_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5T").is_err());
        assert_eq!(human_size(DEFAULT_MAX_OUTPUT), "64 MiB");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
