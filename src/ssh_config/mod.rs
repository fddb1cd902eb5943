//! The OpenSSH client configuration: `~/.ssh/config` (or `-F FILE`) and
//! `/etc/ssh/ssh_config`, read the way `ssh` reads them, so that converge reaches every
//! host exactly as the operator's own `ssh HOST` would.
//!
//! # What is understood
//!
//! `Host` blocks (patterns with `*`, `?` and `!` negation), `Include` (globs; relative
//! paths are under `~/.ssh`, or `/etc/ssh` for the system file; also inside a `Host`
//! block, where the included lines apply only to that block's hosts), and the settings
//! `HostName`, `Port`, `User`, `IdentityFile`, `CertificateFile`, `IdentitiesOnly`,
//! `ProxyJump`, `ProxyCommand`, `UserKnownHostsFile`, `StrictHostKeyChecking`,
//! `ConnectTimeout`, `ServerAliveInterval` and `ServerAliveCountMax`. Other keywords are
//! ignored. `Match` blocks are not evaluated: `Match all` applies to every host, and the
//! settings of any other `Match` block are skipped.
//!
//! # Guarantees
//!
//! - As in OpenSSH, the first value obtained for a setting wins (`IdentityFile` and
//!   `CertificateFile` accumulate), files are read in order (`-F FILE`, or the user's file
//!   then the system file), and a `Host` line matches a host when one of its patterns does
//!   and none of its negated (`!`) patterns does.
//! - `Host` patterns are matched against the name converge would pass to `ssh`: the
//!   inventory's `host` (`ansible_host`), or the inventory name. `HostName` then replaces
//!   the address to connect to; every other setting the inventory gives explicitly wins
//!   over the ssh config, as in Ansible.
//! - `ProxyJump` hosts are resolved with the same config (their own `HostName`, `Port`,
//!   `User`, keys, known hosts), and the first jump host's own `ProxyJump` is followed,
//!   as `ssh -J` does; a chain that loops is an error, not a hang.
//! - Errors name the file and line. A missing `~/.ssh/config` or system file is no
//!   error; a missing `-F FILE` is. No input makes this module panic.
//!
//! # Layout
//!
//! This file holds the loaded configuration and its errors; [`lexer`] splits lines,
//! [`settings`] checks each keyword's value, [`include`](mod@include) reads files and follows
//! `Include`, [`tokens`] expands `%` tokens, and [`apply`] resolves a host's settings into
//! its [`Target`](crate::transport::Target).

mod apply;
mod include;
mod lexer;
mod settings;
#[cfg(test)]
mod tests;
mod tokens;

use settings::Setting;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use tokens::TokenError;

/// `Include` nesting deeper than this is an error (OpenSSH's own limit).
const MAX_INCLUDE_DEPTH: usize = 16;
/// A `ProxyJump` chain longer than this (counting jump hosts' own jumps) is a loop.
const MAX_JUMPS: usize = 16;
/// The system-wide client configuration, read after the user's.
const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

/// Why the ssh config could not be read, or a host's settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    /// A config file (`-F FILE`, or an existing default one) cannot be read.
    #[error("cannot read ssh config {}: {source}", file.display())]
    Read { file: PathBuf, source: io::Error },
    /// A line the config reader rejects, as `ssh` would.
    #[error("{}:{line}: {source}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        source: LineError,
    },
    /// A setting that is valid in itself but cannot be used for this host.
    #[error("host {host}: {setting}: {source} ({}:{line})", file.display())]
    Resolve {
        host: String,
        file: PathBuf,
        line: usize,
        setting: &'static str,
        source: TokenError,
    },
    /// `ProxyJump` hosts that lead back to themselves, or too many of them.
    #[error("host {host}: the ProxyJump chain {} is too long or loops", chain.join(" -> "))]
    JumpLoop { host: String, chain: Vec<String> },
}

/// Why one line of a config file is rejected.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("a backslash at the end of the line")]
    TrailingBackslash,
    #[error("unterminated quote")]
    Quote,
    #[error("Host needs at least one pattern")]
    HostPatterns,
    #[error("Match needs criteria")]
    MatchCriteria,
    #[error("Include needs a file name")]
    IncludeFile,
    #[error("Include nested more than {MAX_INCLUDE_DEPTH} deep")]
    IncludeDepth,
    #[error("{keyword} needs a value")]
    NoValue { keyword: &'static str },
    #[error("{keyword} takes one value, found {found}")]
    ValueCount { keyword: &'static str, found: usize },
    #[error("{keyword} {text:?}: expected a whole number of seconds")]
    Seconds { keyword: &'static str, text: String },
    #[error("{keyword} {text:?}: expected yes or no")]
    YesNo { keyword: &'static str, text: String },
    #[error("Port {text:?}: expected an integer from 1 to 65535")]
    Port { text: String },
    #[error("StrictHostKeyChecking {text:?}: expected yes, accept-new, no, off or ask")]
    HostKeyChecking { text: String },
    #[error("ServerAliveCountMax {text:?}: expected a whole number")]
    AliveCount { text: String },
    #[error("ProxyJump {spec:?}: {reason}")]
    Jump { spec: String, reason: &'static str },
}

/// Where a setting was written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    file: PathBuf,
    line: usize,
}

/// When the lines of a block apply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// A `Host` line's patterns.
    Host(Vec<String>),
    /// A `Match` block other than `Match all`: not evaluated, so never applied.
    Never,
}

/// One line of a config file that converge uses, with the blocks it sits in.
#[derive(Debug, Clone)]
struct Entry {
    /// All must match: the block of every `Include` that led here, and the line's own.
    conditions: Vec<Condition>,
    setting: Setting,
    origin: Origin,
}

/// The local facts that `~` and `%` tokens expand to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// `$HOME`; `~` and `%d`.
    pub home: Option<PathBuf>,
    /// The local user name; `%u`, and the default remote user of jump hosts.
    pub user: String,
}

impl Local {
    /// From the environment: `$HOME`, and `$USER` (or `root`), as the inventory's default.
    pub fn from_env() -> Local {
        Local {
            home: std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(PathBuf::from),
            user: std::env::var("USER")
                .ok()
                .filter(|user| !user.is_empty())
                .unwrap_or_else(|| "root".to_owned()),
        }
    }
}

/// A parsed OpenSSH client configuration.
#[derive(Debug, Clone)]
pub struct SshConfig {
    entries: Vec<Entry>,
    local: Local,
}

impl SshConfig {
    /// Reads `file` (`-F FILE`, which must exist), or else `~/.ssh/config` and then
    /// `/etc/ssh/ssh_config`, whichever exist.
    pub fn load(file: Option<&Path>) -> Result<SshConfig, SshConfigError> {
        let local = Local::from_env();
        let mut config = SshConfig {
            entries: Vec::new(),
            local,
        };
        let user_dir = config.local.home.as_ref().map(|home| home.join(".ssh"));
        if let Some(file) = file {
            let text = fs::read_to_string(file).map_err(|source| SshConfigError::Read {
                file: file.to_path_buf(),
                source,
            })?;
            config.read(&text, file, user_dir.as_deref(), &[], 0)?;
            return Ok(config);
        }
        if let Some(dir) = &user_dir {
            config.read_if_present(&dir.join("config"), Some(dir), &[], 0)?;
        }
        config.read_if_present(
            Path::new(SYSTEM_CONFIG),
            Some(Path::new("/etc/ssh")),
            &[],
            0,
        )?;
        Ok(config)
    }

    /// Parses one config text; relative `Include`s are resolved under `include_dir`.
    #[cfg(test)]
    pub fn parse(
        text: &str,
        origin: &Path,
        include_dir: Option<&Path>,
        local: Local,
    ) -> Result<SshConfig, SshConfigError> {
        let mut config = SshConfig {
            entries: Vec::new(),
            local,
        };
        config.read(text, origin, include_dir, &[], 0)?;
        Ok(config)
    }
}
