//! `command`: run a command, unless the host already shows it has been done.
//!
//! `cmd` is a string run by `sh -c` or a list run as an argv. It runs (and reports
//! `changed`) unless `creates` exists, `removes` is missing, or `unless` succeeds.
//! Without any of those guards it runs every time: it cannot know better.

use serde::{Deserialize, Serialize};

use crate::change::{Change, RunCommand};
use crate::commands::CommandChange;
use crate::commands::CommandKey;
use crate::fact::{FactKey, FactStore, PathKind};
use crate::paths::PathKey;
use crate::{names, Module, ParamError, Plan, PlanError};

/// A command line: a shell string or an argv.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Shell(String),
    Argv(Vec<String>),
}

/// Parameters of the `command` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub cmd: CommandLine,
    #[serde(default)]
    pub creates: Option<String>,
    #[serde(default)]
    pub removes: Option<String>,
    #[serde(default)]
    pub unless: Option<String>,
}

impl Module for Command {
    const NAME: &'static str = "command";

    fn validate(&self) -> Result<(), ParamError> {
        let empty = match &self.cmd {
            CommandLine::Shell(line) => line.trim().is_empty(),
            CommandLine::Argv(argv) => argv.first().is_none_or(String::is_empty),
        };
        if empty {
            return Err(ParamError::Invalid {
                param: "cmd",
                reason: "is empty".to_owned(),
            });
        }
        for path in [&self.creates, &self.removes].into_iter().flatten() {
            names::path(path)?;
        }
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        let mut keys = Vec::new();
        keys.extend(
            self.creates
                .iter()
                .map(|path| FactKey::Paths(PathKey::Path(path.clone()))),
        );
        keys.extend(
            self.removes
                .iter()
                .map(|path| FactKey::Paths(PathKey::Path(path.clone()))),
        );
        keys.extend(
            self.unless
                .iter()
                .map(|probe| FactKey::Commands(CommandKey::Probe(probe.clone()))),
        );
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        if let Some(path) = &self.creates {
            if facts.path(path)?.kind != PathKind::Missing {
                return Ok(Plan::default());
            }
        }
        if let Some(path) = &self.removes {
            if facts.path(path)?.kind == PathKind::Missing {
                return Ok(Plan::default());
            }
        }
        if let Some(probe) = &self.unless {
            if *facts.probe(probe)? == 0 {
                return Ok(Plan::default());
            }
        }
        let command = match &self.cmd {
            CommandLine::Shell(line) => RunCommand::Shell(line.clone()),
            CommandLine::Argv(argv) => RunCommand::Argv(argv.clone()),
        };
        Ok(Plan::of(vec![Change::Commands(CommandChange::Run {
            command,
        })]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::CommandFact;
    use crate::fact::{Fact, PathState};
    use crate::paths::PathFact;

    #[test]
    fn creates_guard_skips_when_present() {
        let command = Command {
            cmd: CommandLine::Shell("touch /tmp/x".into()),
            creates: Some("/tmp/x".into()),
            removes: None,
            unless: None,
        };
        let mut store = FactStore::default();
        store.insert(
            FactKey::Paths(PathKey::Path("/tmp/x".into())),
            Fact::Paths(PathFact::Path(PathState::missing())),
        );
        assert_eq!(command.plan(&store).unwrap().changes.len(), 1);
        store.insert(
            FactKey::Paths(PathKey::Path("/tmp/x".into())),
            Fact::Paths(PathFact::Path(PathState {
                kind: PathKind::File,
                owner: "root".into(),
                group: "root".into(),
                mode: 0o644,
            })),
        );
        assert!(command.plan(&store).unwrap().changes.is_empty());
    }

    #[test]
    fn unless_guard_uses_exit_status() {
        let command = Command {
            cmd: CommandLine::Argv(vec!["true".into()]),
            creates: None,
            removes: None,
            unless: Some("test -e /x".into()),
        };
        let mut store = FactStore::default();
        store.insert(
            FactKey::Commands(CommandKey::Probe("test -e /x".into())),
            Fact::Commands(CommandFact::Probe(1)),
        );
        assert_eq!(
            command.plan(&store).unwrap().changes[0].describe(),
            "run: true"
        );
        store.insert(
            FactKey::Commands(CommandKey::Probe("test -e /x".into())),
            Fact::Commands(CommandFact::Probe(0)),
        );
        assert!(command.plan(&store).unwrap().changes.is_empty());
    }
}
