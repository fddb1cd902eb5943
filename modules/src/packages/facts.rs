//! The facts a package's plan reads: what dpkg says is installed, what apt's cache
//! would install, and how old that cache is.
//!
//! Every probe first asks whether the host has apt at all; where it does not, it names
//! the package manager it found instead, and the plan fails saying so. `dpkg-query`
//! and `apt-cache` only read; their output is asked for in the C locale.

use std::fmt;

use serde::Serialize;

use crate::fact::{DomainKey, Fact, FactKey, FactStore, FactUnavailable};
use crate::shell::quote;

/// The facts about packages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PackageKey {
    /// A package's state in dpkg's database.
    Dpkg(String),
    /// What `apt-cache policy` says of a package: its candidate and known versions.
    Candidate(String),
    /// The age of apt's package lists.
    Cache,
}

/// The values of [`PackageKey`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PackageFact {
    Dpkg(Dpkg),
    Candidate(Policy),
    /// Seconds since the package lists were last refreshed (`None`: never, or no lists).
    Cache(Option<u64>),
    /// Check mode only: an earlier planned change refreshes the package lists, so what
    /// they will offer is not known (the lists on the host are the old ones).
    RefreshPlanned,
    /// The host has no apt: what it has instead (`none` when no known manager).
    NoApt(String),
}

/// A package's state as dpkg records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Dpkg {
    /// Not installed (never, or removed with only its configuration files left).
    Absent,
    /// Installed and configured, at this version.
    Installed(String),
    /// Unpacked or half-configured: an install that did not finish.
    Unfinished { status: String, version: String },
}

/// What `apt-cache policy` says of one package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The version `apt-get install` would install (`None`: not in the cache).
    pub candidate: Option<String>,
    /// Every version the cache (or dpkg's database) knows.
    pub versions: Vec<String>,
}

/// Runs `body` where apt and dpkg are found; elsewhere prints `noapt:` and the package
/// manager the host has instead.
fn with_apt(body: &str) -> String {
    format!(
        "if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then {body}; \
         else found=none; for m in dnf yum zypper apk pacman xbps-install emerge pkg; do \
         if command -v \"$m\" >/dev/null 2>&1; then found=$m; break; fi; done; echo \"noapt:$found\"; fi"
    )
}

fn dpkg_probe(name: &str) -> String {
    with_apt(&format!(
        "echo dpkg; dpkg-query -W -f='${{db:Status-Abbrev}}|${{Version}}\\n' -- {} 2>/dev/null; :",
        quote(name)
    ))
}

fn policy_probe(name: &str) -> String {
    with_apt(&format!(
        "echo policy; LC_ALL=C apt-cache policy {} 2>/dev/null; :",
        quote(name)
    ))
}

/// The lists count only when apt has any (a fresh image has none, whatever the
/// directory's time); the stamp is the one the cache refresh leaves.
const CACHE_PROBE: &str = concat!(
    "echo cache; date +%s; m=; set -- /var/lib/apt/lists/*_Packages*; ",
    "if [ -e \"$1\" ]; then for f in /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do ",
    "t=$(stat -c %Y \"$f\" 2>/dev/null) && if [ \"$t\" -gt \"${m:-0}\" ]; then m=$t; fi; done; fi; ",
    "echo \"${m:-none}\""
);

fn no_apt(output: &str) -> Option<Fact> {
    let found = output.strip_prefix("noapt:")?.strip_suffix('\n')?;
    Some(Fact::Packages(PackageFact::NoApt(found.to_owned())))
}

/// Parses `dpkg-query`'s `STATUS|VERSION` line (`ii |2.10-3`); no line: never known.
pub(crate) fn parse_dpkg(output: &str) -> Option<Fact> {
    if let Some(fact) = no_apt(output) {
        return Some(fact);
    }
    let mut lines = output.strip_prefix("dpkg\n")?.lines();
    let state = match lines.next() {
        None => Dpkg::Absent,
        Some(line) => {
            let (status, version) = line.split_once('|')?;
            let mut flags = status.chars();
            let (_want, now) = (flags.next()?, flags.next()?);
            match now {
                // Installed, or installed with triggers still to run.
                'i' | 'W' | 't' => Dpkg::Installed(version.to_owned()),
                'n' | 'c' => Dpkg::Absent,
                'H' | 'U' | 'F' => Dpkg::Unfinished {
                    status: status.trim_end().to_owned(),
                    version: version.to_owned(),
                },
                _ => return None,
            }
        }
    };
    Some(Fact::Packages(PackageFact::Dpkg(state)))
}

/// Parses `apt-cache policy NAME` (C locale); no output: the cache does not know it.
pub(crate) fn parse_policy(output: &str) -> Option<Fact> {
    if let Some(fact) = no_apt(output) {
        return Some(fact);
    }
    let mut policy = Policy::default();
    for line in output.strip_prefix("policy\n")?.lines() {
        if let Some(candidate) = line.trim_start().strip_prefix("Candidate: ") {
            policy.candidate = (candidate != "(none)").then(|| candidate.to_owned());
        } else if let Some(entry) = line.strip_prefix(" *** ").or_else(|| {
            line.strip_prefix("     ")
                .filter(|rest| !rest.starts_with(' '))
        }) {
            // A version line of the table (`     2.10-3 500`), not one of its sources
            // (indented further).
            let version = entry.split_whitespace().next()?;
            policy.versions.push(version.to_owned());
        }
    }
    Some(Fact::Packages(PackageFact::Candidate(policy)))
}

/// Parses the cache probe: the host's clock, then the lists' time or `none`.
pub(crate) fn parse_cache(output: &str) -> Option<Fact> {
    let mut lines = output.strip_prefix("cache\n")?.lines();
    let now: u64 = lines.next()?.parse().ok()?;
    let age = match lines.next()? {
        "none" => None,
        time => Some(now.saturating_sub(time.parse().ok()?)),
    };
    Some(Fact::Packages(PackageFact::Cache(age)))
}

impl fmt::Display for PackageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackageKey::Dpkg(name) => write!(f, "package {name}"),
            PackageKey::Candidate(name) => write!(f, "apt's candidate for {name}"),
            PackageKey::Cache => f.write_str("apt's package cache"),
        }
    }
}

impl DomainKey for PackageKey {
    fn probe(&self) -> String {
        match self {
            PackageKey::Dpkg(name) => dpkg_probe(name),
            PackageKey::Candidate(name) => policy_probe(name),
            PackageKey::Cache => CACHE_PROBE.to_owned(),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            PackageKey::Dpkg(_) => parse_dpkg(output),
            PackageKey::Candidate(_) => parse_policy(output),
            PackageKey::Cache => parse_cache(output),
        }
    }
}

/// A package fact as the plan reads it: apt's absence is an answer too.
pub(crate) enum Answer<'a, T> {
    Known(&'a T),
    NoApt(&'a str),
}

impl FactStore {
    fn package_fact(&self, key: &PackageKey) -> Result<&PackageFact, FactUnavailable> {
        let key = FactKey::Packages(key.clone());
        match self.fact(&key)? {
            Fact::Packages(fact) => Ok(fact),
            _ => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }

    /// The fact under `key` that `pick` takes, or what the host has instead of apt.
    fn package_answer<'a, T>(
        &'a self,
        key: &PackageKey,
        pick: impl Fn(&'a PackageFact) -> Option<&'a T>,
    ) -> Result<Answer<'a, T>, FactUnavailable> {
        let fact = self.package_fact(key)?;
        match (fact, pick(fact)) {
            (PackageFact::NoApt(found), _) => Ok(Answer::NoApt(found)),
            (_, Some(value)) => Ok(Answer::Known(value)),
            (_, None) => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }

    /// A package's state in dpkg's database, or what the host has instead of apt.
    pub(crate) fn dpkg(&self, name: &str) -> Result<Answer<'_, Dpkg>, FactUnavailable> {
        self.package_answer(&PackageKey::Dpkg(name.to_owned()), |fact| match fact {
            PackageFact::Dpkg(state) => Some(state),
            _ => None,
        })
    }

    /// What apt's cache says of a package.
    pub(crate) fn policy(&self, name: &str) -> Result<Answer<'_, Policy>, FactUnavailable> {
        self.package_answer(&PackageKey::Candidate(name.to_owned()), |fact| match fact {
            PackageFact::Candidate(policy) => Some(policy),
            _ => None,
        })
    }

    /// Seconds since apt's package lists were refreshed (`None`: never).
    pub(crate) fn cache_age(&self) -> Result<Option<u64>, FactUnavailable> {
        match self.package_fact(&PackageKey::Cache)? {
            PackageFact::Cache(age) => Ok(*age),
            PackageFact::RefreshPlanned => Ok(Some(0)),
            _ => Err(FactUnavailable::NotRead {
                key: PackageKey::Cache.to_string(),
            }),
        }
    }

    /// Whether an earlier change planned in check mode refreshes the package lists: then
    /// what the lists on the host lack proves nothing. Never true in apply, where the
    /// refresh happens and the lists are read again.
    pub(crate) fn refresh_planned(&self) -> bool {
        matches!(
            self.package_fact(&PackageKey::Cache),
            Ok(PackageFact::RefreshPlanned)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dpkg(output: &str) -> Option<PackageFact> {
        match parse_dpkg(output)? {
            Fact::Packages(fact) => Some(fact),
            _ => None,
        }
    }

    #[test]
    fn dpkg_query_output_parses() {
        assert_eq!(
            dpkg("dpkg\nii |2.10-3\n"),
            Some(PackageFact::Dpkg(Dpkg::Installed("2.10-3".into())))
        );
        // Never known to dpkg: dpkg-query prints nothing on stdout.
        assert_eq!(dpkg("dpkg\n"), Some(PackageFact::Dpkg(Dpkg::Absent)));
        // Removed, its configuration files left.
        assert_eq!(
            dpkg("dpkg\nrc |3.2.5-1+b1\n"),
            Some(PackageFact::Dpkg(Dpkg::Absent))
        );
        assert_eq!(dpkg("dpkg\nun |\n"), Some(PackageFact::Dpkg(Dpkg::Absent)));
        assert_eq!(
            dpkg("dpkg\niF |5:7.0.15-1~deb12u1\n"),
            Some(PackageFact::Dpkg(Dpkg::Unfinished {
                status: "iF".into(),
                version: "5:7.0.15-1~deb12u1".into()
            }))
        );
        assert_eq!(dpkg("noapt:dnf\n"), Some(PackageFact::NoApt("dnf".into())));
        assert_eq!(dpkg("garbage\n"), None);
        assert_eq!(dpkg("dpkg\nii 2.10\n"), None);
    }

    #[test]
    fn apt_cache_policy_output_parses() {
        let output = "policy\nbash:\n  Installed: 5.2.15-2+b8\n  Candidate: 5.2.15-2+b13\n  Version table:\n     5.2.15-2+b13 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n *** 5.2.15-2+b8 100\n        100 /var/lib/dpkg/status\n";
        assert_eq!(
            parse_policy(output),
            Some(Fact::Packages(PackageFact::Candidate(Policy {
                candidate: Some("5.2.15-2+b13".into()),
                versions: vec!["5.2.15-2+b13".into(), "5.2.15-2+b8".into()],
            })))
        );
        // Unknown to the cache: apt-cache prints nothing.
        assert_eq!(
            parse_policy("policy\n"),
            Some(Fact::Packages(PackageFact::Candidate(Policy::default())))
        );
        let virtual_only = "policy\nmail-transport-agent:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n";
        assert_eq!(
            parse_policy(virtual_only),
            Some(Fact::Packages(PackageFact::Candidate(Policy::default())))
        );
        assert_eq!(parse_policy("other\n"), None);
    }

    #[test]
    fn cache_age_parses() {
        assert_eq!(
            parse_cache("cache\n1000\n400\n"),
            Some(Fact::Packages(PackageFact::Cache(Some(600))))
        );
        assert_eq!(
            parse_cache("cache\n1000\nnone\n"),
            Some(Fact::Packages(PackageFact::Cache(None)))
        );
        assert_eq!(parse_cache("cache\nsoon\nnone\n"), None);
    }

    #[test]
    fn probes_quote_names_and_ask_in_the_c_locale() {
        let probe = PackageKey::Candidate("libstdc++6".into()).probe();
        assert!(
            probe.contains("LC_ALL=C apt-cache policy libstdc++6"),
            "{probe}"
        );
        let probe = PackageKey::Dpkg("hello".into()).probe();
        assert!(
            probe.contains("dpkg-query -W -f='${db:Status-Abbrev}|${Version}\\n' -- hello"),
            "{probe}"
        );
    }
}
