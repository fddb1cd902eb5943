//! Running commands on a remote host over SSH, with libssh2 (the `ssh2` crate).
//!
//! [`SshTransport::connect`] opens one TCP connection and one SSH session per host (through
//! its `ProxyJump` hosts, if any: see [`super::jump`]), checks the server's host key
//! against the `known_hosts` files as the target's [`HostKeyChecking`](super::HostKeyChecking) asks, and
//! authenticates with keys only. Every later command reuses that session, one at a time.
//!
//! Keys are tried as `ssh` tries them: first the keys ssh-agent holds (those of the
//! configured key files first), then the key files themselves, each with its certificate
//! (`KEY-cert.pub`, and any `CertificateFile`) before it alone. The key files are the
//! inventory's `identity_file` (then only that key is offered, from the agent or the
//! file), else the ssh config's `IdentityFile`s, else `~/.ssh/id_ed25519`, `id_ecdsa`,
//! `id_rsa`; `IdentitiesOnly yes` keeps the agent's other keys out.
//!
//! Guarantees:
//! - Connecting gives up after 10 s per address (or the ssh config's `ConnectTimeout`),
//!   and the handshake and each login attempt after 15 s.
//! - An encrypted key file is opened with a passphrase asked once on the terminal (see
//!   [`super::keys`]); without a terminal the key is skipped with a reason that says how
//!   to use it (ssh-agent), never with a hang on a prompt nobody sees.
//! - Host keys are matched the way OpenSSH matches them: hashed entries and the
//!   `[host]:port` form for ports other than 22 are understood, the server is asked for a
//!   key of a type the `known_hosts` file already holds for it, and a known host that
//!   presents a different key is refused, whatever the checking mode. Entries added by
//!   `accept-new` are appended under a process-wide lock, so hosts connected in parallel
//!   do not lose each other's lines.
//! - A command's stdin, stdout and stderr are moved concurrently, so a command may write
//!   any amount to both output streams while it is still being fed its input.
//! - A command may run silently for as long as it likes: keepalives keep the connection
//!   observable, and a command fails only if the server shows no sign of life, not even
//!   an answer to a keepalive, for `ServerAliveInterval` × `ServerAliveCountMax` (15 s ×
//!   3 unless the ssh config sets them): a host that stops answering is given up within
//!   that bound.
//! - No command's output is read past [`Limits::max_output`] bytes: a host cannot make
//!   the controller hold more than that per command.
//! - A held command (see [`Transport::hold`]) runs on a channel of its own beside the
//!   others; when the session ends, however it ends, sshd closes that command's stdin.
//! - Once a command has failed at the transport level, the connection is not trusted
//!   again: later commands on it fail at once with the original reason.
//!
//! This file holds the session and the [`Transport`] implementation; [`channel`] runs a
//! command on a channel and moves its streams, [`dial`] opens the connection and runs the
//! handshake, [`known_hosts`] checks and records host keys, and [`auth`] logs in.

mod auth;
mod channel;
mod dial;
mod known_hosts;
#[cfg(test)]
mod tests;

use std::os::fd::OwnedFd;
use std::time::Duration;

use ssh2::{Channel, Session};

use super::jump::Relay;
use super::{Limits, Output, Target, Transport, TransportError};
use channel::{liveness, millis};
use dial::{establish, open_tcp};

/// How long one TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// libssh2's limit, in milliseconds, for each blocking step of the handshake and login.
const LOGIN_TIMEOUT_MS: u32 = 15_000;
/// Silence after which the server is asked for a sign of life, and the interval between
/// such keepalive requests.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// libssh2's limit, in milliseconds, for the goodbye messages of a connection being dropped.
const CLOSE_TIMEOUT_MS: u32 = 3_000;
/// Wait slice while the socket's send buffer is full: std cannot wait for writability.
const SEND_BACKOFF: Duration = Duration::from_millis(2);
/// Size of each stdin write and output read.
const CHUNK: usize = 32 * 1024;
/// Output read from one stream before the other one and stdin get a turn.
const READ_BURST: usize = 1024 * 1024;
/// libssh2's "would block" code.
const LIBSSH2_ERROR_EAGAIN: i32 = -37;
/// libssh2's code for a blocking call that ran out of time.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
/// libssh2's code for a key file it cannot read or decrypt (a wrong passphrase).
const LIBSSH2_ERROR_FILE: i32 = -16;
/// OpenSSH's default `ServerAliveCountMax`.
const DEFAULT_ALIVE_COUNT: u32 = 3;
/// How often a wrong passphrase may be typed again, as `ssh` allows.
const PASSPHRASE_ATTEMPTS: usize = 3;

/// Why a command failed at the transport level.
enum Failure {
    /// The connection cannot be trusted any more.
    Lost(String),
    /// The command wrote more than the output limit.
    TooMuch,
}

/// One authenticated SSH session to one host.
pub struct SshTransport {
    /// The channel of the held command (see [`Transport::hold`]), if any.
    held: Option<Channel>,
    /// Held commands told to end (their stdin closed) and not waited for: kept open
    /// until the session ends, since dropping a channel waits for the server's goodbye.
    released: Vec<Channel>,
    session: Session,
    /// A second handle on the session's socket, used only to sleep until data arrives.
    socket: OwnedFd,
    /// The inventory name, for messages.
    host: String,
    /// Why the session can no longer be trusted, once a command has failed on it.
    broken: Option<String>,
    /// Silence after which the server is asked for a sign of life.
    keepalive: Duration,
    /// Silence after which the server is given up while a command runs.
    silence_limit: Duration,
    /// Output bytes read from one command at most.
    max_output: usize,
    /// The jump hosts' relays, outermost first. Declared last: dropped after the session
    /// above them has closed, which is what ends them.
    _relays: Vec<Relay>,
}

impl SshTransport {
    /// Connects to `target` (through its jump hosts), verifies its host key and logs in
    /// as `target.user`.
    pub fn connect(target: &Target, limits: Limits) -> Result<Self, TransportError> {
        if let Some(command) = &target.ssh.proxy_command {
            return Err(TransportError::Unsupported {
                host: target.name.clone(),
                message: format!(
                    "the ssh config's ProxyCommand ({command}) is not supported; \
                     use ProxyJump for jump hosts"
                ),
            });
        }
        let jumps = &target.ssh.jumps;
        let first = jumps.first().unwrap_or(target);
        let mut stream = open_tcp(first).map_err(|error| match jumps.first() {
            Some(jump) => TransportError::Jump {
                jump: jump.name.clone(),
                source: Box::new(error),
            },
            None => error,
        })?;
        let mut relays = Vec::with_capacity(jumps.len());
        for (index, jump) in jumps.iter().enumerate() {
            let next = jumps.get(index + 1).unwrap_or(target);
            let via = |error: TransportError| TransportError::Jump {
                jump: jump.name.clone(),
                source: Box::new(error),
            };
            let (session, socket) = establish(jump, stream).map_err(via)?;
            let (relay, next_stream) =
                Relay::open(session, socket, &next.address, next.port, &jump.name).map_err(
                    |source| TransportError::Forward {
                        jump: jump.name.clone(),
                        destination: format!("{}:{}", next.address, next.port),
                        source,
                    },
                )?;
            relays.push(relay);
            stream = OwnedFd::from(next_stream);
        }
        let (session, socket) = establish(target, stream)?;
        let (keepalive, silence_limit) = liveness(&target.ssh);
        session.set_timeout(millis(silence_limit));
        Ok(Self {
            held: None,
            released: Vec::new(),
            session,
            socket,
            host: target.name.clone(),
            broken: None,
            keepalive,
            silence_limit,
            max_output: usize::try_from(limits.max_output).unwrap_or(usize::MAX),
            _relays: relays,
        })
    }
}

impl Transport for SshTransport {
    fn run(&mut self, command_line: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        if let Some(reason) = &self.broken {
            return Err(TransportError::Channel {
                host: self.host.clone(),
                message: format!("the connection is unusable after an earlier failure: {reason}"),
            });
        }
        match self.run_command(command_line, stdin, None) {
            Ok((output, _)) => Ok(output),
            Err(failure) => Err(self.failed(failure)),
        }
    }

    fn hold(
        &mut self,
        command_line: &str,
        stdin: &[u8],
        ready: &[u8],
    ) -> Result<(Output, bool), TransportError> {
        if let Some(reason) = &self.broken {
            return Err(TransportError::Channel {
                host: self.host.clone(),
                message: format!("the connection is unusable after an earlier failure: {reason}"),
            });
        }
        self.release();
        match self.run_command(command_line, stdin, Some(ready)) {
            Ok((output, channel)) => {
                let held = channel.is_some();
                self.held = channel;
                Ok((output, held))
            }
            Err(failure) => Err(self.failed(failure)),
        }
    }

    fn release(&mut self) {
        let Some(mut channel) = self.held.take() else {
            return;
        };
        if self.broken.is_some() {
            return;
        }
        self.session.set_blocking(true);
        self.session.set_timeout(CLOSE_TIMEOUT_MS);
        // The command ends when its stdin does, a moment after the server reads this;
        // waiting for that would cost a round trip, and whoever takes the lock next
        // waits for it on the host anyway. Should the end of input get lost, the
        // session's end ends the command.
        let _ = channel.send_eof();
        self.released.push(channel);
        self.session.set_timeout(millis(self.silence_limit));
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        self.release();
        if self.broken.is_none() {
            self.session.set_blocking(true);
            self.session.set_timeout(CLOSE_TIMEOUT_MS);
            // The connection is going away either way; a failed goodbye changes nothing.
            let _ = self.session.disconnect(None, "converge is done", None);
        }
        // Nothing more is read from this connection: without the shutdown, closing the
        // released channels would wait a round trip for the server to confirm.
        let _ = rustix::net::shutdown(&self.socket, rustix::net::Shutdown::Both);
    }
}
