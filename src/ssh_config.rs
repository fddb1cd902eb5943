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

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::inventory::expand_tilde;
use crate::transport::{Connection, HostKeyChecking, Target};

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
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// A setting that is valid in itself but cannot be used for this host.
    #[error("host {host}: {message} ({}:{line})", file.display())]
    Resolve {
        host: String,
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// `ProxyJump` hosts that lead back to themselves, or too many of them.
    #[error("host {host}: the ProxyJump chain {} is too long or loops", chain.join(" -> "))]
    JumpLoop { host: String, chain: Vec<String> },
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

/// One setting converge understands, with its value already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Setting {
    HostName(String),
    Port(u16),
    User(String),
    IdentityFile(String),
    CertificateFile(String),
    IdentitiesOnly(bool),
    /// `ProxyJump` or `ProxyCommand`: one slot in OpenSSH, so the first of them wins.
    Proxy(Proxy),
    UserKnownHostsFile(Vec<String>),
    StrictHostKeyChecking(HostKeyChecking),
    ConnectTimeout(Duration),
    ServerAliveInterval(Duration),
    ServerAliveCountMax(u32),
}

/// How a host is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proxy {
    /// `none`: directly.
    Direct,
    Jump(Vec<JumpSpec>),
    Command(String),
}

/// One `[user@]host[:port]` of a `ProxyJump` list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JumpSpec {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl JumpSpec {
    /// The spec as written, for messages.
    fn display(&self) -> String {
        let mut text = String::new();
        if let Some(user) = &self.user {
            text.push_str(user);
            text.push('@');
        }
        if self.host.contains(':') {
            text.push('[');
            text.push_str(&self.host);
            text.push(']');
        } else {
            text.push_str(&self.host);
        }
        if let Some(port) = self.port {
            text.push(':');
            text.push_str(&port.to_string());
        }
        text
    }
}

/// One line of a config file that converge uses, with the blocks it sits in.
#[derive(Debug, Clone)]
struct Entry {
    /// All must match: the block of every `Include` that led here, and the line's own.
    conditions: Vec<Condition>,
    setting: Setting,
    origin: Origin,
}

/// The settings that apply to one host, first value wins.
#[derive(Debug, Default)]
struct HostSettings<'a> {
    host_name: Option<(&'a str, &'a Origin)>,
    port: Option<u16>,
    user: Option<&'a str>,
    identity_files: Vec<(&'a str, &'a Origin)>,
    certificate_files: Vec<(&'a str, &'a Origin)>,
    identities_only: Option<bool>,
    proxy: Option<(&'a Proxy, &'a Origin)>,
    known_hosts: Option<(&'a [String], &'a Origin)>,
    strict: Option<HostKeyChecking>,
    connect_timeout: Option<Duration>,
    alive_interval: Option<Duration>,
    alive_count: Option<u32>,
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

    fn read_if_present(
        &mut self,
        file: &Path,
        include_dir: Option<&Path>,
        outer: &[Condition],
        depth: usize,
    ) -> Result<(), SshConfigError> {
        match fs::read_to_string(file) {
            Ok(text) => self.read(&text, file, include_dir, outer, depth),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SshConfigError::Read {
                file: file.to_path_buf(),
                source,
            }),
        }
    }

    /// Reads the lines of one file under the conditions of the `Include` that led to it.
    fn read(
        &mut self,
        text: &str,
        file: &Path,
        include_dir: Option<&Path>,
        outer: &[Condition],
        depth: usize,
    ) -> Result<(), SshConfigError> {
        let mut conditions = outer.to_vec();
        for (index, raw) in text.lines().enumerate() {
            let origin = Origin {
                file: file.to_path_buf(),
                line: index + 1,
            };
            let invalid = |message: String| SshConfigError::Invalid {
                file: file.to_path_buf(),
                line: index + 1,
                message,
            };
            let Some((keyword, args)) = split_line(raw).map_err(invalid)? else {
                continue;
            };
            match keyword.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(invalid("Host needs at least one pattern".to_owned()));
                    }
                    conditions = outer.to_vec();
                    conditions.push(Condition::Host(
                        args.iter().map(|a| a.to_ascii_lowercase()).collect(),
                    ));
                }
                "match" => {
                    if args.is_empty() {
                        return Err(invalid("Match needs criteria".to_owned()));
                    }
                    conditions = outer.to_vec();
                    if !(args.len() == 1 && args[0].eq_ignore_ascii_case("all")) {
                        conditions.push(Condition::Never);
                    }
                }
                "include" => {
                    if args.is_empty() {
                        return Err(invalid("Include needs a file name".to_owned()));
                    }
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(invalid(format!(
                            "Include nested more than {MAX_INCLUDE_DEPTH} deep"
                        )));
                    }
                    for arg in &args {
                        let pattern = expand_tilde(arg, self.local.home.as_deref());
                        let pattern = match include_dir {
                            Some(dir) if pattern.is_relative() => dir.join(pattern),
                            _ => pattern,
                        };
                        for path in expand_glob(&pattern) {
                            if path.is_dir() {
                                continue;
                            }
                            let text = fs::read_to_string(&path).map_err(|source| {
                                SshConfigError::Read {
                                    file: path.clone(),
                                    source,
                                }
                            })?;
                            self.read(&text, &path, include_dir, &conditions, depth + 1)?;
                        }
                    }
                }
                _ => {
                    if let Some(setting) = parse_setting(&keyword, &args).map_err(invalid)? {
                        self.entries.push(Entry {
                            conditions: conditions.clone(),
                            setting,
                            origin,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The settings that apply to `host` (the name `ssh` would be given), first wins.
    fn settings(&self, host: &str) -> HostSettings<'_> {
        let host = host.to_ascii_lowercase();
        let mut found = HostSettings::default();
        for entry in &self.entries {
            let applies = entry.conditions.iter().all(|condition| match condition {
                Condition::Host(patterns) => host_matches(patterns, &host),
                Condition::Never => false,
            });
            if !applies {
                continue;
            }
            let origin = &entry.origin;
            match &entry.setting {
                Setting::HostName(name) => {
                    found.host_name.get_or_insert((name, origin));
                }
                Setting::Port(port) => {
                    found.port.get_or_insert(*port);
                }
                Setting::User(user) => {
                    found.user.get_or_insert(user);
                }
                Setting::IdentityFile(file) => found.identity_files.push((file, origin)),
                Setting::CertificateFile(file) => found.certificate_files.push((file, origin)),
                Setting::IdentitiesOnly(only) => {
                    found.identities_only.get_or_insert(*only);
                }
                Setting::Proxy(proxy) => {
                    found.proxy.get_or_insert((proxy, origin));
                }
                Setting::UserKnownHostsFile(files) => {
                    found.known_hosts.get_or_insert((files, origin));
                }
                Setting::StrictHostKeyChecking(mode) => {
                    found.strict.get_or_insert(*mode);
                }
                Setting::ConnectTimeout(timeout) => {
                    found.connect_timeout.get_or_insert(*timeout);
                }
                Setting::ServerAliveInterval(interval) => {
                    found.alive_interval.get_or_insert(*interval);
                }
                Setting::ServerAliveCountMax(count) => {
                    found.alive_count.get_or_insert(*count);
                }
            }
        }
        found
    }

    /// Fills in what the inventory left unset in an SSH `target` from the settings for
    /// its address; a local target is left alone.
    pub fn apply(&self, target: &mut Target) -> Result<(), SshConfigError> {
        if target.connection != Connection::Ssh {
            return Ok(());
        }
        let mut chain = vec![target.address.clone()];
        self.apply_with(target, &target.name.clone(), true, &mut chain)
    }

    /// `owner` names the inventory host in errors; `chain` is the jump hosts being
    /// resolved, to stop loops.
    fn apply_with(
        &self,
        target: &mut Target,
        owner: &str,
        follow_jumps: bool,
        chain: &mut Vec<String>,
    ) -> Result<(), SshConfigError> {
        let original = target.address.clone();
        let found = self.settings(&original);
        let resolve_error = |origin: &Origin, message: String| SshConfigError::Resolve {
            host: owner.to_owned(),
            file: origin.file.clone(),
            line: origin.line,
            message,
        };

        if let Some((name, origin)) = found.host_name {
            let tokens = Tokens {
                original: &original,
                host: &original,
                port: target.port,
                user: &target.user,
                local: &self.local,
            };
            target.address = tokens
                .expand(name, "hd%")
                .map_err(|m| resolve_error(origin, format!("HostName: {m}")))?;
        }
        if !target.ssh.explicit.port {
            if let Some(port) = found.port {
                target.port = port;
            }
        }
        if !target.ssh.explicit.user {
            if let Some(user) = found.user {
                user.clone_into(&mut target.user);
            }
        }
        if !target.ssh.explicit.host_key_checking {
            if let Some(mode) = found.strict {
                target.host_key_checking = mode;
            }
        }

        let tokens = Tokens {
            original: &original,
            host: &target.address,
            port: target.port,
            user: &target.user,
            local: &self.local,
        };
        let path = |(text, origin): (&str, &Origin), what: &str| {
            tokens
                .expand(text, "dhnpru%")
                .map(|expanded| expand_tilde(&expanded, self.local.home.as_deref()))
                .map_err(|m| resolve_error(origin, format!("{what}: {m}")))
        };
        let mut options = std::mem::take(&mut target.ssh);
        options.identity_files = found
            .identity_files
            .iter()
            .map(|&(text, origin)| path((text, origin), "IdentityFile"))
            .collect::<Result<_, _>>()?;
        options.certificate_files = found
            .certificate_files
            .iter()
            .map(|&(text, origin)| path((text, origin), "CertificateFile"))
            .collect::<Result<_, _>>()?;
        options.identities_only = found.identities_only.unwrap_or(false);
        if let Some((files, origin)) = found.known_hosts {
            let mut paths = Vec::new();
            if !(files.len() == 1 && files[0].eq_ignore_ascii_case("none")) {
                for file in files {
                    paths.push(path((file, origin), "UserKnownHostsFile")?);
                }
            }
            options.known_hosts_files = Some(paths);
        }
        options.connect_timeout = found.connect_timeout.or(options.connect_timeout);
        options.server_alive_interval = found.alive_interval.or(options.server_alive_interval);
        options.server_alive_count_max = found.alive_count.or(options.server_alive_count_max);
        options.jumps.clear();
        options.proxy_command = None;
        match found.proxy {
            Some((Proxy::Jump(specs), _)) if follow_jumps => {
                for (index, spec) in specs.iter().enumerate() {
                    chain.push(spec.host.clone());
                    if chain.len() > MAX_JUMPS
                        || chain[..chain.len() - 1]
                            .iter()
                            .any(|seen| seen.eq_ignore_ascii_case(&spec.host))
                    {
                        return Err(SshConfigError::JumpLoop {
                            host: owner.to_owned(),
                            chain: chain.clone(),
                        });
                    }
                    let mut hop = self.jump_target(spec);
                    // `ssh -J A,B` dials A with A's own config, ProxyJump included, and B
                    // through A only.
                    self.apply_with(&mut hop, owner, index == 0, chain)?;
                    options.jumps.append(&mut hop.ssh.jumps);
                    options.jumps.push(hop);
                }
            }
            Some((Proxy::Command(command), _)) if follow_jumps => {
                options.proxy_command = Some(command.clone());
            }
            _ => {}
        }
        target.ssh = options;
        Ok(())
    }

    /// A jump host as the inventory would have described it: only what its spec says.
    fn jump_target(&self, spec: &JumpSpec) -> Target {
        let mut target = Target {
            name: spec.display(),
            address: spec.host.clone(),
            port: spec.port.unwrap_or(22),
            user: spec.user.clone().unwrap_or_else(|| self.local.user.clone()),
            identity_file: None,
            connection: Connection::Ssh,
            host_key_checking: HostKeyChecking::Strict,
            ssh: crate::transport::SshOptions::default(),
        };
        target.ssh.explicit.port = spec.port.is_some();
        target.ssh.explicit.user = spec.user.is_some();
        target
    }
}

/// What `%` tokens expand to for one host.
struct Tokens<'a> {
    original: &'a str,
    host: &'a str,
    port: u16,
    user: &'a str,
    local: &'a Local,
}

impl Tokens<'_> {
    /// Expands the `%` tokens of `text`; `allowed` lists the token letters this setting
    /// accepts (as in the TOKENS section of `ssh_config(5)`).
    fn expand(&self, text: &str, allowed: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(token) = chars.next() else {
                return Err("a lone % at the end (write %% for a percent sign)".to_owned());
            };
            if !allowed.contains(token) {
                return Err(format!(
                    "the token %{token} is not supported here (supported: {})",
                    allowed
                        .chars()
                        .map(|t| format!("%{t}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            match token {
                '%' => out.push('%'),
                'h' => out.push_str(self.host),
                'n' => out.push_str(self.original),
                'p' => out.push_str(&self.port.to_string()),
                'r' => out.push_str(self.user),
                'u' => out.push_str(&self.local.user),
                'd' => match &self.local.home {
                    Some(home) => out.push_str(&home.to_string_lossy()),
                    None => return Err("%d needs $HOME, which is not set".to_owned()),
                },
                _ => return Err(format!("the token %{token} is not supported")),
            }
        }
        Ok(out)
    }
}

/// Whether a `Host` line's (lowercased) patterns match `host` (lowercased).
fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if crate::glob::matches(negated, host) {
                return false;
            }
        } else if crate::glob::matches(pattern, host) {
            matched = true;
        }
    }
    matched
}

/// The files matching a path whose components may hold `*` and `?`, sorted as glob(3)
/// sorts them; a path without wildcards is returned when it exists.
fn expand_glob(pattern: &Path) -> Vec<PathBuf> {
    let mut matches = vec![PathBuf::new()];
    for component in pattern.components() {
        let text = component.as_os_str().to_string_lossy();
        if !text.contains(['*', '?']) {
            for path in &mut matches {
                path.push(component);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &matches {
            let listing = if dir.as_os_str().is_empty() {
                fs::read_dir(".")
            } else {
                fs::read_dir(dir)
            };
            let Ok(listing) = listing else { continue };
            let mut names: Vec<String> = listing
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
                // Hidden files only match a pattern that asks for them, as in glob(3).
                .filter(|name| !name.starts_with('.') || text.starts_with('.'))
                .filter(|name| crate::glob::matches(&text, name))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|name| dir.join(name)));
        }
        matches = next;
    }
    matches.retain(|path| !path.as_os_str().is_empty() && path.exists());
    matches
}

/// Splits a config line into its lowercased keyword and arguments; `None` for blank lines
/// and comments. `Keyword value`, `Keyword=value` and `Keyword = value` are all accepted;
/// arguments may be quoted with `"` or `'`, and an unquoted `#` starts a comment.
fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_ascii_lowercase();
    let mut rest = line[end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        rest = after.trim_start();
    }
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_) | None, '\\') => match chars.next() {
                Some(next) => {
                    current.push(next);
                    in_word = true;
                }
                None => return Err("a backslash at the end of the line".to_owned()),
            },
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_owned());
    }
    if in_word {
        args.push(current);
    }
    Ok(Some((keyword, args)))
}

/// The setting a line holds, checked; `None` for keywords converge does not use.
fn parse_setting(keyword: &str, args: &[String]) -> Result<Option<Setting>, String> {
    const KNOWN: [&str; 13] = [
        "HostName",
        "Port",
        "User",
        "IdentityFile",
        "CertificateFile",
        "IdentitiesOnly",
        "ProxyJump",
        "ProxyCommand",
        "UserKnownHostsFile",
        "StrictHostKeyChecking",
        "ConnectTimeout",
        "ServerAliveInterval",
        "ServerAliveCountMax",
    ];
    let Some(&keyword) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(keyword)) else {
        return Ok(None);
    };
    let Some(first) = args.first() else {
        return Err(format!("{keyword} needs a value"));
    };
    let single = || {
        if args.len() == 1 {
            Ok(first.clone())
        } else {
            Err(format!("{keyword} takes one value, found {}", args.len()))
        }
    };
    let seconds = |what: &str| -> Result<Duration, String> {
        let text = single()?;
        text.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{what} {text:?}: expected a whole number of seconds"))
    };
    let setting =
        match keyword {
            "HostName" => Setting::HostName(single()?),
            "Port" => {
                let text = single()?;
                match text.parse::<u16>() {
                    Ok(port) if port != 0 => Setting::Port(port),
                    _ => {
                        return Err(format!(
                            "Port {text:?}: expected an integer from 1 to 65535"
                        ))
                    }
                }
            }
            "User" => Setting::User(single()?),
            "IdentityFile" => Setting::IdentityFile(single()?),
            "CertificateFile" => Setting::CertificateFile(single()?),
            "IdentitiesOnly" => Setting::IdentitiesOnly(yes_no("IdentitiesOnly", &single()?)?),
            "ProxyJump" => {
                let text = single()?;
                if text.eq_ignore_ascii_case("none") {
                    Setting::Proxy(Proxy::Direct)
                } else {
                    Setting::Proxy(Proxy::Jump(
                        text.split(',').map(parse_jump).collect::<Result<_, _>>()?,
                    ))
                }
            }
            "ProxyCommand" => {
                let command = args.join(" ");
                if command.eq_ignore_ascii_case("none") {
                    Setting::Proxy(Proxy::Direct)
                } else {
                    Setting::Proxy(Proxy::Command(command))
                }
            }
            "UserKnownHostsFile" => Setting::UserKnownHostsFile(args.to_vec()),
            "StrictHostKeyChecking" => {
                let text = single()?;
                Setting::StrictHostKeyChecking(match text.to_ascii_lowercase().as_str() {
                    // converge never asks: an unknown key is refused, as `yes` does.
                    "yes" | "ask" => HostKeyChecking::Strict,
                    "accept-new" => HostKeyChecking::AcceptNew,
                    "no" | "off" => HostKeyChecking::Off,
                    _ => {
                        return Err(format!(
                        "StrictHostKeyChecking {text:?}: expected yes, accept-new, no, off or ask"
                    ))
                    }
                })
            }
            "ConnectTimeout" => Setting::ConnectTimeout(seconds("ConnectTimeout")?),
            "ServerAliveInterval" => Setting::ServerAliveInterval(seconds("ServerAliveInterval")?),
            "ServerAliveCountMax" => {
                let text = single()?;
                Setting::ServerAliveCountMax(text.parse::<u32>().map_err(|_| {
                    format!("ServerAliveCountMax {text:?}: expected a whole number")
                })?)
            }
            _ => return Ok(None),
        };
    Ok(Some(setting))
}

fn yes_no(keyword: &str, text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(format!("{keyword} {text:?}: expected yes or no")),
    }
}

/// Parses `[user@]host[:port]` or `ssh://[user@]host[:port]`; IPv6 addresses go in
/// brackets.
fn parse_jump(spec: &str) -> Result<JumpSpec, String> {
    let invalid = |why: &str| format!("ProxyJump {spec:?}: {why}");
    let text = spec.trim();
    let text = text.strip_prefix("ssh://").unwrap_or(text);
    let text = text.strip_suffix('/').unwrap_or(text);
    if text.is_empty() {
        return Err(invalid("an empty host"));
    }
    let (user, rest) = match text.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (Some(user.to_owned()), rest),
        Some(_) => return Err(invalid("an empty user name")),
        None => (None, text),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| invalid("a `[` without `]`"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(invalid("unexpected text after `]`")),
            },
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(invalid("an empty host"));
    }
    let port = match port {
        None => None,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => Some(port),
            _ => return Err(invalid("the port must be an integer from 1 to 65535")),
        },
    };
    Ok(JumpSpec {
        user,
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::SshOptions;

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

    /// A target as the inventory makes it when it gives only an address.
    fn target(address: &str) -> Target {
        Target {
            name: "inv".to_owned(),
            address: address.to_owned(),
            port: 22,
            user: "ops".to_owned(),
            identity_file: None,
            connection: Connection::Ssh,
            host_key_checking: HostKeyChecking::Strict,
            ssh: SshOptions::default(),
        }
    }

    fn applied(config: &SshConfig, address: &str) -> Target {
        let mut target = target(address);
        config.apply(&mut target).unwrap();
        target
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
        assert_eq!(split_line("User \"ops").unwrap_err(), "unterminated quote");
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
        let mut target = target("10.0.0.5");
        target.port = 2200;
        target.user = "inv".to_owned();
        target.host_key_checking = HostKeyChecking::AcceptNew;
        target.identity_file = Some(PathBuf::from("/keys/inv"));
        target.ssh.explicit.port = true;
        target.ssh.explicit.user = true;
        target.ssh.explicit.host_key_checking = true;
        config.apply(&mut target).unwrap();
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
        let mut target = target("localhost");
        target.connection = Connection::Local;
        config.apply(&mut target).unwrap();
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
        let mut target = target("a");
        assert_eq!(
            config.apply(&mut target).unwrap_err().to_string(),
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
            parse_jump("gw:0").unwrap_err(),
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
        let mut target = target("h");
        assert_eq!(
            config.apply(&mut target).unwrap_err().to_string(),
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
}
