//! The fact a command's guard reads: the exit status of a shell command.

use crate::fact::Fact;
use crate::shell::quote;

pub(crate) fn probe(command: &str) -> String {
    format!(
        "sh -c {} </dev/null >/dev/null 2>&1; echo $?",
        quote(command)
    )
}

pub(crate) fn parse(output: &str) -> Option<Fact> {
    output.trim_end().parse().ok().map(Fact::Probe)
}
