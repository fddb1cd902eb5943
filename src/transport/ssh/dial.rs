//! Reaching the host: the TCP connection (within its timeout, through jump hosts) and the
//! SSH handshake that leads to a checked host key and a login.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::Duration;

use ssh2::{ErrorCode, Session};

use super::auth::authenticate;
use super::known_hosts::{prefer_known_key_types, verify_host_key};
use super::{CONNECT_TIMEOUT, LIBSSH2_ERROR_TIMEOUT, LOGIN_TIMEOUT_MS};
use crate::transport::{HostKeyChecking, Target, TransportError};

/// Opens the TCP connection to `target`, as a socket for a session.
pub(super) fn open_tcp(target: &Target) -> Result<OwnedFd, TransportError> {
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
pub(super) fn establish(
    target: &Target,
    stream: OwnedFd,
) -> Result<(Session, OwnedFd), TransportError> {
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
pub(super) fn dial(address: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
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
