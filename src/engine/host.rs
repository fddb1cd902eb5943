//! A host as the engine sees it for a whole run: its connection, facts, lock and the
//! nonce that marks the parts of its batched commands' output.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, PoisonError};

use converge_modules::fact::UnitRef;
use converge_modules::FactStore;

use super::render::Rendered;
use super::results::Unknown;
use super::Status;
use crate::inventory::{Templates, Vars};
use crate::playbook::Play;
use crate::transport::{Target, Transport};

/// Whether a run holds a host's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HostLock {
    Free,
    Held,
}

/// A host as the engine sees it for a whole run.
pub struct HostRun {
    pub name: String,
    pub target: Target,
    pub vars: Vars,
    /// Which inventory variables are templates (tagged `!template`), with their files.
    pub templates: Templates,
    pub(super) transport: Option<Box<dyn Transport>>,
    pub(super) facts: FactStore,
    /// Set once the host failed, was unreachable, or was left out of a rollout that
    /// was called off: later plays skip it.
    pub(super) down: Option<Status>,
    pub(super) commands: usize,
    pub(super) nonce: String,
    /// Whether this run holds the host's lock (see `lock`).
    pub(super) lock: HostLock,
    /// Files a `no_log` task manages: their content is a secret, so no later diff
    /// shows it (not even as the "before" side, read from the host or predicted).
    pub(super) secret_paths: BTreeSet<String>,
    /// Units this run restarted on the host: each at most once per run.
    pub(super) restarted: BTreeSet<UnitRef>,
    /// The tasks the up-front input check rendered for this host, per play: the play's
    /// run takes them over instead of rendering them again (see `check_inputs`).
    pub(super) checked: Mutex<Vec<(PlayKey, Rendered)>>,
    /// Results the host's tasks registered (`register:`), seen by later tasks and
    /// plays on this host.
    pub(super) registered: Vars,
    /// In check mode, what is not known of those results (see `results`).
    pub(super) unknown: BTreeMap<String, Unknown>,
}

/// A play of the playbook, which is borrowed for the whole run: its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PlayKey(usize);

impl PlayKey {
    pub(super) fn of(play: &Play) -> Self {
        PlayKey(std::ptr::from_ref(play) as usize)
    }
}

impl HostRun {
    /// Keeps what the input check rendered for `play`.
    pub(super) fn keep_checked(&self, play: &Play, rendered: Rendered) {
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        checked.push((PlayKey::of(play), rendered));
    }

    /// Takes what the input check rendered for `play`, if it did.
    pub(super) fn take_checked(&mut self, play: &Play) -> Option<Rendered> {
        let checked = self
            .checked
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let index = checked
            .iter()
            .position(|(key, _)| *key == PlayKey::of(play))?;
        Some(checked.swap_remove(index).1)
    }
}

impl HostRun {
    /// A host not yet connected.
    pub fn new(name: String, target: Target, vars: Vars) -> Self {
        HostRun {
            name,
            target,
            vars,
            templates: Templates::new(),
            transport: None,
            facts: FactStore::default(),
            down: None,
            commands: 0,
            nonce: nonce(),
            lock: HostLock::Free,
            secret_paths: BTreeSet::new(),
            restarted: BTreeSet::new(),
            checked: Mutex::new(Vec::new()),
            registered: Vars::new(),
            unknown: BTreeMap::new(),
        }
    }
}

impl HostRun {
    /// The host, with the inventory variables of `templates` rendered as templates.
    #[must_use]
    pub fn with_templates(mut self, templates: Templates) -> Self {
        self.templates = templates;
        self
    }
}

/// A fresh random nonce: it marks where one part of a batched command's output ends, so
/// no output of a command on the host can be expected to contain it.
pub(super) fn nonce() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Without the system's randomness (a sandbox refusing the call), the standard
        // library's per-process random hash keys still make an unpredictable nonce.
        let keys = std::collections::hash_map::RandomState::new();
        bytes = keys.build_hasher().finish().to_le_bytes();
    }
    format!("{:016x}", u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_sixteen_hex_digits_and_differ() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|byte| byte.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
