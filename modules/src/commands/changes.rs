//! The change the `command` module makes: an arbitrary command, run as given.

use std::fmt;

use crate::change::{Cmd, DomainChange};
use crate::fact::{FactStore, Touch};

/// An arbitrary command, as the `command` module runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    Shell(String),
    Argv(Vec<String>),
}

impl fmt::Display for RunCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunCommand::Shell(line) => f.write_str(line),
            RunCommand::Argv(argv) => f.write_str(&crate::shell::join(argv)),
        }
    }
}

impl RunCommand {
    pub(crate) fn command(&self) -> Cmd {
        match self {
            RunCommand::Shell(line) => Cmd::argv(["sh", "-c", line.as_str()]),
            RunCommand::Argv(argv) => Cmd::argv(argv.iter().map(String::as_str)),
        }
    }
}

/// The change the `command` module makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandChange {
    Run { command: RunCommand },
}

impl DomainChange for CommandChange {
    fn describe(&self) -> String {
        match self {
            CommandChange::Run { command } => format!("run: {command}"),
        }
    }

    fn command(&self) -> Cmd {
        match self {
            CommandChange::Run { command } => command.command(),
        }
    }

    fn touches(&self) -> Vec<Touch> {
        vec![Touch::Everything]
    }

    /// What an arbitrary command does cannot be known: it is recorded as unsettled, so
    /// a later task missing something it may create is pending on it.
    fn predict(&self, store: &mut FactStore) {
        match self {
            CommandChange::Run { command } => {
                store.unsettle("command", &format!("`{command}`"), "not yet run");
            }
        }
    }
}
