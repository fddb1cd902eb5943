//! The change only sudo has: proving, right after a sudoers file was written, that sudo
//! grants what the rule says, and putting the previous file back when it does not.

use crate::change::{Cmd, DomainChange};
use crate::fact::{FactStore, Manager, Touch};
use crate::paths::changes::touches_file;
use crate::sudo::sudoers::VERIFY_SUDO;

/// The proof for [`SudoChange::Verify`]: `before` (the file
/// that was replaced, if any) travels on stdin so a refusal can restore it byte for byte.
fn verify_command(
    user: &str,
    runas: &str,
    commands: &[String],
    path: &str,
    before: Option<&Vec<u8>>,
) -> Cmd {
    Cmd::script(
        VERIFY_SUDO,
        [user, runas, path, if before.is_some() { "1" } else { "0" }]
            .into_iter()
            .chain(commands.iter().map(String::as_str)),
    )
    .with_stdin(before.cloned().unwrap_or_default())
}

/// The changes only sudo makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SudoChange {
    /// Proves with `sudo -l -U` that the user may run each command, right after the
    /// sudoers file at `path` was written. When sudo refuses one, the file that was
    /// there before (`before`, byte for byte) is put back, or the new one removed when
    /// there was none, and the failure says what sudo grants.
    Verify {
        user: String,
        runas: String,
        commands: Vec<String>,
        path: String,
        before: Option<Vec<u8>>,
    },
}

impl DomainChange for SudoChange {
    /// A sudoers file (validated by `visudo`) is no business of a systemd manager.
    fn needs_reloaded(&self, _manager: &Manager) -> bool {
        false
    }

    fn describe(&self) -> String {
        match self {
            SudoChange::Verify { user, commands, .. } => format!(
                "verify with sudo -l that {user} may run the {} commands",
                commands.len()
            ),
        }
    }

    fn command(&self) -> Cmd {
        match self {
            SudoChange::Verify {
                user,
                runas,
                commands,
                path,
                before,
            } => verify_command(user, runas, commands, path, before.as_ref()),
        }
    }

    fn touches(&self) -> Vec<Touch> {
        match self {
            // A refused sudoers file was put back or removed.
            SudoChange::Verify { path, .. } => touches_file(path),
        }
    }

    // A proof that passes leaves the file the write predicted.
    fn predict(&self, _: &mut FactStore) {}
}
