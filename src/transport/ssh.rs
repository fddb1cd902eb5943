//! Running commands on a remote host over SSH, with libssh2 (the `ssh2` crate).
//!
//! [`SshTransport::connect`] opens one TCP connection and one SSH session per host (through
//! its `ProxyJump` hosts, if any: see [`super::jump`]), checks the server's host key
//! against the `known_hosts` files as the target's [`HostKeyChecking`] asks, and
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

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ssh2::{
    BlockDirections, Channel, CheckResult, ErrorCode, HashType, KnownHostFileKind, MethodType,
    Session, Stream,
};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{recv, RecvFlags};

use super::jump::Relay;
use super::keys::{self, Protection};
use super::{HostKeyChecking, Limits, Output, SshOptions, Target, Transport, TransportError};

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
/// Key files tried, in this order, when the target names none and ssh-agent fails.
const DEFAULT_KEY_FILES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];
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

/// Serializes the read-check-append of `~/.ssh/known_hosts` by `accept-new`.
static KNOWN_HOSTS_LOCK: Mutex<()> = Mutex::new(());

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
                    |message| TransportError::Forward {
                        jump: jump.name.clone(),
                        destination: format!("{}:{}", next.address, next.port),
                        message,
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

    /// Opens a channel, runs the command on it and collects what it returned. With
    /// `ready`, stdin stays open, and a command that says `ready` is returned with its
    /// channel, still running.
    fn run_command(
        &mut self,
        command_line: &str,
        stdin: &[u8],
        ready: Option<&[u8]>,
    ) -> Result<(Output, Option<Channel>), Failure> {
        self.session.set_blocking(true);
        let mut channel = self
            .session
            .channel_session()
            .map_err(|e| Failure::Lost(format!("cannot open a channel: {}", e.message())))?;
        if let Err(e) = channel.exec(command_line) {
            self.session.set_timeout(CLOSE_TIMEOUT_MS);
            return Err(Failure::Lost(format!(
                "cannot start the command: {}",
                e.message()
            )));
        }

        // Keepalives are on only while the pump drives the session: libssh2's blocking
        // calls would otherwise send them from inside a key exchange, which breaks it.
        self.session.set_blocking(false);
        self.session.set_keepalive(
            true,
            u32::try_from(self.keepalive.as_secs().max(1)).unwrap_or(15),
        );
        let pumped = self.pump(&mut channel, stdin, ready);
        self.session.set_keepalive(false, 0);
        self.session.set_blocking(true);
        let mut output = match pumped {
            Ok((output, true)) => return Ok((output, Some(channel))),
            Ok((output, false)) => output,
            Err(failure) => {
                // Dropping the channel says goodbye to the server; do not wait long for it.
                self.session.set_timeout(CLOSE_TIMEOUT_MS);
                return Err(failure);
            }
        };

        let signal = channel
            .exit_signal()
            .ok()
            .and_then(|s| s.exit_signal.map(|name| (name, s.error_message)));
        if let Some((name, message)) = signal {
            output.status = -1;
            append_note(
                &mut output.stderr,
                &signal_note(&name, message.as_deref().unwrap_or("")),
            );
        } else {
            output.status = channel.exit_status().map_err(|e| {
                Failure::Lost(format!("cannot read the exit status: {}", e.message()))
            })?;
        }
        Ok((output, None))
    }

    /// Feeds stdin and drains stdout and stderr until the server closes the channel,
    /// or, with `ready`, until the output has ended with `ready` (then the command is
    /// held: the second value is `true`, and `ready` is cut off the output).
    ///
    /// The session is in non-blocking mode here: each round moves whatever can move
    /// without waiting, and only a round that moved nothing sleeps until the socket has
    /// data (or, when the send buffer is full, for a moment).
    fn pump(
        &self,
        channel: &mut Channel,
        stdin: &[u8],
        ready: Option<&[u8]>,
    ) -> Result<(Output, bool), Failure> {
        let lost = Failure::Lost;
        let mut output = Output::default();
        let mut stdout = channel.stream(0);
        let mut stderr = channel.stderr();
        let mut buffer = vec![0u8; CHUNK];
        let mut written = 0;
        let mut eof_sent = false;
        let mut stdout_done = false;
        let mut stderr_done = false;
        let mut last_sign_of_life = Instant::now();
        let mut peer_gone = false;

        loop {
            let mut progress = false;

            if !eof_sent {
                if written < stdin.len() {
                    let end = stdin.len().min(written + CHUNK);
                    match channel.write(&stdin[written..end]) {
                        Ok(n) => {
                            written += n;
                            progress |= n > 0;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        // The command has finished or closed its stdin; the unread rest is
                        // dropped, like a pipe to a process that exited. A broken connection
                        // shows up on the reads below.
                        Err(_) => {
                            written = stdin.len();
                            progress = true;
                        }
                    }
                }
                if written == stdin.len() && !eof_sent && ready.is_none() {
                    match channel.send_eof() {
                        Err(e) if is_eagain(&e) => {}
                        // A failure means the channel is already closing, as above.
                        Ok(()) | Err(_) => {
                            eof_sent = true;
                            progress = true;
                        }
                    }
                }
            }

            if !stdout_done {
                let room = self.room(&output);
                let (moved, done) =
                    drain(&mut stdout, channel, &mut buffer, &mut output.stdout, room)
                        .map_err(|e| lost(self.read_failure("stdout", &e)))?;
                progress |= moved;
                stdout_done = done;
            }
            if !stderr_done {
                let room = self.room(&output);
                let (moved, done) =
                    drain(&mut stderr, channel, &mut buffer, &mut output.stderr, room)
                        .map_err(|e| lost(self.read_failure("stderr", &e)))?;
                progress |= moved;
                stderr_done = done;
            }
            if output.stdout.len() + output.stderr.len() > self.max_output {
                return Err(Failure::TooMuch);
            }
            if let Some(ready) = ready.filter(|ready| output.stdout.ends_with(ready)) {
                // The command goes on running; whatever else it writes is not read.
                output.stdout.truncate(output.stdout.len() - ready.len());
                return Ok((output, true));
            }

            if stdout_done && stderr_done {
                match channel.wait_close() {
                    Ok(()) => return Ok((output, false)),
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => {
                        return Err(lost(format!(
                            "the channel did not close properly: {}",
                            e.message()
                        )))
                    }
                }
            }

            if progress {
                last_sign_of_life = Instant::now();
                continue;
            }
            if peer_gone {
                return Err(lost("the server closed the connection".to_owned()));
            }
            let silent_for = last_sign_of_life.elapsed();
            if silent_for >= self.silence_limit {
                return Err(lost(format!(
                    "the server sent nothing, not even a keepalive reply, for {} s \
                     (ServerAliveInterval × ServerAliveCountMax)",
                    silent_for.as_secs()
                )));
            }

            let mut wait = self.silence_limit.saturating_sub(silent_for);
            let sending_blocked = matches!(
                self.session.block_directions(),
                BlockDirections::Outbound | BlockDirections::Both
            );
            if silent_for < self.keepalive {
                wait = wait.min(self.keepalive.saturating_sub(silent_for));
            } else if !sending_blocked {
                // Not while a packet is stuck half-sent: libssh2 would have to hold the
                // keepalive back, or get it stuck half-sent itself, in front of stdin.
                match self.session.keepalive_send() {
                    Ok(seconds) => {
                        wait = wait.min(Duration::from_secs(u64::from(seconds.max(1))));
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => {
                        return Err(lost(format!("cannot send a keepalive: {}", e.message())))
                    }
                }
            }
            if sending_blocked {
                wait = wait.min(SEND_BACKOFF);
            }
            match self.wait_for_data(wait) {
                Ok(Some(0)) => peer_gone = true,
                Ok(Some(_)) => last_sign_of_life = Instant::now(),
                Ok(None) => {}
                Err(e) => return Err(lost(format!("cannot wait for the server: {e}"))),
            }
        }
    }

    /// How many more output bytes a command may write: one past the limit, so that
    /// going over it shows.
    fn room(&self, output: &Output) -> usize {
        (self.max_output + 1).saturating_sub(output.stdout.len() + output.stderr.len())
    }

    /// Turns a failed command into the error the caller sees; a lost connection is not
    /// used again.
    fn failed(&mut self, failure: Failure) -> TransportError {
        let message = match failure {
            Failure::Lost(message) => message,
            Failure::TooMuch => {
                // The rest of the output is still on its way: the session is given up
                // rather than read to the end.
                self.broken = Some("a command wrote more than the output limit".to_owned());
                return TransportError::OutputLimit {
                    host: self.host.clone(),
                    limit: self.max_output as u64,
                };
            }
        };
        self.broken = Some(message.clone());
        TransportError::Channel {
            host: self.host.clone(),
            message,
        }
    }

    /// Explains a failed read, telling a connection closed by the server from other causes.
    fn read_failure(&self, stream: &str, error: &io::Error) -> String {
        match self.wait_for_data(Duration::from_millis(1)) {
            Ok(Some(0)) => format!(
                "the server closed the connection while the command's {stream} was being read"
            ),
            _ => format!("cannot read the command's {stream}: {error}"),
        }
    }

    /// Sleeps until the socket has data to read, it is closed, or `timeout` passes.
    ///
    /// Returns the number of bytes seen (0: the server closed the connection), or `None`
    /// on timeout. The socket stays as libssh2 set it up: `poll` waits, and a
    /// non-blocking peek tells data from the end of the connection.
    fn wait_for_data(&self, timeout: Duration) -> io::Result<Option<usize>> {
        let timeout =
            Timespec::try_from(timeout.max(Duration::from_millis(1))).unwrap_or(Timespec {
                tv_sec: 3600,
                tv_nsec: 0,
            });
        let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let mut probe = [0u8; 1];
        match recv(
            &self.socket,
            &mut probe,
            RecvFlags::PEEK | RecvFlags::DONTWAIT,
        ) {
            Ok((n, _)) => Ok(Some(n)),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(None),
            // A reset connection is gone, as a closed one is.
            Err(rustix::io::Errno::CONNRESET) => Ok(Some(0)),
            Err(e) => Err(e.into()),
        }
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
        // The command ends when its stdin does; waiting for the channel to close is
        // waiting for it to have ended. Should that fail, the session's end ends it.
        if channel.send_eof().is_ok() {
            let _ = channel.wait_close();
        }
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
    }
}

/// Reads what `stream` has without waiting, up to [`READ_BURST`] bytes and at most
/// `room` bytes.
///
/// Returns whether anything was read and whether the stream has ended.
fn drain(
    stream: &mut Stream,
    channel: &Channel,
    buffer: &mut [u8],
    sink: &mut Vec<u8>,
    room: usize,
) -> io::Result<(bool, bool)> {
    let mut moved = 0;
    while moved < READ_BURST.min(room) {
        let want = buffer.len().min(room - moved);
        match stream.read(&mut buffer[..want]) {
            // libssh2 also answers 0 in some states where more data may still come, so
            // the stream is over only once the channel as a whole is at end of file.
            Ok(0) => return Ok((moved > 0, channel.eof())),
            Ok(n) => {
                sink.extend_from_slice(&buffer[..n]);
                moved += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok((moved > 0, false))
}

fn is_eagain(error: &ssh2::Error) -> bool {
    error.code() == ErrorCode::Session(LIBSSH2_ERROR_EAGAIN)
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// Appends a line to captured stderr, starting a new line if needed.
fn append_note(stderr: &mut Vec<u8>, note: &str) {
    if !stderr.is_empty() && !stderr.ends_with(b"\n") {
        stderr.push(b'\n');
    }
    stderr.extend_from_slice(note.as_bytes());
    stderr.push(b'\n');
}

fn signal_note(signal: &str, message: &str) -> String {
    let mut note = format!("converge: the remote command was killed by signal SIG{signal}");
    if !message.is_empty() {
        note.push_str(" (");
        note.push_str(message);
        note.push(')');
    }
    note
}

/// How often to ask a silent server for a sign of life, and how long its silence is
/// borne while a command runs: the ssh config's `ServerAliveInterval` and
/// `ServerAliveInterval` × `ServerAliveCountMax` when it sets an interval (as `ssh`
/// gives up), else every 15 s and 45 s.
fn liveness(options: &SshOptions) -> (Duration, Duration) {
    match options.server_alive_interval {
        Some(interval) if !interval.is_zero() => {
            let count = options
                .server_alive_count_max
                .unwrap_or(DEFAULT_ALIVE_COUNT)
                .max(1);
            (interval, interval * count)
        }
        _ => (KEEPALIVE_INTERVAL, KEEPALIVE_INTERVAL * DEFAULT_ALIVE_COUNT),
    }
}

/// Opens the TCP connection to `target`, as a socket for a session.
fn open_tcp(target: &Target) -> Result<OwnedFd, TransportError> {
    let connect_error = |source: io::Error| TransportError::Connect {
        address: target.address.clone(),
        port: target.port,
        source,
    };
    let timeout = target
        .ssh
        .connect_timeout
        .filter(|timeout| !timeout.is_zero())
        .unwrap_or(CONNECT_TIMEOUT);
    let tcp = dial(&target.address, target.port, timeout).map_err(connect_error)?;
    tcp.set_nodelay(true).map_err(connect_error)?;
    Ok(OwnedFd::from(tcp))
}

/// Runs the SSH handshake over `stream`, verifies the host key and logs in; returns the
/// session and a second handle on its socket.
fn establish(target: &Target, stream: OwnedFd) -> Result<(Session, OwnedFd), TransportError> {
    let handshake_error = |message: String| TransportError::Handshake {
        address: target.address.clone(),
        port: target.port,
        message,
    };
    let socket = stream
        .try_clone()
        .map_err(|source| TransportError::Connect {
            address: target.address.clone(),
            port: target.port,
            source,
        })?;
    let mut session = Session::new()
        .map_err(|e| handshake_error(format!("cannot start libssh2: {}", e.message())))?;
    session.set_timeout(LOGIN_TIMEOUT_MS);
    if target.host_key_checking != HostKeyChecking::Off {
        prefer_known_key_types(&session, target)?;
    }
    session.set_tcp_stream(stream);
    session.handshake().map_err(|e| {
        if e.code() == ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) {
            handshake_error(format!(
                "no SSH answer within {} s ({})",
                LOGIN_TIMEOUT_MS / 1000,
                e.message()
            ))
        } else {
            handshake_error(e.message().to_owned())
        }
    })?;
    verify_host_key(&session, target)?;
    authenticate(&session, target)?;
    Ok((session, socket))
}

/// Connects to the first address of `address` that answers within `timeout`.
fn dial(address: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let candidates: Vec<SocketAddr> = (address, port).to_socket_addrs()?.collect();
    let mut failures = Vec::new();
    let mut last_kind = io::ErrorKind::NotFound;
    for candidate in &candidates {
        match TcpStream::connect_timeout(candidate, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                last_kind = e.kind();
                let reason = if e.kind() == io::ErrorKind::TimedOut {
                    format!("no answer within {} s", timeout.as_secs())
                } else {
                    e.to_string()
                };
                failures.push((candidate, reason));
            }
        }
    }
    let message = match failures.as_slice() {
        [] => "the name resolves to no address".to_owned(),
        [(_, reason)] => reason.clone(),
        several => several
            .iter()
            .map(|(candidate, reason)| format!("{candidate}: {reason}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Err(io::Error::new(last_kind, message))
}

// ---------------------------------------------------------------------------------------
// Host keys

/// `~/.ssh/known_hosts`, from `$HOME`.
fn known_hosts_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(&home).join(".ssh").join("known_hosts"))
}

/// The `known_hosts` files for `target`: its `UserKnownHostsFile`s, else
/// `~/.ssh/known_hosts`.
fn known_hosts_files(target: &Target) -> Result<Vec<PathBuf>, String> {
    match &target.ssh.known_hosts_files {
        Some(files) => Ok(files.clone()),
        None => known_hosts_path()
            .map(|path| vec![path])
            .ok_or_else(|| "HOME is not set, so ~/.ssh/known_hosts cannot be found".to_owned()),
    }
}

/// What every `known_hosts` file says about the server's key `blob`.
fn all_findings(
    session: &Session,
    texts: &[String],
    target: &Target,
    pattern: &str,
    blob: &[u8],
) -> Vec<Finding> {
    texts
        .iter()
        .enumerate()
        .flat_map(|(file, text)| {
            findings(session, text, &target.address, pattern, blob)
                .into_iter()
                .map(move |finding| Finding { file, ..finding })
        })
        .collect()
}

/// The name under which OpenSSH records a host in `known_hosts`.
fn host_pattern(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_owned()
    } else {
        format!("[{address}]:{port}")
    }
}

/// One line of a `known_hosts` file that names some hosts and a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry<'a> {
    /// 1-based line number in the file.
    line: usize,
    /// `@revoked` or `@cert-authority`, if present.
    marker: Option<&'a str>,
    hosts: &'a str,
    key_type: &'a str,
    key: &'a str,
}

impl Entry<'_> {
    fn hashed(&self) -> bool {
        self.hosts.starts_with('|')
    }

    /// The entry without marker or comment, as libssh2 reads it.
    fn bare(&self) -> String {
        format!("{} {} {}", self.hosts, self.key_type, self.key)
    }

    /// Whether the entry can possibly name `address`; a cheap filter before libssh2's
    /// exact check, which is left to decide hashed names and IPv6 spellings.
    fn may_name(&self, address: &str) -> bool {
        self.hashed() || address.contains(':') || self.hosts.contains(address)
    }
}

/// The entries of a `known_hosts` file, skipping blank lines, comments and malformed lines.
fn parse_known_hosts(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().filter_map(|(index, line)| {
        let mut fields = line.split_whitespace();
        let first = fields.next()?;
        if first.starts_with('#') {
            return None;
        }
        let (marker, hosts) = if first.starts_with('@') {
            (Some(first), fields.next()?)
        } else {
            (None, first)
        };
        Some(Entry {
            line: index + 1,
            marker,
            hosts,
            key_type: fields.next()?,
            key: fields.next()?,
        })
    })
}

/// What the `known_hosts` file says about one entry that names the server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    /// Which of the `known_hosts` files, by index.
    file: usize,
    line: usize,
    hashed: bool,
    revoked: bool,
    key_type: String,
    same_key: bool,
}

/// The outcome of checking a presented host key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// An entry holds this very key.
    Known,
    /// No entry names the host.
    Unknown,
    /// An entry names the host with a different key of the same type.
    Changed {
        file: usize,
        line: usize,
        hashed: bool,
    },
    /// Entries name the host, but only with keys of other types, which the server no
    /// longer offers.
    OtherTypes {
        file: usize,
        line: usize,
        key_type: String,
    },
    /// The key is marked `@revoked`.
    Revoked { file: usize, line: usize },
}

fn judge(findings: &[Finding], presented_type: &str) -> Verdict {
    if let Some(f) = findings.iter().find(|f| f.revoked && f.same_key) {
        return Verdict::Revoked {
            file: f.file,
            line: f.line,
        };
    }
    let trusted: Vec<&Finding> = findings.iter().filter(|f| !f.revoked).collect();
    if trusted.iter().any(|f| f.same_key) {
        return Verdict::Known;
    }
    if let Some(f) = trusted.iter().find(|f| f.key_type == presented_type) {
        return Verdict::Changed {
            file: f.file,
            line: f.line,
            hashed: f.hashed,
        };
    }
    match trusted.first() {
        Some(f) => Verdict::OtherTypes {
            file: f.file,
            line: f.line,
            key_type: f.key_type.clone(),
        },
        None => Verdict::Unknown,
    }
}

/// Asks libssh2 whether `entry` names `pattern`, and if so whether it holds `key`.
fn check_entry(session: &Session, entry: &Entry<'_>, pattern: &str, key: &[u8]) -> Option<bool> {
    let mut hosts = session.known_hosts().ok()?;
    // Lines libssh2 cannot parse (key types it does not know, for one) cannot match.
    hosts
        .read_str(&entry.bare(), KnownHostFileKind::OpenSSH)
        .ok()?;
    match hosts.check(pattern, key) {
        CheckResult::Match => Some(true),
        CheckResult::Mismatch => Some(false),
        CheckResult::NotFound | CheckResult::Failure => None,
    }
}

/// The entries of `text` that name the server, checked against `key`.
///
/// A `@revoked` entry counts whatever hosts it names (usually `*`, a pattern libssh2 does
/// not understand): a revoked key is refused everywhere.
fn findings(
    session: &Session,
    text: &str,
    address: &str,
    pattern: &str,
    key: &[u8],
) -> Vec<Finding> {
    let encoded = base64(key, true);
    parse_known_hosts(text)
        .filter_map(|e| {
            let (revoked, same_key) = match e.marker {
                None if e.may_name(address) => (false, check_entry(session, &e, pattern, key)?),
                Some("@revoked") if e.key == encoded => (true, true),
                _ => return None,
            };
            Some(Finding {
                file: 0,
                line: e.line,
                hashed: e.hashed(),
                revoked,
                key_type: e.key_type.to_owned(),
                same_key,
            })
        })
        .collect()
}

/// Reads a `known_hosts` file; a missing file is an empty one.
fn read_known_hosts(path: &Path) -> io::Result<String> {
    match fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Host key algorithms that produce keys of a `known_hosts` key type.
fn algorithms_for_key_type(key_type: &str) -> &[&str] {
    match key_type {
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-dss" => &["ssh-dss"],
        _ => &[],
    }
}

/// Orders `supported` host key algorithms so that those of `known` key types come first,
/// keeping libssh2's order otherwise and leaving out certificates, which are not checked.
fn host_key_preference(supported: &[&str], known: &BTreeSet<String>) -> Vec<String> {
    let wanted: Vec<&str> = known
        .iter()
        .flat_map(|t| algorithms_for_key_type(t).iter().copied())
        .collect();
    let usable = supported.iter().filter(|a| !a.contains("-cert-"));
    let (first, rest): (Vec<&&str>, Vec<&&str>) = usable.partition(|a| wanted.contains(a));
    first
        .into_iter()
        .chain(rest)
        .map(|a| (*a).to_owned())
        .collect()
}

/// Asks the server for a key of a type `known_hosts` already has for it, as OpenSSH does;
/// otherwise libssh2's own preference could pick a type that is not recorded and make a
/// well-known host look changed.
fn prefer_known_key_types(session: &Session, target: &Target) -> Result<(), TransportError> {
    let texts: Vec<String> = known_hosts_files(target)
        .unwrap_or_default()
        .iter()
        .map(|path| read_known_hosts(path).unwrap_or_default())
        .collect();
    let pattern = host_pattern(&target.address, target.port);
    // Any key that no entry can hold: every entry naming the host mismatches it.
    let known: BTreeSet<String> = all_findings(session, &texts, target, &pattern, b"\0")
        .into_iter()
        .filter(|f| !f.revoked)
        .map(|f| f.key_type)
        .collect();
    let Ok(supported) = session.supported_algs(MethodType::HostKey) else {
        return Ok(());
    };
    let preference = host_key_preference(&supported, &known);
    if preference.is_empty() {
        return Ok(());
    }
    session
        .method_pref(MethodType::HostKey, &preference.join(","))
        .map_err(|e| TransportError::Handshake {
            address: target.address.clone(),
            port: target.port,
            message: format!("cannot set the host key algorithms: {}", e.message()),
        })
}

/// The key type named at the start of an SSH public key blob.
fn blob_key_type(blob: &[u8]) -> Option<&str> {
    let length = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?);
    let end = 4usize.checked_add(usize::try_from(length).ok()?)?;
    std::str::from_utf8(blob.get(4..end)?).ok()
}

/// An OpenSSH fingerprint, `SHA256:` and the unpadded base64 of the key blob's digest.
fn fingerprint(sha256: &[u8]) -> String {
    format!("SHA256:{}", base64(sha256, false))
}

/// The line `accept-new` appends to `known_hosts`.
fn known_hosts_line(pattern: &str, key_type: &str, blob: &[u8]) -> String {
    format!("{pattern} {key_type} {}\n", base64(blob, true))
}

/// Standard base64 (RFC 4648), with or without `=` padding.
fn base64(data: &[u8], pad: bool) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let bytes = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let group = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for position in 0..4 {
            if position <= chunk.len() {
                let index = (group >> (18 - 6 * position)) & 0x3f;
                out.push(char::from(ALPHABET[index as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Which entry a message points at.
fn entry_description(line: usize, hashed: bool) -> String {
    if hashed {
        format!("line {line} (a hashed entry)")
    } else {
        format!("line {line}")
    }
}

fn unknown_key_message(path: &Path, pattern: &str, address: &str, port: u16, key: &str) -> String {
    format!(
        "the host key for {pattern} is not in {} (the server presented {key}); add it with \
         `ssh-keyscan -p {port} {address} >> ~/.ssh/known_hosts` after checking the \
         fingerprint, or set `host_key_checking: accept-new`",
        path.display()
    )
}

fn changed_key_message(path: &Path, pattern: &str, key: &str, line: usize, hashed: bool) -> String {
    format!(
        "REMOTE HOST IDENTIFICATION HAS CHANGED: {pattern} presented {key}, which differs \
         from the key recorded at {} of {}; someone may be intercepting the connection, or \
         the host was reinstalled. If the change is expected, remove the old entry with \
         `ssh-keygen -R '{pattern}'` and connect again",
        entry_description(line, hashed),
        path.display()
    )
}

fn other_types_message(
    path: &Path,
    pattern: &str,
    key: &str,
    line: usize,
    known_type: &str,
) -> String {
    format!(
        "Line {line} of {} records a key of type {known_type} for {pattern}, but the server \
         no longer offers that type and presented {key} instead; if the change is expected, \
         remove the old entry with `ssh-keygen -R '{pattern}'` and connect again",
        path.display()
    )
}

/// Checks the server's host key as `target.host_key_checking` asks.
fn verify_host_key(session: &Session, target: &Target) -> Result<(), TransportError> {
    if target.host_key_checking == HostKeyChecking::Off {
        return Ok(());
    }
    let refuse = |message: String| TransportError::HostKey {
        host: target.name.clone(),
        message,
    };
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| refuse("the server presented no host key".to_owned()))?;
    let blob = blob.to_vec();
    let key_type = blob_key_type(&blob)
        .ok_or_else(|| refuse("the server's host key is malformed".to_owned()))?
        .to_owned();
    let digest = session
        .host_key_hash(HashType::Sha256)
        .ok_or_else(|| refuse("libssh2 did not compute the host key's digest".to_owned()))?;
    let presented = format!("{key_type} key {}", fingerprint(digest));
    let paths = known_hosts_files(target).map_err(refuse)?;
    let pattern = host_pattern(&target.address, target.port);

    let _guard = (target.host_key_checking == HostKeyChecking::AcceptNew).then(|| {
        KNOWN_HOSTS_LOCK
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    });
    let texts = paths
        .iter()
        .map(|path| {
            read_known_hosts(path)
                .map_err(|e| refuse(format!("cannot read {}: {e}", path.display())))
        })
        .collect::<Result<Vec<String>, _>>()?;
    let path_of = |file: usize| paths.get(file).map_or(Path::new(""), PathBuf::as_path);
    match judge(
        &all_findings(session, &texts, target, &pattern, &blob),
        &key_type,
    ) {
        Verdict::Known => Ok(()),
        Verdict::Unknown if target.host_key_checking == HostKeyChecking::AcceptNew => {
            // New keys go to the first file; with `UserKnownHostsFile none` there is
            // nowhere to remember them, as with ssh.
            let (Some(path), Some(text)) = (paths.first(), texts.first()) else {
                return Ok(());
            };
            append_known_host(path, text, &known_hosts_line(&pattern, &key_type, &blob))
                .map_err(|e| refuse(format!("cannot add {pattern} to {}: {e}", path.display())))
        }
        Verdict::Unknown => match paths.first() {
            Some(path) => Err(refuse(unknown_key_message(
                path,
                &pattern,
                &target.address,
                target.port,
                &presented,
            ))),
            None => Err(refuse(format!(
                "the host key for {pattern} cannot be checked: the ssh config sets \
                 UserKnownHostsFile none (the server presented {presented})"
            ))),
        },
        Verdict::Changed { file, line, hashed } => Err(refuse(changed_key_message(
            path_of(file),
            &pattern,
            &presented,
            line,
            hashed,
        ))),
        Verdict::OtherTypes {
            file,
            line,
            key_type,
        } => Err(refuse(other_types_message(
            path_of(file),
            &pattern,
            &presented,
            line,
            &key_type,
        ))),
        Verdict::Revoked { file, line } => Err(refuse(format!(
            "{pattern} presented {presented}, which line {line} of {} marks as revoked",
            path_of(file).display()
        ))),
    }
}

/// Appends `line` to the `known_hosts` file at `path`, whose current content is `text`,
/// creating `~/.ssh` (mode 0700) and the file (mode 0600) if needed.
fn append_known_host(path: &Path, text: &str, line: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let mut record = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        record.push('\n');
    }
    record.push_str(line);
    file.write_all(record.as_bytes())
}

// ---------------------------------------------------------------------------------------
// Authentication

/// The key files to offer for `target`, and whether only they may be offered.
fn key_files(target: &Target) -> (Vec<PathBuf>, bool) {
    if let Some(path) = &target.identity_file {
        return (vec![path.clone()], true);
    }
    if !target.ssh.identity_files.is_empty() {
        return (
            target.ssh.identity_files.clone(),
            target.ssh.identities_only,
        );
    }
    let defaults = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| {
            let dir = Path::new(&home).join(".ssh");
            DEFAULT_KEY_FILES
                .iter()
                .map(|name| dir.join(name))
                .collect()
        })
        .unwrap_or_default();
    (defaults, target.ssh.identities_only)
}

/// Logs in as `target.user`: ssh-agent's keys, then the key files (see the module docs).
fn authenticate(session: &Session, target: &Target) -> Result<(), TransportError> {
    let user = target.user.as_str();
    let fail = |message: String| TransportError::Auth {
        user: target.user.clone(),
        host: target.name.clone(),
        message,
    };

    if let Some(path) = &target.identity_file {
        if !path.is_file() {
            return Err(fail(format!(
                "the identity file {} does not exist or is not a file",
                path.display()
            )));
        }
    }

    // Asking for the methods also tries the "none" method, which some servers accept.
    if let Ok(methods) = session.auth_methods(user) {
        if !methods.split(',').any(|m| m == "publickey") {
            return Err(fail(format!(
                "the server does not offer public key authentication (it offers: {methods})"
            )));
        }
    }
    if session.authenticated() {
        return Ok(());
    }

    let (wanted, only) = key_files(target);
    let files: Vec<PathBuf> = wanted
        .iter()
        .filter(|path| path.is_file())
        .cloned()
        .collect();
    let mut tried = Vec::new();
    match try_agent(session, user, &files, only) {
        Ok(()) => return Ok(()),
        Err(reason) => tried.push(format!("ssh-agent ({reason})")),
    }
    for path in &files {
        match try_key_file(session, user, path, &target.ssh.certificate_files) {
            Ok(()) => return Ok(()),
            Err(reason) => tried.push(format!("{} ({reason})", path.display())),
        }
    }
    if files.is_empty() {
        let names: Vec<String> = wanted.iter().map(|p| p.display().to_string()).collect();
        tried.push(if names.is_empty() {
            "no key file ($HOME is not set)".to_owned()
        } else {
            format!("{} (none exists)", names.join(", "))
        });
    }
    Err(fail(format!(
        "no key was accepted; tried {}",
        tried.join("; ")
    )))
}

/// Tries ssh-agent's keys: those of `files` first (by their `.pub` files), then, unless
/// `only`, every other key it holds.
fn try_agent(session: &Session, user: &str, files: &[PathBuf], only: bool) -> Result<(), String> {
    if std::env::var_os("SSH_AUTH_SOCK").is_none_or(|s| s.is_empty()) {
        return Err("SSH_AUTH_SOCK is not set".to_owned());
    }
    let mut agent = session
        .agent()
        .map_err(|e| format!("unavailable: {}", e.message()))?;
    agent
        .connect()
        .map_err(|e| format!("cannot connect: {}", e.message()))?;
    let wanted: Vec<Vec<u8>> = files.iter().filter_map(|f| keys::public_blob(f)).collect();
    let result = agent
        .list_identities()
        .and_then(|()| agent.identities())
        .map_err(|e| format!("cannot list keys: {}", e.message()))
        .and_then(|identities| {
            let (mine, others): (Vec<_>, Vec<_>) = identities
                .into_iter()
                .partition(|identity| wanted.iter().any(|blob| blob == identity.blob()));
            let candidates: Vec<_> = if only {
                mine
            } else {
                mine.into_iter().chain(others).collect()
            };
            if candidates.is_empty() {
                return Err(if only {
                    "it holds none of the configured keys".to_owned()
                } else {
                    "it holds no keys".to_owned()
                });
            }
            let count = candidates.len();
            for identity in &candidates {
                if agent.userauth(user, identity).is_ok() {
                    return Ok(());
                }
            }
            Err(format!("none of its {count} usable keys was accepted"))
        });
    // Only the connection to the agent is closed here; the session stays logged in.
    let _ = agent.disconnect();
    result
}

/// Tries one private key file: with its certificates first, then alone. An encrypted key
/// gets its passphrase from [`keys::passphrase`], asked again after a wrong one.
fn try_key_file(
    session: &Session,
    user: &str,
    path: &Path,
    extra_certificates: &[PathBuf],
) -> Result<(), String> {
    let protection = keys::protection(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut certificates: Vec<PathBuf> = Vec::new();
    let mut own = path.as_os_str().to_owned();
    own.push("-cert.pub");
    let own = PathBuf::from(own);
    if own.is_file() {
        certificates.push(own);
    }
    certificates.extend(extra_certificates.iter().filter(|c| c.is_file()).cloned());
    let attempts: Vec<Option<&Path>> = certificates
        .iter()
        .map(|c| Some(c.as_path()))
        .chain([None])
        .collect();

    let mut passphrase: Option<String> = None;
    let mut rejected: Option<String> = None;
    for _ in 0..PASSPHRASE_ATTEMPTS {
        if protection == Protection::Encrypted {
            passphrase = Some(
                keys::passphrase(path, rejected.as_deref())
                    .map_err(|reason| reason.explain(path))?,
            );
        }
        let mut last = String::new();
        let mut wrong_passphrase = false;
        for certificate in &attempts {
            match session.userauth_pubkey_file(user, *certificate, path, passphrase.as_deref()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    wrong_passphrase = protection == Protection::Encrypted
                        && e.code() == ErrorCode::Session(LIBSSH2_ERROR_FILE);
                    last = match certificate {
                        Some(c) => format!("with {}: {}", c.display(), e.message()),
                        None => e.message().to_owned(),
                    };
                    if wrong_passphrase {
                        break;
                    }
                }
            }
        }
        if !wrong_passphrase {
            return Err(last);
        }
        rejected = passphrase.take();
    }
    Err(format!(
        "the passphrase was wrong {PASSPHRASE_ATTEMPTS} times"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
            ("fooba", "Zm9vYmE=", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ];
        for (input, padded, unpadded) in cases {
            assert_eq!(base64(input.as_bytes(), true), padded, "{input:?}");
            assert_eq!(base64(input.as_bytes(), false), unpadded, "{input:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf], true), "+/+/");
    }

    #[test]
    fn fingerprint_is_openssh_style() {
        let digest: Vec<u8> = (0u8..32).collect();
        assert_eq!(
            fingerprint(&digest),
            "SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
        );
        assert!(!fingerprint(&digest).ends_with('='));
    }

    #[test]
    fn host_patterns_follow_openssh() {
        assert_eq!(host_pattern("10.0.0.1", 22), "10.0.0.1");
        assert_eq!(host_pattern("web1.example", 2222), "[web1.example]:2222");
        assert_eq!(host_pattern("::1", 2200), "[::1]:2200");
    }

    #[test]
    fn known_hosts_line_holds_pattern_type_and_padded_key() {
        let blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20abcdefghijklmnopqrstuvwxyz012345";
        assert_eq!(
            known_hosts_line("[h]:2222", "ssh-ed25519", blob),
            format!("[h]:2222 ssh-ed25519 {}\n", base64(blob, true))
        );
        assert_eq!(blob_key_type(blob), Some("ssh-ed25519"));
        assert_eq!(blob_key_type(b"\0\0\0\x09short"), None);
        assert_eq!(blob_key_type(b"\0\0"), None);
        assert_eq!(blob_key_type(b""), None);
    }

    #[test]
    fn known_hosts_parsing_keeps_line_numbers_and_markers() {
        let text = "# comment\n\
                    \n\
                    web1,10.0.0.1 ssh-ed25519 AAAA1 a comment\n\
                    |1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAA2\n\
                    @revoked bad ssh-rsa AAAA3\n\
                    broken-line ssh-rsa\n\
                    \t[web2]:2222 ssh-rsa AAAA4";
        let entries: Vec<Entry<'_>> = parse_known_hosts(text).collect();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].line, 3);
        assert_eq!(entries[0].hosts, "web1,10.0.0.1");
        assert!(!entries[0].hashed());
        assert_eq!(entries[0].bare(), "web1,10.0.0.1 ssh-ed25519 AAAA1");
        assert_eq!(entries[1].line, 4);
        assert!(entries[1].hashed());
        assert_eq!(entries[1].key_type, "ecdsa-sha2-nistp256");
        assert_eq!(entries[2].marker, Some("@revoked"));
        assert_eq!(entries[2].hosts, "bad");
        assert_eq!(entries[3].line, 7);
        assert_eq!(entries[3].hosts, "[web2]:2222");
        assert!(entries[0].may_name("10.0.0.1"));
        assert!(!entries[0].may_name("10.0.0.2"));
        assert!(entries[1].may_name("10.0.0.2"));
    }

    #[test]
    fn findings_follow_openssh_host_matching() {
        let session = Session::new().expect("libssh2 session");
        let key: Vec<u8> = b"\0\0\0\x0bssh-ed25519\0\0\0\x20"
            .iter()
            .copied()
            .chain(0u8..32)
            .collect();
        let encoded = base64(&key, true);
        assert_eq!(
            encoded,
            "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
        );
        let other = "AAAAC3NzaC1lZDI1NTE5AAAAIP8BAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
        // Written by `ssh-keygen -H` for [10.0.0.1]:2222 and the key above.
        let hashed = format!(
            "|1|6SJHRxTeP2l1DshLg0bJNTJadbA=|PR/XF4MvMtZ95aCQIN1tso2ouEk= ssh-ed25519 {encoded}"
        );
        let text = format!(
            "10.0.0.1 ssh-ed25519 {other}\n\
             web,[10.0.0.1]:2222 ssh-ed25519 {encoded}\n\
             [10.0.0.1]:2200 ssh-ed25519 {other}\n\
             {hashed}\n\
             @cert-authority * ssh-ed25519 {encoded}\n\
             unparsable-by-libssh2 sk-ssh-ed25519@openssh.com AAAA\n"
        );
        let port_2222 = findings(&session, &text, "10.0.0.1", "[10.0.0.1]:2222", &key);
        let lines: Vec<(usize, bool, bool)> = port_2222
            .iter()
            .map(|f| (f.line, f.hashed, f.same_key))
            .collect();
        assert_eq!(lines, [(2, false, true), (4, true, true)]);

        let port_22 = findings(&session, &text, "10.0.0.1", "10.0.0.1", &key);
        assert_eq!(port_22.len(), 1);
        assert_eq!((port_22[0].line, port_22[0].same_key), (1, false));
        assert_eq!(
            judge(&port_22, "ssh-ed25519"),
            Verdict::Changed {
                file: 0,
                line: 1,
                hashed: false
            }
        );

        let none = findings(&session, &text, "10.0.0.9", "[10.0.0.9]:2222", &key);
        assert!(none.is_empty());

        let revoked = format!("{text}@revoked * ssh-ed25519 {encoded}\n");
        let found = findings(&session, &revoked, "10.0.0.9", "10.0.0.9", &key);
        assert_eq!(
            judge(&found, "ssh-ed25519"),
            Verdict::Revoked { file: 0, line: 7 }
        );
    }

    fn finding(line: usize, key_type: &str, same_key: bool) -> Finding {
        Finding {
            file: 0,
            line,
            hashed: false,
            revoked: false,
            key_type: key_type.to_owned(),
            same_key,
        }
    }

    #[test]
    fn judging_findings() {
        assert_eq!(judge(&[], "ssh-ed25519"), Verdict::Unknown);
        assert_eq!(
            judge(
                &[
                    finding(1, "ssh-rsa", false),
                    finding(2, "ssh-ed25519", true)
                ],
                "ssh-ed25519"
            ),
            Verdict::Known
        );
        let mut hashed = finding(5, "ssh-ed25519", false);
        hashed.hashed = true;
        assert_eq!(
            judge(&[finding(1, "ssh-rsa", false), hashed], "ssh-ed25519"),
            Verdict::Changed {
                file: 0,
                line: 5,
                hashed: true
            }
        );
        assert_eq!(
            judge(&[finding(3, "ssh-rsa", false)], "ssh-ed25519"),
            Verdict::OtherTypes {
                file: 0,
                line: 3,
                key_type: "ssh-rsa".to_owned()
            }
        );
        let mut revoked = finding(9, "ssh-ed25519", true);
        revoked.revoked = true;
        assert_eq!(
            judge(
                &[finding(1, "ssh-ed25519", true), revoked.clone()],
                "ssh-ed25519"
            ),
            Verdict::Revoked { file: 0, line: 9 }
        );
        revoked.same_key = false;
        assert_eq!(judge(&[revoked], "ssh-ed25519"), Verdict::Unknown);
    }

    #[test]
    fn preference_puts_known_types_first_and_drops_certificates() {
        let supported = [
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            "ssh-ed25519",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
        ];
        let known: BTreeSet<String> = ["ssh-ed25519".to_owned(), "ssh-rsa".to_owned()].into();
        assert_eq!(
            host_key_preference(&supported, &known),
            [
                "ssh-ed25519",
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-rsa",
                "ecdsa-sha2-nistp256"
            ]
        );
        assert_eq!(
            host_key_preference(&supported, &BTreeSet::new())[0],
            "ecdsa-sha2-nistp256"
        );
    }

    #[test]
    fn messages_name_the_entry_and_the_remedy() {
        let path = Path::new("/home/u/.ssh/known_hosts");
        let key = "ssh-ed25519 key SHA256:abc";
        let unknown = unknown_key_message(path, "[10.0.0.1]:2222", "10.0.0.1", 2222, key);
        assert!(unknown.contains("[10.0.0.1]:2222 is not in /home/u/.ssh/known_hosts"));
        assert!(unknown.contains("SHA256:abc"));
        assert!(unknown.contains("ssh-keyscan -p 2222 10.0.0.1 >> ~/.ssh/known_hosts"));
        assert!(unknown.contains("host_key_checking: accept-new"));
        let changed = changed_key_message(path, "web1", key, 4, true);
        assert!(changed.starts_with("REMOTE HOST IDENTIFICATION HAS CHANGED"));
        assert!(changed.contains("line 4 (a hashed entry)"));
        assert!(changed.contains("ssh-keygen -R 'web1'"));
        let plain = changed_key_message(path, "web1", key, 4, false);
        assert!(plain.contains("at line 4 of /home/u/.ssh/known_hosts"));
        let other = other_types_message(path, "web1", key, 2, "ssh-rsa");
        assert!(other.starts_with("Line 2 of"), "{other}");
    }

    #[test]
    fn liveness_follows_server_alive_settings() {
        let mut options = SshOptions::default();
        assert_eq!(
            liveness(&options),
            (KEEPALIVE_INTERVAL, Duration::from_secs(45))
        );
        options.server_alive_interval = Some(Duration::from_secs(5));
        assert_eq!(
            liveness(&options),
            (Duration::from_secs(5), Duration::from_secs(15))
        );
        options.server_alive_count_max = Some(10);
        assert_eq!(liveness(&options).1, Duration::from_secs(50));
        // `ServerAliveCountMax 0` would give up at once; one unanswered ask is the least.
        options.server_alive_count_max = Some(0);
        assert_eq!(liveness(&options).1, Duration::from_secs(5));
        // `ServerAliveInterval 0` is ssh's "off": converge keeps its own keepalives.
        options.server_alive_interval = Some(Duration::ZERO);
        assert_eq!(
            liveness(&options),
            (KEEPALIVE_INTERVAL, Duration::from_secs(45))
        );
    }

    #[test]
    fn notes_start_on_a_new_line() {
        let mut stderr = b"partial".to_vec();
        append_note(&mut stderr, &signal_note("KILL", ""));
        assert_eq!(
            stderr,
            b"partial\nconverge: the remote command was killed by signal SIGKILL\n"
        );
        assert_eq!(
            signal_note("TERM", "bye"),
            "converge: the remote command was killed by signal SIGTERM (bye)"
        );
    }
}
