//! An emulated network link for converge's benchmark, where the kernel has no `netem`.
//!
//! Packets that iptables sends to an NFQUEUE are held back for a fixed delay each, then
//! accepted in the order they came. benches/bench.py queues every packet in and out of
//! the hosts' end of a veth pair, in a network namespace of its own, with half the
//! round trip as the delay: a request and its answer then take the whole round trip,
//! the TCP handshake included.
//!
//! ```text
//! converge-delay --queue NUM --delay-us MICROSECONDS
//! ```
//!
//! Runs until killed. While packets are held the queue is polled every `POLL`, so a
//! packet may be held up to that much longer than asked.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long the loop sleeps when no packet is due.
const POLL: Duration = Duration::from_micros(200);
/// Packets the kernel may hold for this program before it drops new ones.
const QUEUE_LENGTH: u32 = 65_536;

struct Args {
    queue: u16,
    delay: Duration,
}

fn parse_args() -> Result<Args, String> {
    let usage = "usage: converge-delay --queue NUM --delay-us MICROSECONDS";
    let mut queue = None;
    let mut delay = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| usage.to_owned())?;
        match arg.as_str() {
            "--queue" => queue = Some(value.parse().map_err(|_| format!("bad --queue {value}"))?),
            "--delay-us" => {
                let micros = value
                    .parse()
                    .map_err(|_| format!("bad --delay-us {value}"))?;
                delay = Some(Duration::from_micros(micros));
            }
            _ => return Err(usage.to_owned()),
        }
    }
    match (queue, delay) {
        (Some(queue), Some(delay)) => Ok(Args { queue, delay }),
        _ => Err(usage.to_owned()),
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let mut queue = nfq::Queue::open()?;
    queue.bind(args.queue)?;
    // Only the verdict is sent back: the packets' bytes need not come here at all.
    queue.set_copy_range(args.queue, 0)?;
    queue.set_queue_max_len(args.queue, QUEUE_LENGTH)?;
    queue.set_fail_open(args.queue, false)?;
    queue.set_nonblocking(true);
    println!("ready");
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    loop {
        if held.is_empty() {
            // Nothing to let through: sleep in the kernel until a packet comes.
            queue.set_nonblocking(false);
            let mut message = queue.recv()?;
            message.set_verdict(nfq::Verdict::Accept);
            held.push_back((Instant::now() + args.delay, message));
            queue.set_nonblocking(true);
        }
        loop {
            match queue.recv() {
                Ok(mut message) => {
                    message.set_verdict(nfq::Verdict::Accept);
                    held.push_back((Instant::now() + args.delay, message));
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) => return Err(error),
            }
        }
        // Every packet gets the same delay, so they fall due in the order they came.
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, message) = held.pop_front().expect("a packet is due");
            queue.verdict(message)?;
        }
        let wait = held.front().map_or(POLL, |(due, _)| {
            due.saturating_duration_since(now).min(POLL)
        });
        std::thread::sleep(wait);
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
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("converge-delay: {error}");
            ExitCode::FAILURE
        }
    }
}
