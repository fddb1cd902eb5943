//! Several commands sent as one: a host's changes cost one round trip, not one each.
//!
//! [`sequence`] joins commands into one `sh` script that runs them in order and stops at
//! the first that fails, exiting with its status. Before each command the script writes
//! a marker carrying the host's nonce to stdout and to stderr, so [`split`] can hand
//! every command that ran its own output and status back: a failure reads exactly as it
//! would have if that command had been sent alone.
//!
//! The script travels on stdin, not on the command line (an SSH exec request has a size
//! limit, about 32 KiB with libssh2, that a play with many files exceeds), followed by
//! every command's own stdin, in order. Each command that takes input gets exactly its
//! own bytes: `head -c` reads no further than it is told, and whatever the command
//! leaves unread is drained before the next one starts, so no command can eat another's
//! input or see it shifted. The others read `/dev/null`.

use std::fmt::Write as _;

use crate::change::Cmd;
use crate::shell;

/// What one command of a sequence printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The name a sequence's shell runs under (its `$0`), which marks it in a command line.
pub const RUNNER_NAME: &str = "converge-changes";

/// How many bytes of a [`sequence`]'s stdin are its script, from its argv; `None` for
/// any other command.
pub fn script_length(argv: &[String]) -> Option<usize> {
    match argv {
        [sh, c, runner, name] if sh == "sh" && c == "-c" && name == RUNNER_NAME => runner
            .strip_prefix("eval \"$(head -c ")?
            .strip_suffix(")\"")?
            .parse()
            .ok(),
        _ => None,
    }
}

/// One command that runs `commands` in order and stops at the first that fails.
pub fn sequence(commands: &[Cmd], nonce: &str) -> Cmd {
    let mut script = String::new();
    let mut inputs = Vec::new();
    for (index, command) in commands.iter().enumerate() {
        let mark = shell::quote(&marker(nonce, index)).into_owned();
        let _ = writeln!(script, "printf %s {mark}; printf %s {mark} >&2");
        let line = shell::join(&command.argv);
        if command.stdin.is_empty() {
            let _ = writeln!(script, "{line} </dev/null || exit $?");
        } else {
            // The pipe's reader drains what the command left, so `head` always hands
            // over all of its bytes and the next input starts where it should.
            let _ = writeln!(
                script,
                "head -c {} | {{ {line}; converge_status=$?; cat >/dev/null; exit $converge_status; }} || exit $?",
                command.stdin.len()
            );
            inputs.extend_from_slice(&command.stdin);
        }
    }
    let runner = format!("eval \"$(head -c {})\"", script.len());
    let mut stdin = script.into_bytes();
    stdin.extend_from_slice(&inputs);
    Cmd {
        argv: ["sh", "-c", runner.as_str(), RUNNER_NAME]
            .map(str::to_owned)
            .to_vec(),
        stdin,
    }
}

fn marker(nonce: &str, index: usize) -> String {
    format!("::converge:{nonce}:step:{index}::\n")
}

/// Gives each command of a [`sequence`] of `count` commands that ran its own output and
/// status, from what the whole sequence printed and its exit `status`. A command that
/// did not start is not listed, so the last entry is the one that failed, if any. When
/// nothing started (the shell, or `sudo` before it, failed), the whole output is the
/// first command's.
pub fn split(
    count: usize,
    nonce: &str,
    status: i32,
    stdout: &[u8],
    stderr: &[u8],
) -> Vec<StepOutput> {
    let out_parts = parts(count, nonce, stdout);
    let err_parts = parts(count, nonce, stderr);
    let started = out_parts.len();
    if started == 0 {
        return vec![StepOutput {
            status,
            stdout: stdout.to_vec(),
            stderr: stderr.to_vec(),
        }];
    }
    let mut steps: Vec<StepOutput> = out_parts
        .iter()
        .enumerate()
        .map(|(index, out)| StepOutput {
            status: 0,
            stdout: out.to_vec(),
            stderr: err_parts
                .get(index)
                .map(|err| err.to_vec())
                .unwrap_or_default(),
        })
        .collect();
    if status != 0 {
        steps[started - 1].status = status;
    } else if started < count {
        // Success without every command run: the script was cut short, which only an
        // outside force does. The next command counts as failed, never as done.
        steps.push(StepOutput {
            status: -1,
            stdout: Vec::new(),
            stderr: b"the command sequence ended before this command ran".to_vec(),
        });
    }
    steps
}

/// The output after each of the markers `0..count` that are present, in order.
fn parts<'a>(count: usize, nonce: &str, output: &'a [u8]) -> Vec<&'a [u8]> {
    let mut starts = Vec::new();
    let mut from = 0;
    for index in 0..count {
        let mark = marker(nonce, index);
        let Some(at) = find(&output[from..], mark.as_bytes()) else {
            break;
        };
        let start = from + at;
        starts.push((start, start + mark.len()));
        from = start + mark.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(index, &(_, body))| {
            let end = starts
                .get(index + 1)
                .map_or(output.len(), |&(next, _)| next);
            &output[body..end]
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &Cmd) -> (i32, Vec<u8>, Vec<u8>) {
        let mut child = std::process::Command::new(&script.argv[0])
            .args(&script.argv[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, &script.stdin).unwrap();
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            output.stdout,
            output.stderr,
        )
    }

    fn run(commands: &[Cmd]) -> Vec<StepOutput> {
        let (status, stdout, stderr) = sh(&sequence(commands, "n0nce"));
        split(commands.len(), "n0nce", status, &stdout, &stderr)
    }

    fn step(status: i32, stdout: &str, stderr: &str) -> StepOutput {
        StepOutput {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn each_command_gets_its_own_output_and_the_one_with_stdin_gets_it() {
        let commands = [
            Cmd::argv(["sh", "-c", "echo one; echo warn >&2"]),
            Cmd {
                argv: vec!["cat".to_owned()],
                stdin: b"input\nwithout newline".to_vec(),
            },
            Cmd::argv(["sh", "-c", "cat; printf 'no newline'"]),
        ];
        assert_eq!(
            run(&commands),
            [
                step(0, "one\n", "warn\n"),
                step(0, "input\nwithout newline", ""),
                step(0, "no newline", ""),
            ]
        );
    }

    #[test]
    fn the_first_failure_stops_the_sequence_with_its_status_and_stderr() {
        let commands = [
            Cmd::argv(["true"]),
            Cmd::argv(["sh", "-c", "echo broken >&2; exit 65"]),
            Cmd::argv(["touch", "/nonexistent-dir/never-made"]),
        ];
        assert_eq!(run(&commands), [step(0, "", ""), step(65, "", "broken\n")]);
    }

    #[test]
    fn arguments_arrive_unchanged() {
        let hostile = "a'b\"c $(touch /tmp/x) `id` ; | & \\ \n *";
        let commands = [Cmd::script("printf %s \"$1\"", [hostile])];
        assert_eq!(run(&commands), [step(0, hostile, "")]);
    }

    #[test]
    fn a_failure_before_any_command_belongs_to_the_first() {
        assert_eq!(
            split(3, "n0nce", 1, b"", b"sudo: a password is required\n"),
            [step(1, "", "sudo: a password is required\n")]
        );
    }

    #[test]
    fn a_sequence_cut_short_without_an_error_fails_the_next_command() {
        let stdout = marker("n0nce", 0);
        let steps = split(2, "n0nce", 0, stdout.as_bytes(), b"");
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].status, 0);
        assert_eq!(steps[1].status, -1);
    }

    #[test]
    fn a_forged_marker_without_the_nonce_is_output() {
        let commands = [
            Cmd::argv(["printf", "%s", "::converge:other:step:1::\n"]),
            Cmd::argv(["true"]),
        ];
        assert_eq!(
            run(&commands),
            [step(0, "::converge:other:step:1::\n", ""), step(0, "", "")]
        );
    }

    #[test]
    fn every_command_with_input_gets_exactly_its_own_bytes_whatever_it_reads() {
        let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let commands = [
            Cmd {
                argv: vec!["cat".to_owned()],
                stdin: b"first".to_vec(),
            },
            // Reads nothing of its input: the rest must not reach the next command.
            Cmd {
                argv: vec!["true".to_owned()],
                stdin: b"never read".to_vec(),
            },
            Cmd {
                argv: vec!["sh".to_owned(), "-c".to_owned(), "head -c 3".to_owned()],
                stdin: b"abcdef".to_vec(),
            },
            Cmd::argv(["sh", "-c", "cat; printf plain"]),
            Cmd {
                argv: vec!["cat".to_owned()],
                stdin: binary.clone(),
            },
        ];
        let steps = run(&commands);
        assert_eq!(
            steps[..4],
            [
                step(0, "first", ""),
                step(0, "", ""),
                step(0, "abc", ""),
                step(0, "plain", ""),
            ]
        );
        assert_eq!(steps[4].stdout, binary);
        assert_eq!(steps.len(), 5);
    }

    #[test]
    fn input_cut_short_reaches_the_command_short() {
        let commands = [Cmd {
            argv: vec!["wc".to_owned(), "-c".to_owned()],
            stdin: b"0123456789".to_vec(),
        }];
        let mut cut = sequence(&commands, "n0nce");
        cut.stdin.truncate(cut.stdin.len() - 4);
        let (status, stdout, stderr) = sh(&cut);
        let steps = split(1, "n0nce", status, &stdout, &stderr);
        assert_eq!(String::from_utf8_lossy(&steps[0].stdout).trim(), "6");
    }
}
