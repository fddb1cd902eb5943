//! A host as the engine sees it for a whole run: its connection, facts, lock and the
//! nonce that marks the parts of its batched commands' output.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

use converge_modules::fact::UnitRef;
use converge_modules::FactStore;

use super::Status;
use crate::inventory::Vars;
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
}

impl HostRun {
    /// A host not yet connected.
    pub fn new(name: String, target: Target, vars: Vars) -> Self {
        HostRun {
            name,
            target,
            vars,
            transport: None,
            facts: FactStore::default(),
            down: None,
            commands: 0,
            nonce: nonce(),
            lock: HostLock::Free,
            secret_paths: BTreeSet::new(),
            restarted: BTreeSet::new(),
        }
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
