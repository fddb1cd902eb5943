//! Facts about sudo: which of a rule's commands sudo itself would refuse.

use std::fmt;

use serde::Serialize;

use crate::fact::{DomainKey, Fact};
use crate::shell::quote;

/// Asks sudo whether user `$2` may run, as user `$3`, each command in `$4...` (one
/// command line per argument, split into words without globbing): prints
/// `refused:COMMAND` for the first one sudo would refuse, or `allowed`. (`$1` names the
/// probe in `ps`.) After a sudoers file is written, `sudoers::VERIFY_SUDO` asks the
/// same and puts the previous file back on a refusal.
pub(crate) const SUDO_CHECK: &str = concat!(
    r#"user=$2 runas=$3; shift 3
"#,
    SUDO_ALLOWS!(),
    r#"if [ -z "$converge_sudo" ]; then echo nosudo; exit 0; fi
for command in "$@"; do
  if ! converge_allows "$command"; then
    printf 'refused:%s\n' "$converge_refused"
    exit 0
  fi
done
echo allowed"#
);

/// Defines `converge_allows COMMAND`: whether the host's sudo (`sudo`, or `sudo-rs`
/// where only that is installed, in `$converge_sudo`) lets `$user` run the command line
/// as `$runas`, split into words without globbing. A command naming a bare `systemctl`
/// stands for every `systemctl` the host has, each of which must be allowed. The command
/// line refused last is left in `$converge_refused`.
macro_rules! sudo_allows {
    () => {
        r#"set -f
converge_sudo=$(command -v sudo || command -v sudo-rs) || converge_sudo=
converge_allows() {
  converge_refused=$1
  case $1 in
  systemctl\ *)
    for converge_program in /bin/systemctl /usr/bin/systemctl; do
      [ -x "$converge_program" ] || continue
      converge_refused="$converge_program ${1#systemctl }"
      "$converge_sudo" -n -l -U "$user" -u "$runas" -- $converge_refused >/dev/null 2>&1 || return 1
    done ;;
  *) "$converge_sudo" -n -l -U "$user" -u "$runas" -- $1 >/dev/null 2>&1 ;;
  esac
}
"#
    };
}
pub(crate) use sudo_allows as SUDO_ALLOWS;

pub(crate) fn refused_probe(user: &str, runas: &str, commands: &[String]) -> String {
    let mut snippet = format!(
        "sh -c {} converge probe {} {}",
        quote(SUDO_CHECK),
        quote(user),
        quote(runas)
    );
    for command in commands {
        snippet.push(' ');
        snippet.push_str(&quote(command));
    }
    snippet
}

pub(crate) fn parse_refused(output: &str) -> Option<Fact> {
    match output.trim_end() {
        "allowed" => Some(Fact::Sudo(SudoFact::Refused(None))),
        "nosudo" => Some(Fact::Refused(
            "neither sudo nor sudo-rs is installed, so no sudoers rule can apply".to_owned(),
        )),
        line => line
            .strip_prefix("refused:")
            .map(|command| Fact::Sudo(SudoFact::Refused(Some(command.to_owned())))),
    }
}

/// The facts about sudo.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum SudoKey {
    /// The first of these commands sudo would refuse to run for `user` as `runas`
    /// (`sudo -l -U USER -u RUNAS`).
    Refused {
        user: String,
        runas: String,
        commands: Vec<String>,
    },
}

/// The values of [`SudoKey`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SudoFact {
    /// `None`: sudo allows every command.
    Refused(Option<String>),
}

impl fmt::Display for SudoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SudoKey::Refused {
                user,
                runas,
                commands,
            } => write!(
                f,
                "sudo rules for {user} as {runas} ({} commands)",
                commands.len()
            ),
        }
    }
}

impl DomainKey for SudoKey {
    fn probe(&self) -> String {
        match self {
            SudoKey::Refused {
                user,
                runas,
                commands,
            } => refused_probe(user, runas, commands),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            SudoKey::Refused { .. } => parse_refused(output),
        }
    }
}
