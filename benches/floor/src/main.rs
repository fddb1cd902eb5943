//! The floor for converge's benchmark: what reading every host's state costs when
//! nothing else is done.
//!
//! For every `ADDRESS:PORT` given, all at once on one thread each: open a TCP
//! connection, do the SSH handshake with libssh2 (the `ssh2` crate, as converge does),
//! log in as root with the key file, run one command and read its output. No host key
//! check, no inventory, no playbook, no planning. Prints one line per host that failed
//! and a summary line; exits 1 if any host failed.
//!
//! ```text
//! converge-floor --key KEY --command CMD ADDRESS:PORT...
//! ```

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

/// Why one host could not be read.
#[derive(Debug)]
enum FloorError {
    Io(std::io::Error),
    Ssh(ssh2::Error),
    Status(i32),
}

impl std::fmt::Display for FloorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FloorError::Io(error) => write!(f, "{error}"),
            FloorError::Ssh(error) => write!(f, "{error}"),
            FloorError::Status(status) => write!(f, "command exited with status {status}"),
        }
    }
}

impl From<std::io::Error> for FloorError {
    fn from(error: std::io::Error) -> Self {
        FloorError::Io(error)
    }
}

impl From<ssh2::Error> for FloorError {
    fn from(error: ssh2::Error) -> Self {
        FloorError::Ssh(error)
    }
}

/// What the command line asks for.
struct Args {
    key: PathBuf,
    command: String,
    targets: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut key = None;
    let mut command = None;
    let mut targets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--key" => key = args.next().map(PathBuf::from),
            "--command" => command = args.next(),
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ => targets.push(arg),
        }
    }
    match (key, command) {
        (Some(key), Some(command)) if !targets.is_empty() => Ok(Args {
            key,
            command,
            targets,
        }),
        _ => Err("usage: converge-floor --key KEY --command CMD ADDRESS:PORT...".to_owned()),
    }
}

/// Logs in to `target` and runs `command`; returns the size of its output.
fn read_host(target: &str, key: &Path, command: &str) -> Result<usize, FloorError> {
    let tcp = TcpStream::connect(target)?;
    tcp.set_nodelay(true)?;
    let mut session = ssh2::Session::new()?;
    session.set_tcp_stream(tcp);
    session.handshake()?;
    session.userauth_pubkey_file("root", None, key, None)?;
    let mut channel = session.channel_session()?;
    channel.exec(command)?;
    let mut output = Vec::new();
    channel.read_to_end(&mut output)?;
    channel.wait_close()?;
    match channel.exit_status()? {
        0 => Ok(output.len()),
        status => Err(FloorError::Status(status)),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let results: Vec<Result<usize, FloorError>> = thread::scope(|scope| {
        let workers: Vec<_> = args
            .targets
            .iter()
            .map(|target| scope.spawn(|| read_host(target, &args.key, &args.command)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a host thread panicked"))
            .collect()
    });
    let mut failed = 0;
    for (target, result) in args.targets.iter().zip(&results) {
        if let Err(error) = result {
            failed += 1;
            eprintln!("{target}: {error}");
        }
    }
    println!(
        "{} host(s) read, {failed} failed, in {:.3} s",
        args.targets.len(),
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
