//! `ProxyJump`: reaching a host through jump hosts, each hop a `direct-tcpip` channel of
//! the previous hop's SSH session.
//!
//! libssh2 runs a session over a socket it owns, so the next session cannot be handed a
//! channel directly. A [`Relay`] gives it one end of a local socket pair instead, and a
//! thread of its own moves bytes between the other end and the channel. The relay owns
//! the jump host's session, so a chain `A,B` is two relays: B's session runs over A's
//! relay, the target's over B's.
//!
//! Guarantees:
//! - No busy waiting: the relay thread sleeps in `poll(2)` on the two sockets until one of
//!   them can move data. Only while libssh2 holds a packet it could not finish sending
//!   does it wake on a short timer (as the command pump does), because libssh2 can only
//!   finish that packet from inside the call that started it.
//! - At most one chunk is buffered per direction: a slow reader on either side holds the
//!   other side back (through the SSH channel window), memory stays bounded.
//! - Clean shutdown, inside out: when the session above closes its socket, the relay
//!   sends EOF, closes the channel, says goodbye to the jump host (waiting at most
//!   [`CLOSE_TIMEOUT_MS`]) and ends; dropping a [`Relay`] waits for that. When the jump
//!   host or the forwarded connection goes away first, the relay closes its end of the
//!   socket pair, which the session above sees as the server closing the connection.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use ssh2::{BlockDirections, Channel, Session};

/// Size of each read from either side.
const CHUNK: usize = 32 * 1024;
/// libssh2's limit, in milliseconds, for the goodbye messages when a relay ends.
const CLOSE_TIMEOUT_MS: u32 = 3_000;
/// Wake-up interval while libssh2 has a half-sent packet (see the module docs).
const SEND_BACKOFF: Duration = Duration::from_millis(2);
/// A bound on an idle wait; nothing depends on it, it only keeps a wait finite.
const IDLE_WAIT: Duration = Duration::from_secs(60);

/// Why a relay could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The jump host refused or failed to open the `direct-tcpip` channel.
    #[error("{}", .0.message())]
    Channel(#[source] ssh2::Error),
    #[error("cannot create a socket pair: {0}")]
    SocketPair(#[source] io::Error),
    #[error("cannot set up the socket pair: {0}")]
    Nonblocking(#[source] io::Error),
    #[error("cannot start the relay thread: {0}")]
    Thread(#[source] io::Error),
}

/// A running relay between a jump host's `direct-tcpip` channel and a local socket.
pub struct Relay {
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Opens a `direct-tcpip` channel from `session` (logged in to a jump host; `socket`
    /// is a second handle on its connection) to `host:port`, and starts relaying it.
    ///
    /// Returns the relay and the socket to run the next SSH session over. The session
    /// must be in blocking mode with a timeout set; the relay takes it over.
    pub fn open(
        session: Session,
        socket: OwnedFd,
        host: &str,
        port: u16,
        name: &str,
    ) -> Result<(Relay, UnixStream), RelayError> {
        let channel = session
            .channel_direct_tcpip(host, port, None)
            .map_err(RelayError::Channel)?;
        let (next, relayed) = UnixStream::pair().map_err(RelayError::SocketPair)?;
        relayed
            .set_nonblocking(true)
            .map_err(RelayError::Nonblocking)?;
        let thread = thread::Builder::new()
            .name(format!("converge-jump-{name}"))
            .spawn(move || relay(&session, channel, &socket, &relayed))
            .map_err(RelayError::Thread)?;
        Ok((
            Relay {
                thread: Some(thread),
            },
            next,
        ))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // The thread ends once the session above has closed its socket, which its
            // owner does before dropping the relay; its own goodbye is time-limited.
            let _ = thread.join();
        }
    }
}

/// Bytes read from one side and not yet fully written to the other.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    written: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.written >= self.data.len()
    }

    fn rest(&self) -> &[u8] {
        &self.data[self.written..]
    }

    fn fill(&mut self, bytes: &[u8]) {
        self.data.clear();
        self.data.extend_from_slice(bytes);
        self.written = 0;
    }
}

/// The relay thread: moves bytes both ways until the session above closes its socket
/// or the jump connection fails, then closes everything.
fn relay(session: &Session, mut channel: Channel, socket: &OwnedFd, local: &UnixStream) {
    session.set_blocking(false);
    let mut buffer = vec![0u8; CHUNK];
    let mut down = Pending::default(); // channel -> local
    let mut up = Pending::default(); // local -> channel
    let mut channel_eof = false;
    let mut local_eof = false;
    let mut local_shut = false;
    let mut reader = local;
    let mut writer = local;

    loop {
        let mut progress = false;

        if !channel_eof && down.is_empty() {
            match channel.read(&mut buffer) {
                // libssh2 may answer 0 before the end; only the channel's EOF is the end.
                Ok(0) => {
                    if channel.eof() {
                        channel_eof = true;
                        progress = true;
                    }
                }
                Ok(n) => {
                    down.fill(&buffer[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        if !down.is_empty() {
            match writer.write(down.rest()) {
                Ok(n) => {
                    down.written += n;
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        } else if channel_eof && !local_shut {
            // The forwarded connection ended: tell the session above, which will close.
            let _ = local.shutdown(Shutdown::Write);
            local_shut = true;
            progress = true;
        }

        if !local_eof && up.is_empty() {
            match reader.read(&mut buffer) {
                Ok(0) => {
                    local_eof = true;
                    progress = true;
                }
                Ok(n) => {
                    up.fill(&buffer[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    local_eof = true;
                    progress = true;
                }
            }
        }
        if !up.is_empty() {
            match channel.write(up.rest()) {
                Ok(n) => {
                    up.written += n;
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        } else if local_eof {
            // The session above is gone and everything it sent is on its way.
            break;
        }

        if progress {
            continue;
        }

        let send_blocked = matches!(
            session.block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        );
        let mut session_events = PollFlags::empty();
        if (!channel_eof && down.is_empty()) || !up.is_empty() {
            session_events |= PollFlags::IN;
        }
        let mut local_events = PollFlags::empty();
        if !local_eof && up.is_empty() {
            local_events |= PollFlags::IN;
        }
        if !down.is_empty() {
            local_events |= PollFlags::OUT;
        }
        let wait = if send_blocked {
            SEND_BACKOFF
        } else {
            IDLE_WAIT
        };
        let mut fds = [
            PollFd::new(socket, session_events),
            PollFd::new(local, local_events),
        ];
        let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
            tv_sec: 60,
            tv_nsec: 0,
        });
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        // A hung-up or failed jump connection is reported whatever was asked for; with
        // nothing left to read from it, waiting again would return at once, forever.
        let session_revents = fds[0].revents();
        if session_revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
            && session_events.is_empty()
        {
            break;
        }
    }

    session.set_blocking(true);
    session.set_timeout(CLOSE_TIMEOUT_MS);
    // The jump host is going away either way; failed goodbyes change nothing.
    let _ = channel.send_eof();
    let _ = channel.close();
    drop(channel);
    let _ = session.disconnect(None, "converge is done", None);
}
