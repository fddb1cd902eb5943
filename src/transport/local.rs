//! Running commands on the machine converge itself runs on.
//!
//! [`LocalTransport`] hands each command line to `sh -c`, the same shell contract the SSH
//! transport offers, so modules cannot tell the two apart. Standard input is written from
//! a separate thread while standard output and standard error are collected, so a command
//! that produces a lot of output before it has read all of its input cannot deadlock the
//! exchange. A command that exits without reading all of its input is not an error: the
//! unread rest is dropped, as a shell pipeline would drop it.

use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::thread;

use super::{Output, Transport, TransportError};

/// Runs commands on this machine with `sh -c`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalTransport {
    _private: (),
}

impl LocalTransport {
    /// A transport for the local machine; it holds no resources.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Transport for LocalTransport {
    fn run(&mut self, command_line: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command_line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let child_stdin = child.stdin.take();

        let (output, fed) = thread::scope(|scope| {
            let feeder = scope.spawn(move || feed(child_stdin, stdin));
            let output = child.wait_with_output();
            (output, feeder.join())
        });
        let output = output?;
        match fed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                return Err(
                    io::Error::other("the thread writing the command's stdin panicked").into(),
                )
            }
        }

        let mut stderr = output.stderr;
        let status = exit_code(output.status, &mut stderr);
        Ok(Output {
            status,
            stdout: output.stdout,
            stderr,
        })
    }
}

/// Writes `data` to the child's stdin and closes it.
fn feed(pipe: Option<ChildStdin>, data: &[u8]) -> io::Result<()> {
    let Some(mut pipe) = pipe else {
        return Ok(());
    };
    match pipe.write_all(data) {
        // The command exited or closed its stdin without reading everything; that is
        // the command's business, and its status tells whether it mattered.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
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
        LocalTransport::new()
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
    fn signal_gives_minus_one_and_a_note() {
        let out = run("echo partial >&2; kill -TERM $$", b"");
        assert_eq!(out.status, -1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("partial\n"), "{stderr}");
        assert!(stderr.contains("killed by signal 15"), "{stderr}");
    }
}
