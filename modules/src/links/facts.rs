//! The fact a link's plan reads beside the path's own: where the link points.
//!
//! Read from inside the link's directory, entered without following a symbolic link
//! (see [`safe_path`](crate::safe_path)); the last component is the link itself and `readlink` never
//! follows it.

use std::fmt;

use serde::Serialize;

use crate::fact::{DomainKey, Fact, FactKey, FactStore, FactUnavailable};
use crate::paths::facts::{probe_in_directory, unsafe_way};

pub(crate) fn probe(path: &str) -> String {
    probe_in_directory(path, "none", |n, _| {
        format!("elif [ -h {n} ]; then printf 'link:'; readlink -- {n}; ")
    })
}

/// Parses [`probe`]'s output. A target holding a newline is read whole: only the
/// newline `readlink` adds is taken off.
pub(crate) fn parse(path: &str, output: &str) -> Option<Fact> {
    match output {
        "none\n" => Some(Fact::Links(LinkFact::Link(None))),
        "unsafe\n" => Some(unsafe_way(path)),
        _ => {
            let target = output.strip_prefix("link:")?.strip_suffix('\n')?;
            Some(Fact::Links(LinkFact::Link(Some(target.to_owned()))))
        }
    }
}

impl FactStore {
    /// Where the link at `path` points (`None` when `path` is not a symbolic link).
    pub fn link(&self, path: &str) -> Result<Option<&str>, FactUnavailable> {
        let key = FactKey::Links(LinkKey::Link(path.to_owned()));
        match self.fact(&key)? {
            Fact::Links(LinkFact::Link(target)) => Ok(target.as_deref()),
            _ => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }
}

/// The fact about links.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum LinkKey {
    /// Where a symbolic link points.
    Link(String),
}

/// The values of [`LinkKey`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LinkFact {
    /// `None` when the path is not a symbolic link.
    Link(Option<String>),
}

impl fmt::Display for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkKey::Link(path) => write!(f, "link {path}"),
        }
    }
}

impl DomainKey for LinkKey {
    fn probe(&self) -> String {
        match self {
            LinkKey::Link(path) => probe(path),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            LinkKey::Link(path) => parse(path, output),
        }
    }

    fn path(&self) -> Option<&str> {
        match self {
            LinkKey::Link(path) => Some(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_output_parses() {
        assert_eq!(
            parse("/srv/current", "none\n"),
            Some(Fact::Links(LinkFact::Link(None)))
        );
        assert_eq!(
            parse("/srv/current", "link:releases/2\n"),
            Some(Fact::Links(LinkFact::Link(Some("releases/2".to_owned()))))
        );
        assert_eq!(
            parse("/srv/current", "link:odd\nname\n"),
            Some(Fact::Links(LinkFact::Link(Some("odd\nname".to_owned()))))
        );
        assert!(matches!(
            parse("/srv/current", "unsafe\n"),
            Some(Fact::Refused(_))
        ));
        assert_eq!(parse("/srv/current", "garbage\n"), None);
    }

    #[test]
    fn probe_never_follows_the_link_or_a_directory_on_the_way() {
        let probe = probe("/srv/app/current");
        assert!(probe.contains("cd -P -- /srv/app"));
        assert!(probe.contains("[ -h ./current ]"));
        assert!(probe.contains("readlink -- ./current"));
    }
}
