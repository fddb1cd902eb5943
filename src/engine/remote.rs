//! Remote commands of one host's play run: changes in one command, run as the task's
//! user (through `sudo -n`), shown with `-v` and counted; and what a failure says.

use converge_modules::systemd::changes::{reloads_joined_later, reloads_owed};
use converge_modules::{sequence, shell, Change, Cmd};

use super::play_run::PlayRun;
use super::{Status, TaskError};
use crate::report::escape_control;
use crate::transport::{Output, Transport, TransportError};

impl PlayRun<'_> {
    /// Carries out changes in one remote command, stopping at the first that fails.
    /// Returns how many were attempted (the failed one included: the report lists
    /// exactly those) and the outcome.
    ///
    /// A daemon-reload that a later one of the same manager makes unnecessary (see
    /// [`reloads_joined_later`]) is not sent: that one loads both tasks' unit files. When
    /// a change between them fails, the reload the earlier tasks asked for is made
    /// then, so what the report lists as done is done.
    pub(super) fn apply(&mut self, changes: &[Change]) -> (usize, Result<(), TaskError>) {
        let (attempted, result, _) = self.apply_then(changes, None);
        (attempted, result)
    }

    /// Carries out changes as [`Self::apply`] does and, when every one of them
    /// succeeded, `read` in the same command, whose output it returns: a read after
    /// the changes costs no round trip of its own. A failed `read` is no failed change.
    pub(super) fn apply_then(
        &mut self,
        changes: &[Change],
        read: Option<Cmd>,
    ) -> (usize, Result<(), TaskError>, Option<Output>) {
        if changes.is_empty() {
            return (0, Ok(()), None);
        }
        let joined = reloads_joined_later(changes);
        let sent: Vec<usize> = (0..changes.len())
            .filter(|&index| joined[index].is_none())
            .collect();
        let sent_changes: Vec<Change> = sent.iter().map(|&index| changes[index].clone()).collect();
        let (ran, result, read_output) = self.apply_run(&sent_changes, read);
        let Err(error) = result else {
            return (changes.len(), Ok(()), read_output);
        };
        let Some(&failed) = ran.checked_sub(1).and_then(|last| sent.get(last)) else {
            return (0, Err(error), None);
        };
        let owed = reloads_owed(changes, &joined, failed);
        if !owed.is_empty() {
            // The failure stays the task's outcome, and its output the last one.
            let output = self.last_output.take();
            let _ = self.apply_run(&owed, None);
            self.last_output = output;
        }
        (failed + 1, Err(error), None)
    }

    /// Carries out changes that can go as one command, then `read` if they all
    /// succeeded. Returns how many changes ran (all of them when the connection failed:
    /// nobody can tell), the outcome, and what `read` printed if it ran.
    fn apply_run(
        &mut self,
        changes: &[Change],
        read: Option<Cmd>,
    ) -> (usize, Result<(), TaskError>, Option<Output>) {
        let mut commands: Vec<Cmd> = changes.iter().map(Change::command).collect();
        commands.extend(read);
        let mut outputs: Vec<Output> = if let [command] = commands.as_slice() {
            match self.remote(command) {
                Ok(output) => vec![output],
                Err(error) => return (1, Err(error), None),
            }
        } else {
            let nonce = self.host.nonce.clone();
            match self.remote(&sequence::sequence(&commands, &nonce)) {
                Ok(output) => sequence::split(
                    commands.len(),
                    &nonce,
                    output.status,
                    &output.stdout,
                    &output.stderr,
                )
                .into_iter()
                .map(|step| Output {
                    status: step.status,
                    stdout: step.stdout,
                    stderr: step.stderr,
                })
                .collect(),
                Err(error) => return (changes.len(), Err(error), None),
            }
        };
        // Only a read that every change went before can have run.
        let read_output = (outputs.len() > changes.len())
            .then(|| outputs.pop())
            .flatten();
        for (change, output) in changes.iter().zip(&outputs) {
            self.last_output = Some(output.clone());
            for touch in change.touches() {
                self.host.facts.forget(&touch);
            }
            if output.status != 0 {
                let failure = self.remote_failure(&change.describe(), output);
                return (outputs.len(), Err(failure), None);
            }
        }
        (outputs.len(), Ok(()), read_output)
    }

    /// Why a remote command that exited with a failure status failed.
    pub(super) fn remote_failure(&self, what: &str, output: &Output) -> TaskError {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // sudo's words, and sudo-rs's.
        let prompts = [
            "a password is required",
            "interactive authentication is required",
        ];
        if self.acting_as.is_some() && prompts.iter().any(|prompt| stderr.contains(prompt)) {
            return TaskError::SudoPrompt {
                host: self.host.name.clone(),
                user: self.host.target.user.clone(),
            };
        }
        let detail = stderr.trim();
        let detail = if detail.is_empty() {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        } else {
            detail.to_owned()
        };
        TaskError::Remote {
            what: what.to_owned(),
            status: output.status,
            detail,
        }
    }

    pub(super) fn remote(&mut self, cmd: &Cmd) -> Result<Output, TaskError> {
        let line = self.command_line(cmd);
        Ok(self.transport()?.run(&line, &cmd.stdin)?)
    }

    /// The host's open connection.
    fn transport(&mut self) -> Result<&mut Box<dyn Transport>, TaskError> {
        self.host.transport.as_mut().ok_or(TaskError::NotConnected)
    }

    /// Runs `cmd` as [`Transport::hold`] does: a command that says `ready` stays on the
    /// host, running.
    pub(super) fn remote_hold(
        &mut self,
        cmd: &Cmd,
        ready: &[u8],
    ) -> Result<(Output, bool), TaskError> {
        let line = self.command_line(cmd);
        Ok(self.transport()?.hold(&line, &cmd.stdin, ready)?)
    }

    /// The command line for `cmd` as this task's user, shown with `-v` and counted.
    pub(super) fn command_line(&mut self, cmd: &Cmd) -> String {
        let mut argv = sudo_prefix(self.acting_as.as_deref());
        argv.extend(cmd.argv.iter().map(String::as_str));
        let line = shell::join(&argv);
        if self.options.verbose > 0 && self.hide_commands {
            eprintln!("[{}] $ (command hidden: no_log)", self.host.name);
        } else {
            show_command(&self.host.name, &line, self.options.verbose);
            if self.options.verbose > 1 {
                show_script(&self.host.name, cmd);
            }
        }
        self.host.commands += 1;
        line
    }
}

/// How a transport failure counts: a host that cannot be talked to is unreachable;
/// one that wrote more than the output limit failed.
pub(super) fn transport_status(error: &TransportError) -> Status {
    match error {
        TransportError::OutputLimit { .. } => Status::Failed,
        _ => Status::Unreachable,
    }
}

/// Prints a remote command for `-v` (shortened unless `-vv`).
pub(super) fn show_command(host: &str, line: &str, verbose: u8) {
    if verbose == 0 {
        return;
    }
    // Values from inventories reach command lines; they reach the terminal escaped.
    if verbose > 1 || line.len() < 300 {
        eprintln!("[{host}] $ {}", escape_control(line));
    } else {
        let cut = line.char_indices().nth(200).map_or(line.len(), |(i, _)| i);
        eprintln!(
            "[{host}] $ {}... ({} bytes)",
            escape_control(&line[..cut]),
            line.len()
        );
    }
}

/// Prints, for `-vv`, the script a [`sequence`] sends on its stdin (its commands; never
/// the input that follows them, which holds files' content).
fn show_script(host: &str, cmd: &Cmd) {
    let Some(length) = sequence::script_length(&cmd.argv) else {
        return;
    };
    let length = length.min(cmd.stdin.len());
    for line in String::from_utf8_lossy(&cmd.stdin[..length]).lines() {
        eprintln!("[{host}] | {}", escape_control(line));
    }
}

/// Runs its arguments through the host's sudo without a prompt (`-n`): `sudo`, or
/// Debian's `sudo-rs` where only that is installed. Where neither is, it says so and
/// exits 127, as a shell does for a missing command.
pub(super) const BECOME: &str = r#"for sudo in sudo sudo-rs; do
  if command -v "$sudo" >/dev/null 2>&1; then exec "$sudo" -n "$@"; fi
done
echo "become needs sudo, and neither sudo nor sudo-rs is installed" >&2
exit 127"#;

/// The words that make a command run as `identity` (none: as the login user).
pub(super) fn sudo_prefix(identity: Option<&str>) -> Vec<&str> {
    match identity {
        None => vec![],
        Some("root") => vec!["sh", "-c", BECOME, "sudo", "--"],
        Some(user) => vec!["sh", "-c", BECOME, "sudo", "-u", user, "--"],
    }
}
