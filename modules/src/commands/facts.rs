//! The fact a command's guard reads: the exit status of a shell command.

use std::fmt;

use serde::Serialize;

use crate::fact::{DomainKey, Fact};
use crate::shell::quote;

pub(crate) fn probe(command: &str) -> String {
    format!(
        "sh -c {} </dev/null >/dev/null 2>&1; echo $?",
        quote(command)
    )
}

pub(crate) fn parse(output: &str) -> Option<Fact> {
    output
        .trim_end()
        .parse()
        .ok()
        .map(|status| CommandFact::Probe(status).into())
}

/// The fact a guard reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CommandKey {
    /// Exit status of a shell command run for its answer (e.g. `command`'s `unless`).
    Probe(String),
}

/// The values of [`CommandKey`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CommandFact {
    Probe(i32),
}

impl fmt::Display for CommandKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandKey::Probe(command) => write!(f, "result of `{command}`"),
        }
    }
}

impl DomainKey for CommandKey {
    fn probe(&self) -> String {
        match self {
            CommandKey::Probe(command) => probe(command),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            CommandKey::Probe(_) => parse(output),
        }
    }
}
