//! Reading a host's facts: every fact a play needs in one batched command (taking the
//! host's lock with it when the run needs it), and again, before their next use, the
//! facts a change made stale.

use converge_modules::accounts::{AccountFact, AccountKey};
use converge_modules::fact::{batch_script, split_batch, Fact, FactKey, UserInfo};
use converge_modules::paths::PathKey;
use converge_modules::{Cmd, DynModule, FactStore};
use std::sync::Arc;

use super::play_run::PlayRun;
use super::{HostLock, TaskError};
use crate::lock;
use crate::transport::Output;

impl PlayRun<'_> {
    /// Reads what `module` needs and does not know yet. A fact may name another (a
    /// user's home, then a file in it): read until it asks for nothing new. What the
    /// play's other tasks need and is not known either rides along in the same command,
    /// so a change that made many facts stale costs one read, not one per task.
    pub(super) fn read_missing(&mut self, module: &dyn DynModule) -> Result<(), TaskError> {
        // A script sent and not confirmed yet is confirmed by this read.
        let missing = module
            .facts(&self.host.facts)
            .into_iter()
            .filter(|key| !self.host.facts.has(key))
            .collect();
        self.confirm(missing)?;
        for _ in 0..4 {
            let missing: Vec<FactKey> = module
                .facts(&self.host.facts)
                .into_iter()
                .filter(|key| !self.host.facts.has(key))
                .collect();
            if missing.is_empty() && !(self.take_lock && self.host.lock == HostLock::Free) {
                break;
            }
            let others: Vec<FactKey> = self
                .expected()
                .flat_map(|other| other.facts(&self.host.facts))
                .collect();
            self.read_facts(missing.into_iter().chain(others).collect())?;
        }
        Ok(())
    }

    pub(super) fn read_facts(&mut self, keys: Vec<FactKey>) -> Result<(), TaskError> {
        let mut keys: Vec<FactKey> = keys
            .into_iter()
            .filter(|key| !self.host.facts.has(key))
            .collect();
        keys.sort();
        keys.dedup();
        let take_lock = self.take_lock && self.host.lock == HostLock::Free;
        if keys.is_empty() && !take_lock {
            return Ok(());
        }
        let script = batch_script(&keys, &self.host.nonce);
        let output = if take_lock {
            // Taking the lock rides along with a read: no extra round trip. The command
            // that read the facts stays on the host holding the lock, until the run
            // gives it back or its connection ends.
            let holder = lock::holder_description(&self.host.target.user);
            let ready = lock::ready_line(&self.host.nonce);
            let script = lock::hold_script(&holder, self.options.lock_wait, &script, &ready);
            let read = Cmd {
                argv: lock::reader_argv(&script),
                stdin: script.into_bytes(),
            };
            let (output, held) = self.remote_hold(&read, ready.as_bytes())?;
            if output.status == lock::LOCKED_EXIT {
                return Err(TaskError::Locked(
                    String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                ));
            }
            if !held {
                let status = if output.status == 0 {
                    -1
                } else {
                    output.status
                };
                return Err(
                    self.remote_failure("taking the host's lock", &Output { status, ..output })
                );
            }
            self.host.lock = HostLock::Held;
            output
        } else {
            self.remote(&reader(script))?
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status != 0 {
            return Err(self.remote_failure("reading the host's state", &output));
        }
        let facts = split_batch(&keys, &self.host.nonce, &stdout).map_err(TaskError::Facts)?;
        for (key, fact) in facts {
            self.host.facts.insert(key, fact);
        }
        Ok(())
    }

    /// Keeps what a read of `keys` that rode along with a script printed (see
    /// [`reader`]); a read that failed, or printed what does not parse, leaves them
    /// unknown, for the next read to ask again.
    pub(super) fn keep_read(&mut self, keys: &[FactKey], output: &Output) {
        if output.status != 0 {
            return;
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        if let Ok(facts) = split_batch(keys, &self.host.nonce, &stdout) {
            for (key, fact) in facts {
                self.host.facts.insert(key, fact);
            }
        }
    }
}

/// The command that runs a read's `script` (see [`batch_script`]). The script goes on
/// stdin, not on the command line: an SSH exec request has a size limit (about 32 KiB
/// with libssh2) that a play with a hundred files exceeds. `eval` starts only once all
/// of it is read, so no probe can take the rest of the script as its own input.
pub(super) fn reader(script: String) -> Cmd {
    Cmd {
        argv: ["sh", "-c", "eval \"$(cat)\"", "converge-facts"]
            .map(str::to_owned)
            .to_vec(),
        stdin: script.into_bytes(),
    }
}

/// Facts the modules would ask for next if each user in `keys` had the usual home
/// (`/home/NAME`, `/root`): a user unit's path depends on its user's home. Read with
/// the first batch, they spare the second one whenever the guess is right, which the
/// real user fact, read in the same batch, decides before anything is planned. When it
/// is wrong, they are true facts about paths that no task uses.
pub(super) fn guessed_facts(
    known: &FactStore,
    keys: &[FactKey],
    modules: &[Arc<dyn DynModule>],
) -> Vec<FactKey> {
    let mut guess = known.clone();
    for key in keys {
        if let FactKey::Accounts(AccountKey::User(name)) = key {
            if !guess.has(key) {
                let home = if name == "root" {
                    "/root".to_owned()
                } else {
                    format!("/home/{name}")
                };
                let user = UserInfo {
                    uid: None,
                    home,
                    shell: String::new(),
                    primary_group: name.clone(),
                    groups: Vec::new(),
                };
                guess.insert(key.clone(), Fact::Accounts(AccountFact::User(Some(user))));
            }
        }
    }
    modules
        .iter()
        .flat_map(|module| module.facts(&guess))
        .filter(|key| !guess.has(key))
        .collect()
}

/// The files whose content `module` reads: those a `no_log` task's secret may be in.
pub(super) fn content_paths(module: &dyn DynModule, facts: &FactStore) -> Vec<String> {
    module
        .facts(facts)
        .into_iter()
        .filter_map(|key| match key {
            FactKey::Paths(PathKey::Content(path)) => Some(path),
            _ => None,
        })
        .collect()
}
