//! `converge completions SHELL` and `converge man`: shell completion scripts and the man
//! page, generated from the same clap definition that parses the command line, so they
//! never disagree with it.
//!
//! The command line has a positional PLAYBOOK, so these two words are recognized before
//! normal parsing, and only in exactly these shapes: `converge man` and
//! `converge completions bash|zsh|fish`. A playbook file that happens to be called `man`
//! is still reachable as `./man`.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// What the arguments after the program name ask to generate, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The man page, in roff.
    Man,
    /// A completion script for a shell.
    Completions(Shell),
    /// `converge completions` with a missing or unknown shell.
    UnknownShell,
}

/// The shells `converge completions` supports, as they are spelled on the command line.
const SHELLS: [(&str, Shell); 3] = [
    ("bash", Shell::Bash),
    ("zsh", Shell::Zsh),
    ("fish", Shell::Fish),
];

/// Recognizes `man` and `completions SHELL`; anything else is left to normal parsing.
pub fn request<S: AsRef<str>>(args: &[S]) -> Option<Request> {
    match args {
        [word] if word.as_ref() == "man" => Some(Request::Man),
        [word] if word.as_ref() == "completions" => Some(Request::UnknownShell),
        [word, shell] if word.as_ref() == "completions" => Some(
            SHELLS
                .iter()
                .find(|(name, _)| *name == shell.as_ref())
                .map_or(Request::UnknownShell, |(_, shell)| {
                    Request::Completions(*shell)
                }),
        ),
        _ => None,
    }
}

/// Writes what `request` asks for to `out`; returns the exit status (3 for an unknown
/// shell, as for any invalid command line).
///
/// A failed write (such as a closed pipe) is returned as an error, never a panic.
pub fn write(request: Request, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<u8> {
    let mut command = Cli::command();
    match request {
        Request::Man => {
            clap_mangen::Man::new(command).render(out)?;
            Ok(0)
        }
        Request::Completions(shell) => {
            // clap_complete panics on a failed write (a closed pipe, as with `| head`):
            // generate into memory, then write with errors as errors.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "converge", &mut script);
            out.write_all(&script)?;
            Ok(0)
        }
        Request::UnknownShell => {
            let names: Vec<&str> = SHELLS.iter().map(|(name, _)| *name).collect();
            writeln!(
                err,
                "error: usage: converge completions {}",
                names.join("|")
            )?;
            Ok(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generated(args: &[&str]) -> (u8, String, String) {
        let request = request(args).expect("a generation request");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = write(request, &mut out, &mut err).unwrap();
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn only_exact_shapes_are_requests() {
        assert_eq!(request(&["man"]), Some(Request::Man));
        assert_eq!(
            request(&["completions", "zsh"]),
            Some(Request::Completions(Shell::Zsh))
        );
        assert_eq!(
            request(&["completions", "tcsh"]),
            Some(Request::UnknownShell)
        );
        assert_eq!(request(&["completions"]), Some(Request::UnknownShell));
        assert_eq!(request(&["man", "--check"]), None);
        assert_eq!(request(&["./man"]), None);
        assert_eq!(request(&["site.yml"]), None);
        assert_eq!(request::<&str>(&[]), None);
    }

    #[test]
    fn man_page_documents_every_flag() {
        let (status, page, _) = generated(&["man"]);
        assert_eq!(status, 0);
        assert!(page.starts_with(".ie"), "{page}");
        assert!(page.contains(".TH converge 1"), "{page}");
        for flag in [
            "\\-\\-check",
            "\\-\\-limit",
            "\\-\\-ssh\\-config",
            "PLAYBOOK",
        ] {
            assert!(page.contains(flag), "{flag} missing from the man page");
        }
    }

    #[test]
    fn completions_for_each_shell_name_the_flags() {
        for shell in ["bash", "zsh", "fish"] {
            let (status, script, _) = generated(&["completions", shell]);
            assert_eq!(status, 0);
            assert!(script.contains("converge"), "{shell}");
            assert!(script.contains("ssh-config"), "{shell}: {script}");
        }
    }

    /// A writer whose reader went away, as `converge completions bash | head -1`.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_is_an_error_not_a_panic() {
        for request in [Request::Man, Request::Completions(Shell::Bash)] {
            let error = write(request, &mut ClosedPipe, &mut Vec::new()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
        }
    }

    #[test]
    fn unknown_shell_is_an_input_error() {
        let (status, out, err) = generated(&["completions", "tcsh"]);
        assert_eq!(status, 3);
        assert!(out.is_empty());
        assert_eq!(err, "error: usage: converge completions bash|zsh|fish\n");
    }
}
