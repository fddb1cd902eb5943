//! The settings converge understands, each keyword's value checked as `ssh` checks it.

use std::time::Duration;

use super::LineError;
use crate::transport::HostKeyChecking;

/// One setting converge understands, with its value already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Setting {
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
pub(super) enum Proxy {
    /// `none`: directly.
    Direct,
    Jump(Vec<JumpSpec>),
    Command(String),
}

/// One `[user@]host[:port]` of a `ProxyJump` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JumpSpec {
    pub(super) user: Option<String>,
    pub(super) host: String,
    pub(super) port: Option<u16>,
}

impl JumpSpec {
    /// The spec as written, for messages.
    pub(super) fn display(&self) -> String {
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

/// The setting a line holds, checked; `None` for keywords converge does not use.
pub(super) fn parse_setting(keyword: &str, args: &[String]) -> Result<Option<Setting>, LineError> {
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
        return Err(LineError::NoValue { keyword });
    };
    let single = || {
        if args.len() == 1 {
            Ok(first.clone())
        } else {
            Err(LineError::ValueCount {
                keyword,
                found: args.len(),
            })
        }
    };
    let seconds = || -> Result<Duration, LineError> {
        let text = single()?;
        match text.parse::<u64>() {
            Ok(seconds) => Ok(Duration::from_secs(seconds)),
            Err(_) => Err(LineError::Seconds { keyword, text }),
        }
    };
    let setting = match keyword {
        "HostName" => Setting::HostName(single()?),
        "Port" => {
            let text = single()?;
            match text.parse::<u16>() {
                Ok(port) if port != 0 => Setting::Port(port),
                _ => return Err(LineError::Port { text }),
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
                _ => return Err(LineError::HostKeyChecking { text }),
            })
        }
        "ConnectTimeout" => Setting::ConnectTimeout(seconds()?),
        "ServerAliveInterval" => Setting::ServerAliveInterval(seconds()?),
        "ServerAliveCountMax" => {
            let text = single()?;
            match text.parse::<u32>() {
                Ok(count) => Setting::ServerAliveCountMax(count),
                Err(_) => return Err(LineError::AliveCount { text }),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(setting))
}

fn yes_no(keyword: &'static str, text: &str) -> Result<bool, LineError> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(LineError::YesNo {
            keyword,
            text: text.to_owned(),
        }),
    }
}

/// Parses `[user@]host[:port]` or `ssh://[user@]host[:port]`; IPv6 addresses go in
/// brackets.
pub(super) fn parse_jump(spec: &str) -> Result<JumpSpec, LineError> {
    let invalid = |reason: &'static str| LineError::Jump {
        spec: spec.to_owned(),
        reason,
    };
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
