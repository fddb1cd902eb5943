//! The change only sudo has: proving, right after a sudoers file was written, that sudo
//! grants what the rule says, and putting the previous file back when it does not.

use crate::change::Cmd;
use crate::sudo::sudoers::VERIFY_SUDO;

/// The proof for [`Change::VerifySudo`](crate::Change::VerifySudo): `before` (the file
/// that was replaced, if any) travels on stdin so a refusal can restore it byte for byte.
pub(crate) fn verify_command(
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
