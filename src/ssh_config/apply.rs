//! Resolving one host: the settings that apply to it, first value wins, folded into its
//! [`Target`], with `ProxyJump` hosts resolved through the same configuration.

use std::time::Duration;

use super::settings::{JumpSpec, Proxy, Setting};
use super::tokens::Tokens;
use super::{Condition, Origin, SshConfig, SshConfigError, MAX_JUMPS};
use crate::inventory::expand_tilde;
use crate::transport::{Connection, HostKeyChecking, Target};

/// The settings that apply to one host, first value wins.
#[derive(Debug, Default)]
pub(super) struct HostSettings<'a> {
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

impl SshConfig {
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
        let resolve_error =
            |origin: &Origin, setting: &'static str, source| SshConfigError::Resolve {
                host: owner.to_owned(),
                file: origin.file.clone(),
                line: origin.line,
                setting,
                source,
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
                .map_err(|e| resolve_error(origin, "HostName", e))?;
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
        let path = |(text, origin): (&str, &Origin), what: &'static str| {
            tokens
                .expand(text, "dhnpru%")
                .map(|expanded| expand_tilde(&expanded, self.local.home.as_deref()))
                .map_err(|e| resolve_error(origin, what, e))
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

/// Whether a `Host` line's (lowercased) patterns match `host` (lowercased).
pub(super) fn host_matches(patterns: &[String], host: &str) -> bool {
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
