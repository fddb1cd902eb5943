//! Running commands on the machine converge itself runs on.
//!
//! [`LocalTransport`] hands each command line to `sh -c`, the same shell contract the SSH
//! transport offers, so modules cannot tell the two apart. Standard input is written from
//! a separate thread while standard output and standard error are collected, so a command
//! that produces a lot of output before it has read all of its input cannot deadlock the
//! exchange. A command that exits without reading all of its input is not an error: the
//! unread rest is dropped, as a shell pipeline would drop it. No more than the output
//! limit is read from a command; past it the command is killed and fails.
//!
//! A held command ([`Transport::hold`]) runs in a process group of its own with its stdin
//! open; it ends when converge closes that stdin, or when converge itself ends, however
//! it ends, since the kernel closes the pipe then.

use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread;

use rustix::event::{poll, PollFd, PollFlags};

use super::{Limits, Output, Transport, TransportError};

/// Size of each output read.
const CHUNK: usize = 64 * 1024;

/// Runs commands on this machine with `sh -c`.
#[derive(Debug)]
pub struct LocalTransport {
    /// The inventory name, for messages.
    host: String,
    /// Output bytes read from one command at most.
    max_output: usize,
    /// The held command (see [`Transport::hold`]) and its still open stdin.
    held: Option<(Child, ChildStdin)>,
}

/// Why collecting a command's output stopped early.
enum Collect {
    Io(io::Error),
    TooMuch,
}

impl LocalTransport {
    /// A transport for the local machine, known as `host` in messages.
    pub fn new(host: &str, limits: Limits) -> Self {
        LocalTransport {
            host: host.to_owned(),
            max_output: usize::try_from(limits.max_output).unwrap_or(usize::MAX),
            held: None,
        }
    }

    /// Runs `command_line`; with `ready`, stdin stays open and a command that says
    /// `ready` is returned still running, with its stdin.
    fn execute(
        &self,
        command_line: &str,
        stdin: &[u8],
        ready: Option<&[u8]>,
    ) -> Result<(Output, Option<(Child, ChildStdin)>), TransportError> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(command_line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if ready.is_some() {
            // A process group of its own: the Ctrl-C that asks converge to finish its
            // running tasks must not end a held command (the host's lock) before them.
            command.process_group(0);
        }
        let mut child = command.spawn()?;
        let child_stdin = child.stdin.take();
        let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take())
        else {
            return Err(io::Error::other("the command's output pipes are missing").into());
        };

        let keep_open = ready.is_some();
        let (collected, fed) = thread::scope(|scope| {
            let feeder = scope.spawn(move || feed(child_stdin, stdin, keep_open));
            let collected = collect(&mut stdout, &mut stderr, self.max_output, ready);
            if collected.is_err() {
                // Nothing more is read: end the command, which also ends the feeding.
                let _ = child.kill();
            }
            (collected, feeder.join())
        });
        let pipe = match fed {
            Ok(Ok(pipe)) => pipe,
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.into());
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(
                    io::Error::other("the thread writing the command's stdin panicked").into(),
                );
            }
        };
        let (mut out, mut err) = match collected {
            Ok(streams) => streams,
            Err(collect) => {
                drop(pipe);
                let _ = child.wait();
                return Err(match collect {
                    Collect::Io(e) => e.into(),
                    Collect::TooMuch => TransportError::OutputLimit {
                        host: self.host.clone(),
                        limit: self.max_output as u64,
                    },
                });
            }
        };
        let held = ready.is_some_and(|ready| out.ends_with(ready));
        match pipe {
            Some(pipe) if held => {
                out.truncate(out.len() - ready.map_or(0, <[u8]>::len));
                let output = Output {
                    status: 0,
                    stdout: out,
                    stderr: err,
                };
                return Ok((output, Some((child, pipe))));
            }
            // Closing stdin lets a command that waits for its end finish.
            pipe => drop(pipe),
        }
        let status = child.wait()?;
        let status = exit_code(status, &mut err);
        Ok((
            Output {
                status,
                stdout: out,
                stderr: err,
            },
            None,
        ))
    }
}
impl Transport for LocalTransport {
    fn run(&mut self, command_line: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        Ok(self.execute(command_line, stdin, None)?.0)
    }

    fn hold(
        &mut self,
        command_line: &str,
        stdin: &[u8],
        ready: &[u8],
    ) -> Result<(Output, bool), TransportError> {
        self.release();
        let (output, held) = self.execute(command_line, stdin, Some(ready))?;
        let is_held = held.is_some();
        self.held = held;
        Ok((output, is_held))
    }

    fn release(&mut self) {
        if let Some((mut child, stdin)) = self.held.take() {
            // The held command ends when its stdin does.
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for LocalTransport {
    fn drop(&mut self) {
        self.release();
    }
}

/// Writes `data` to the child's stdin, then closes it, or with `keep_open` hands it
/// back open.
fn feed(pipe: Option<ChildStdin>, data: &[u8], keep_open: bool) -> io::Result<Option<ChildStdin>> {
    let Some(mut pipe) = pipe else {
        return Ok(None);
    };
    match pipe.write_all(data) {
        // The command exited or closed its stdin without reading everything; that is
        // the command's business, and its status tells whether it mattered.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(None),
        Err(e) => Err(e),
        Ok(()) => Ok(keep_open.then_some(pipe)),
    }
}

/// Reads stdout and stderr as they come until both have ended (or stdout ends with
/// `ready`), and no more than one byte past `limit` of them together.
fn collect(
    stdout: &mut ChildStdout,
    stderr: &mut ChildStderr,
    limit: usize,
    ready: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<u8>), Collect> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut open = [true, true];
    let mut buffer = vec![0u8; CHUNK];
    while open[0] || open[1] {
        let readable = {
            let mut fds = Vec::with_capacity(2);
            if open[0] {
                fds.push(PollFd::new(&*stdout, PollFlags::IN));
            }
            if open[1] {
                fds.push(PollFd::new(&*stderr, PollFlags::IN));
            }
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Collect::Io(e.into())),
            }
            let mut seen = fds.iter().map(|fd| !fd.revents().is_empty());
            let first = open[0] && seen.next().unwrap_or(false);
            let second = open[1] && seen.next().unwrap_or(false);
            [first, second]
        };
        for index in 0..2 {
            if !readable[index] {
                continue;
            }
            let room = (limit + 1).saturating_sub(out.len() + err.len());
            let want = buffer.len().min(room.max(1));
            let read = if index == 0 {
                stdout.read(&mut buffer[..want])
            } else {
                stderr.read(&mut buffer[..want])
            };
            match read {
                Ok(0) => open[index] = false,
                Ok(n) if index == 0 => out.extend_from_slice(&buffer[..n]),
                Ok(n) => err.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Collect::Io(e)),
            }
            if out.len() + err.len() > limit {
                return Err(Collect::TooMuch);
            }
            if ready.is_some_and(|ready| out.ends_with(ready)) {
                return Ok((out, err));
            }
        }
    }
    Ok((out, err))
}

/// The exit code, or `-1` with a note appended to `stderr` when a signal ended the command.
fn exit_code(status: ExitStatus, stderr: &mut Vec<u8>) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    if !stderr.is_empty() && !stderr.ends_with(b"\n") {
        stderr.push(b'\n');
    }
    match status.signal() {
        Some(signal) => {
            stderr.extend_from_slice(format!("converge: killed by signal {signal}\n").as_bytes());
        }
        None => stderr.extend_from_slice(b"converge: ended without an exit status\n"),
    }
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(command_line: &str, stdin: &[u8]) -> Output {
        LocalTransport::new("localhost", Limits::default())
            .run(command_line, stdin)
            .expect("local command runs")
    }

    #[test]
    fn collects_status_and_both_streams() {
        let out = run("echo out; echo err >&2; exit 3", b"");
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn feeds_stdin_and_closes_it() {
        let out = run("cat; echo done", b"hello\n");
        assert_eq!(out.status, 0);
        assert_eq!(out.stdout, b"hello\ndone\n");
    }

    #[test]
    fn large_stdin_and_output_do_not_deadlock() {
        let input = vec![b'x'; 8 * 1024 * 1024];
        let out = run("cat; head -c 3000000 /dev/zero >&2", &input);
        assert_eq!(out.status, 0);
        assert_eq!(out.stdout.len(), input.len());
        assert_eq!(out.stderr.len(), 3_000_000);
    }

    #[test]
    fn unread_stdin_is_not_an_error() {
        let input = vec![b'x'; 4 * 1024 * 1024];
        let out = run("exit 0", &input);
        assert_eq!(out.status, 0);
    }

    #[test]
    fn output_past_the_limit_fails_naming_the_limit() {
        let limits = Limits { max_output: 4096 };
        let mut transport = LocalTransport::new("ops1", limits);
        let error = transport
            .run("head -c 1000000 /dev/zero; echo more >&2", b"")
            .unwrap_err();
        assert!(matches!(
            error,
            TransportError::OutputLimit { limit: 4096, .. }
        ));
        assert!(error.to_string().contains("more than 4 KiB"), "{error}");
        assert!(error.to_string().contains("--max-output"), "{error}");
        // Up to the limit is fine, and the transport goes on working.
        let out = transport.run("head -c 4096 /dev/zero", b"").unwrap();
        assert_eq!(out.stdout.len(), 4096);
    }

    #[test]
    fn a_held_command_lives_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("ended");
        let mut transport = LocalTransport::new("ops1", Limits::default());
        let script = format!(
            "read -r word; echo \"got $word\"; echo READY; exec >/dev/null 2>&1; cat; touch {}",
            mark.display()
        );
        let (out, held) = transport.hold(&script, b"hello\n", b"READY\n").unwrap();
        assert!(held);
        assert_eq!(out.stdout, b"got hello\n");
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!mark.exists(), "the held command ended early");
        transport.release();
        assert!(mark.exists(), "release did not wait for the command to end");
        // A command that does not say ready is waited for, with its status.
        let (out, held) = transport.hold("echo no; exit 4", b"", b"READY\n").unwrap();
        assert!(!held);
        assert_eq!(out.status, 4);
    }

    #[test]
    fn signal_gives_minus_one_and_a_note() {
        let out = run("echo partial >&2; kill -TERM $$", b"");
        assert_eq!(out.status, -1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("partial\n"), "{stderr}");
        assert!(stderr.contains("killed by signal 15"), "{stderr}");
    }
}
