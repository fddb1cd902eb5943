//! Resolving one host: the settings that apply to it, first value wins, folded into its
//! [`Target`], with `ProxyJump` hosts resolved through the same configuration.

use std::time::Duration;

use super::settings::{Proxy, Setting};
use super::tokens::Tokens;
use super::{Condition, Origin, SshConfig, SshConfigError, MAX_JUMPS};
use crate::inventory::expand_tilde;
use crate::transport::{Connection, HostKeyChecking, SshOptions, Target, TargetSettings};

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

    /// The target for inventory host `name`, from `given` (the command line over the
    /// inventory) over this config's settings for it. A local target takes nothing from
    /// the config.
    pub fn target(&self, name: &str, given: TargetSettings) -> Result<Target, SshConfigError> {
        if given.connection.unwrap_or(Connection::Ssh) != Connection::Ssh {
            return Ok(Target::new(name, given, &self.local.user));
        }
        let alias = given.host.clone().unwrap_or_else(|| name.to_owned());
        let mut chain = vec![alias.clone()];
        let config = self.layer(&alias, &given, name, true, &mut chain)?;
        Ok(Target::new(name, given.over(config), &self.local.user))
    }

    /// This config's settings for `alias` (the name `ssh` would be given), under the
    /// higher-precedence settings `given`, which its `%` tokens see. `owner` names the
    /// inventory host in errors; `chain` is the jump hosts being resolved, to stop loops.
    fn layer(
        &self,
        alias: &str,
        given: &TargetSettings,
        owner: &str,
        follow_jumps: bool,
        chain: &mut Vec<String>,
    ) -> Result<TargetSettings, SshConfigError> {
        let found = self.settings(alias);
        let resolve_error =
            |origin: &Origin, setting: &'static str, source| SshConfigError::Resolve {
                host: owner.to_owned(),
                file: origin.file.clone(),
                line: origin.line,
                setting,
                source,
            };
        // `HostName` sees the port and user the inventory gave (or the defaults);
        // everything after it sees the resolved ones.
        let given_port = given.port.unwrap_or(22);
        let given_user = given.user.as_deref().unwrap_or(&self.local.user);
        let host_name = match found.host_name {
            Some((name, origin)) => Some(
                Tokens {
                    original: alias,
                    host: alias,
                    port: given_port,
                    user: given_user,
                    local: &self.local,
                }
                .expand(name, "hd%")
                .map_err(|e| resolve_error(origin, "HostName", e))?,
            ),
            None => None,
        };
        let tokens = Tokens {
            original: alias,
            host: host_name.as_deref().unwrap_or(alias),
            port: given.port.or(found.port).unwrap_or(22),
            user: given
                .user
                .as_deref()
                .or(found.user)
                .unwrap_or(&self.local.user),
            local: &self.local,
        };
        let path = |(text, origin): (&str, &Origin), what: &'static str| {
            tokens
                .expand(text, "dhnpru%")
                .map(|expanded| expand_tilde(&expanded, self.local.home.as_deref()))
                .map_err(|e| resolve_error(origin, what, e))
        };
        let mut options = SshOptions {
            identity_files: found
                .identity_files
                .iter()
                .map(|&(text, origin)| path((text, origin), "IdentityFile"))
                .collect::<Result<_, _>>()?,
            certificate_files: found
                .certificate_files
                .iter()
                .map(|&(text, origin)| path((text, origin), "CertificateFile"))
                .collect::<Result<_, _>>()?,
            identities_only: found.identities_only.unwrap_or(false),
            connect_timeout: found.connect_timeout,
            server_alive_interval: found.alive_interval,
            server_alive_count_max: found.alive_count,
            ..SshOptions::default()
        };
        if let Some((files, origin)) = found.known_hosts {
            let mut paths = Vec::new();
            if !(files.len() == 1 && files[0].eq_ignore_ascii_case("none")) {
                for file in files {
                    paths.push(path((file, origin), "UserKnownHostsFile")?);
                }
            }
            options.known_hosts_files = Some(paths);
        }
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
                    // A jump host is what its spec says over its own config; `ssh -J A,B`
                    // dials A with A's own config, ProxyJump included, and B through A
                    // only.
                    let spec_settings = TargetSettings {
                        host: Some(spec.host.clone()),
                        port: spec.port,
                        user: spec.user.clone(),
                        ..TargetSettings::default()
                    };
                    let config =
                        self.layer(&spec.host, &spec_settings, owner, index == 0, chain)?;
                    let mut hop = Target::new(
                        &spec.display(),
                        spec_settings.over(config),
                        &self.local.user,
                    );
                    options.jumps.append(&mut hop.ssh.jumps);
                    options.jumps.push(hop);
                }
            }
            Some((Proxy::Command(command), _)) if follow_jumps => {
                options.proxy_command = Some(command.clone());
            }
            _ => {}
        }
        Ok(TargetSettings {
            host_name,
            port: found.port,
            user: found.user.map(str::to_owned),
            host_key_checking: found.strict,
            ssh: Some(options),
            ..TargetSettings::default()
        })
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
