//! The fact store: what converge knows about one host, read or predicted, and what a
//! change makes stale in it.

use std::collections::BTreeMap;

use super::{
    DomainKey, Fact, FactKey, GroupInfo, MachineInfo, Manager, PathState, SystemInfo, UnitRef,
    UnitState, UserInfo,
};
use crate::accounts::{AccountFact, AccountKey};
use crate::commands::{CommandFact, CommandKey};
use crate::paths::{PathFact, PathKey};
use crate::sudo::{SudoFact, SudoKey};
use crate::systemd::{SystemdFact, SystemdKey};

/// What a change makes stale in the fact store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    Key(FactKey),
    /// A path and everything below it.
    Tree(String),
    /// Every unit of a manager.
    Units(Manager),
    /// Anything at all (an arbitrary command ran).
    Everything,
}

/// A change check mode planned whose whole effect it cannot predict: a package
/// install (its maintainer scripts may add units, users, groups and files) or an
/// arbitrary command. A later task that misses something is `pending` on it, not failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsettled {
    /// What it is (`package`, `command`).
    pub kind: &'static str,
    /// Its name: the package, or the command line.
    pub name: String,
    /// Why it has not happened yet (`not yet installed`).
    pub state: &'static str,
}

/// What converge knows about one host: read facts, or facts predicted by check mode.
#[derive(Debug, Clone, Default)]
pub struct FactStore {
    facts: BTreeMap<FactKey, Fact>,
    /// What the play being run promises, whatever order its tasks run in.
    play: BTreeMap<FactKey, Fact>,
    /// Changes check mode planned whose whole effect is unknown, in the run's order.
    unsettled: Vec<Unsettled>,
}

/// Why a plan cannot have a fact it asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactUnavailable {
    /// The engine did not read it: a bug in converge, not in the input.
    #[error("internal error: {key} was needed but not read")]
    NotRead { key: String },
    /// Reading it, or acting on what it names, is not safe (see [`Fact::Refused`]).
    #[error("will not touch {subject}: {reason}")]
    Refused { subject: String, reason: String },
}

impl FactUnavailable {
    fn for_key(key: &FactKey, found: Option<&Fact>) -> Self {
        match found {
            Some(Fact::Refused(reason)) => FactUnavailable::Refused {
                subject: key.path().map_or_else(|| key.to_string(), str::to_owned),
                reason: reason.clone(),
            },
            _ => FactUnavailable::NotRead {
                key: key.to_string(),
            },
        }
    }
}

macro_rules! accessor {
    ($(#[$doc:meta])* $method:ident, $domain:ident($key:ident, $value:ident)::$variant:ident, $arg:ty, $out:ty) => {
        $(#[$doc])*
        pub fn $method(&self, arg: $arg) -> Result<&$out, FactUnavailable> {
            let key = FactKey::$domain($key::$variant(arg.to_owned()));
            match self.facts.get(&key) {
                Some(Fact::$domain($value::$variant(value))) => Ok(value),
                found => Err(FactUnavailable::for_key(&key, found)),
            }
        }
    };
}

impl FactStore {
    /// Starts a play: forgets what the previous play promised.
    pub fn start_play(&mut self) {
        self.play.clear();
    }

    /// Records what one of the play's tasks promises (see [`crate::Module::promises`]),
    /// so that every task of the play, also one that runs before it, can count on it.
    pub fn promise(&mut self, promises: impl IntoIterator<Item = (FactKey, Fact)>) {
        self.play.extend(promises);
    }

    /// What some task of the play being run promises `key` will be, if any task does.
    pub fn promised(&self, key: &FactKey) -> Option<&Fact> {
        self.play.get(key)
    }

    /// Records a planned change whose whole effect check mode cannot predict.
    pub fn unsettle(&mut self, kind: &'static str, name: &str, state: &'static str) {
        let entry = Unsettled {
            kind,
            name: name.to_owned(),
            state,
        };
        if !self.unsettled.contains(&entry) {
            self.unsettled.push(entry);
        }
    }

    /// The planned changes whose whole effect check mode cannot predict, in order.
    pub fn unsettled(&self) -> &[Unsettled] {
        &self.unsettled
    }

    /// The fact under `key`, for a domain's own typed accessor.
    pub fn fact(&self, key: &FactKey) -> Result<&Fact, FactUnavailable> {
        match self.facts.get(key) {
            Some(Fact::Refused(_)) | None => {
                Err(FactUnavailable::for_key(key, self.facts.get(key)))
            }
            Some(fact) => Ok(fact),
        }
    }

    /// Whether `key` is known.
    pub fn has(&self, key: &FactKey) -> bool {
        self.facts.contains_key(key)
    }

    /// Records a fact, read or predicted.
    pub fn insert(&mut self, key: FactKey, fact: Fact) {
        self.facts.insert(key, fact);
    }

    /// The keys whose fact is not the same in `before` (a prediction made since, or a
    /// fact read since), or that only one of the two knows.
    pub fn differing_keys(&self, before: &FactStore) -> Vec<FactKey> {
        let changed = self
            .facts
            .iter()
            .filter(|(key, fact)| before.facts.get(*key) != Some(*fact))
            .map(|(key, _)| key.clone());
        let gone = before
            .facts
            .keys()
            .filter(|key| !self.facts.contains_key(*key))
            .cloned();
        changed.chain(gone).collect()
    }

    /// Forgets what a change made stale, so it is read again before it is used.
    pub fn forget(&mut self, touch: &Touch) {
        self.facts
            .retain(|key, _| !key.domain().is_some_and(DomainKey::volatile));
        match touch {
            Touch::Key(key) => {
                self.facts.remove(key);
            }
            Touch::Tree(root) => {
                let root = root.trim_end_matches('/');
                let below = |path: &str| {
                    path == root
                        || path
                            .strip_prefix(root)
                            .is_some_and(|rest| rest.starts_with('/'))
                };
                self.facts.retain(|key, _| !key.path().is_some_and(&below));
            }
            Touch::Units(manager) => self
                .facts
                .retain(|key, _| !matches!(key, FactKey::Systemd(SystemdKey::Unit(unit)) if unit.manager == *manager)),
            Touch::Everything => self
                .facts
                .retain(|key, _| matches!(key, FactKey::System | FactKey::Machine)),
        }
    }

    /// The first command sudo would refuse `user` (as `runas`), or `None` when it
    /// allows them all.
    pub fn sudo_refused(
        &self,
        user: &str,
        runas: &str,
        commands: &[String],
    ) -> Result<Option<&str>, FactUnavailable> {
        let key = FactKey::Sudo(SudoKey::Refused {
            user: user.to_owned(),
            runas: runas.to_owned(),
            commands: commands.to_vec(),
        });
        match self.facts.get(&key) {
            Some(Fact::Sudo(SudoFact::Refused(refused))) => Ok(refused.as_deref()),
            _ => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }

    /// What `systemd-analyze verify` said about a unit file to be installed.
    pub fn unit_verify(
        &self,
        candidate: &crate::systemd::unit_lint::Candidate,
    ) -> Result<&crate::systemd::unit_lint::Verdict, FactUnavailable> {
        let key = FactKey::Systemd(SystemdKey::UnitVerify(candidate.clone()));
        match self.facts.get(&key) {
            Some(Fact::Systemd(SystemdFact::UnitVerify(verdict))) => Ok(verdict),
            found => Err(FactUnavailable::for_key(&key, found)),
        }
    }

    /// A unit's state.
    pub fn unit(&self, unit: &UnitRef) -> Result<&UnitState, FactUnavailable> {
        let key = FactKey::Systemd(SystemdKey::Unit(unit.clone()));
        match self.facts.get(&key) {
            Some(Fact::Systemd(SystemdFact::Unit(state))) => Ok(state),
            _ => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }

    /// Every unit of `manager` the store knows.
    pub fn units_of(&self, manager: &Manager) -> Vec<UnitRef> {
        self.facts
            .keys()
            .filter_map(|key| match key {
                FactKey::Systemd(SystemdKey::Unit(unit)) if unit.manager == *manager => {
                    Some(unit.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// Mutable access to a unit's state, for check-mode predictions.
    pub fn unit_mut(&mut self, unit: &UnitRef) -> Option<&mut UnitState> {
        match self
            .facts
            .get_mut(&FactKey::Systemd(SystemdKey::Unit(unit.clone())))
        {
            Some(Fact::Systemd(SystemdFact::Unit(state))) => Some(state),
            _ => None,
        }
    }

    /// Host name and operating system.
    pub fn system(&self) -> Result<&SystemInfo, FactUnavailable> {
        match self.facts.get(&FactKey::System) {
            Some(Fact::System(info)) => Ok(info),
            _ => Err(FactUnavailable::NotRead {
                key: FactKey::System.to_string(),
            }),
        }
    }

    /// Hardware and network facts, when the play gathers them.
    pub fn machine(&self) -> Result<&MachineInfo, FactUnavailable> {
        match self.facts.get(&FactKey::Machine) {
            Some(Fact::Machine(info)) => Ok(info),
            _ => Err(FactUnavailable::NotRead {
                key: FactKey::Machine.to_string(),
            }),
        }
    }

    accessor!(
        /// A path's type and attributes.
        path, Paths(PathKey, PathFact)::Path, &str, PathState
    );
    accessor!(
        /// A regular file's bytes (`None` when it is not a regular file).
        content, Paths(PathKey, PathFact)::Content, &str, Option<Vec<u8>>
    );
    accessor!(
        /// The SHA-256 of a regular file's bytes (`None` when it is not a regular file).
        hash, Paths(PathKey, PathFact)::Hash, &str, Option<String>
    );
    accessor!(
        /// What is below a directory (`None` when it is not a directory).
        listing, Paths(PathKey, PathFact)::Listing, &str, Option<Vec<(String, crate::fact::PathKind)>>
    );
    accessor!(
        /// A user account (`None` when it does not exist).
        user, Accounts(AccountKey, AccountFact)::User, &str, Option<UserInfo>
    );
    accessor!(
        /// A group (`None` when it does not exist).
        group, Accounts(AccountKey, AccountFact)::Group, &str, Option<GroupInfo>
    );
    accessor!(
        /// Whether lingering is on for a user.
        linger, Systemd(SystemdKey, SystemdFact)::Linger, &str, bool
    );
    accessor!(
        /// Exit status of a probe command.
        probe, Commands(CommandKey, CommandFact)::Probe, &str, i32
    );
}
