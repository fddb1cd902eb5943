//! Commands on channels: stdin, stdout and stderr moved concurrently, keepalives while a
//! command is silent, the output limit, and what a failed command leaves behind.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::net::{recv, RecvFlags};
use ssh2::{BlockDirections, Channel, ErrorCode, Stream};

use super::{
    Failure, SshTransport, CHUNK, CLOSE_TIMEOUT_MS, DEFAULT_ALIVE_COUNT, KEEPALIVE_INTERVAL,
    LIBSSH2_ERROR_EAGAIN, READ_BURST, SEND_BACKOFF,
};
use crate::transport::{Output, SshOptions, TransportError};

impl SshTransport {
    /// Opens a channel, runs the command on it and collects what it returned. With
    /// `ready`, stdin stays open, and a command that says `ready` is returned with its
    /// channel, still running.
    pub(super) fn run_command(
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
    pub(super) fn failed(&mut self, failure: Failure) -> TransportError {
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

pub(super) fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// Appends a line to captured stderr, starting a new line if needed.
pub(super) fn append_note(stderr: &mut Vec<u8>, note: &str) {
    if !stderr.is_empty() && !stderr.ends_with(b"\n") {
        stderr.push(b'\n');
    }
    stderr.extend_from_slice(note.as_bytes());
    stderr.push(b'\n');
}

pub(super) fn signal_note(signal: &str, message: &str) -> String {
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
pub(super) fn liveness(options: &SshOptions) -> (Duration, Duration) {
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
