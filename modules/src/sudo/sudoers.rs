//! `sudoers`: a file in `/etc/sudoers.d`, validated by `visudo` on the host before it
//! replaces the old one.
//!
//! Three ways to say what it holds: literal `content` (or `src`/`template`); `commands`
//! a user or group may run; or `units` and `verbs`, which generate the exact
//! `systemctl` rules a deploy tool runs (`quiet` is `kill -s TSTP`). The file is always
//! root:root 0440. A name sudo would silently skip (containing `.` or ending in `~`) is
//! refused, and content `visudo -cf` rejects is never put in place.
//!
//! A `commands` entry grants exactly what it shows: one program named by its absolute
//! path, never a directory (`/usr/bin/` grants every program in it), never a wildcard
//! in the program; wildcards (and sudo's `^...$` regular expressions) in arguments only
//! with `allow_wildcards: true`. Rules for a user are proven with `sudo -l` right after
//! they are written; when sudo refuses one, the previous file is put back byte for
//! byte (or the new one removed) and the task fails with what sudo grants.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::change::{Attributes, Change, FileWrite, Validator};
use crate::fact::{FactKey, FactStore, PathKind};
use crate::paths::PathChange;
use crate::paths::PathKey;
use crate::sudo::SudoChange;
use crate::sudo::SudoKey;
use crate::{content_sources, names, Module, ParamError, Plan, PlanError, Presence};

/// The verbs the `units` form can grant.
pub const VERBS: &[&str] = &["start", "stop", "restart", "reload", "status", "quiet"];

/// Where the generated rules point; `/bin` is `/usr/bin` on merged-/usr systems and sudo
/// matches the two by inode.
/// Where rules point when the host's `systemctl` is not known.
const SYSTEMCTL: &str = "/bin/systemctl";

/// Parameters of the `sudoers` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sudoers {
    /// File name in /etc/sudoers.d.
    pub name: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub src: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub commands: Option<Vec<String>>,
    #[serde(default)]
    pub units: Option<Vec<String>>,
    #[serde(default)]
    pub verbs: Option<Vec<String>>,
    /// Lets `commands` use sudo wildcards (`*`, `?`, `[...]`) and regular expressions
    /// (`^...$`) in their arguments; never in the program path.
    #[serde(default)]
    pub allow_wildcards: bool,
    #[serde(default = "nopasswd_by_default")]
    pub nopasswd: bool,
    #[serde(default)]
    pub runas: Option<String>,
    #[serde(default)]
    pub state: Presence,
}

fn nopasswd_by_default() -> bool {
    true
}

/// Escapes the characters sudoers gives a meaning to inside command arguments.
fn escape_argument(argument: &str) -> String {
    let mut escaped = String::with_capacity(argument.len());
    for ch in argument.chars() {
        if matches!(ch, ',' | ':' | '=' | '\\') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}

/// Why a `commands` entry would mean more to sudo than the one command it shows, if it
/// would: an unescaped `,` starts another command, `:` another rule (`/bin/ls : ALL=(ALL)
/// ALL` grants everything), `#` a comment that cuts the arguments off (widening the rule
/// to any arguments), and a trailing `\` joins the next rule onto this one.
fn unescaped_syntax(command: &str) -> Option<String> {
    let mut chars = command.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if chars.next().is_none() => {
                return Some(
                    "ends in a lone `\\`, which would join the next rule onto it".to_owned(),
                )
            }
            ',' | ':' | '#' => {
                let meaning = match ch {
                    ',' => "another command",
                    ':' => "another rule",
                    _ => "a comment",
                };
                return Some(format!(
                    "has an unescaped `{ch}`, which sudo reads as the start of {meaning}; write it as `\\{ch}`"
                ));
            }
            _ => {}
        }
    }
    None
}

/// Splits a `commands` entry at its first unescaped blank: the program, then the
/// arguments (escapes kept).
fn split_program(command: &str) -> (&str, &str) {
    let mut escaped = false;
    for (at, ch) in command.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ' ' | '\t' => return (&command[..at], command[at..].trim_start()),
            _ => {}
        }
    }
    (command, "")
}

/// The sudo wildcard in `text`, if it has one.
fn wildcard(text: &str) -> Option<char> {
    text.chars().find(|ch| matches!(ch, '*' | '?' | '['))
}

/// Why a `commands` entry would grant more than the one program it names, if it
/// would: see the module documentation.
fn too_wide(command: &str, allow_wildcards: bool) -> Option<String> {
    let (program, arguments) = split_program(command);
    if let Some(ch) = wildcard(program) {
        return Some(format!(
            "has a sudo wildcard (`{ch}`) in its program path, which would let the user run every program it matches; name one program by its full path (allow_wildcards never applies to the program)"
        ));
    }
    if program.ends_with('/') {
        return Some(format!(
            "names the directory {program}, which sudo reads as every program in it; name one program, e.g. {program}NAME"
        ));
    }
    if allow_wildcards {
        return None;
    }
    if arguments
        .split([' ', '\t'])
        .any(|word| word.len() > 1 && word.starts_with('^') && word.ends_with('$'))
    {
        return Some(
            "has a sudo regular expression (`^...$`) in its arguments, which matches more than it shows; list each exact command line, or set allow_wildcards: true if it is meant".to_owned(),
        );
    }
    if let Some(ch) = wildcard(arguments) {
        return Some(format!(
            "has a sudo wildcard (`{ch}`) in its arguments, which matches more than it shows (`*` matches `/`, `..` and spaces: `/bin/cat /var/log/app/*` also allows `/bin/cat /var/log/app/../../../etc/shadow`); list each exact command line, or set allow_wildcards: true if the wildcard is meant"
        ));
    }
    None
}

/// Proves with `sudo -l` that user `$1` may run, as `$2`, each command in `$5...`,
/// right after sudoers file `$3` was written. On the first refusal: notes what `sudo -l
/// -U` lists for the user (the lines from "User ... may run" or "User ... is not
/// allowed" on), puts the previous file back from stdin when `$4` is 1 (through a
/// temporary file sudo ignores, then a rename) or removes the new one when `$4` is 0,
/// and fails saying all of it.
pub(crate) const VERIFY_SUDO: &str = concat!(
    r#"user=$1 runas=$2 path=$3 had=$4; shift 4
"#,
    crate::sudo::facts::SUDO_ALLOWS!(),
    r#"for command in "$@"; do
  if converge_allows "$command"; then
    continue
  fi
  grants=$("$converge_sudo" -n -l -U "$user" 2>&1 | sed -n '/^User /,$p')
  if [ "$had" = 1 ]; then
    tmp=$(mktemp "${path%/*}/.converge.XXXXXXXX") || exit 1
    if cat > "$tmp" && chown root:root "$tmp" && chmod 0440 "$tmp" && mv -f "$tmp" "$path"; then
      undone="the previous $path was put back"
    else
      rm -f "$tmp"
      undone="putting the previous $path back FAILED"
    fi
  elif rm -f -- "$path"; then
    undone="$path was removed (there was none before)"
  else
    undone="removing $path FAILED"
  fi
  printf 'sudo refuses to let %s run `%s` as %s; %s. sudo -l -U %s lists:
%s
'     "$user" "$converge_refused" "$runas" "$undone" "$user" "${grants:-(nothing)}" >&2
  exit 1
done"#
);

/// The rules of a file, as `sudo -l -U` can be asked about them.
struct Verification<'a> {
    user: &'a str,
    runas: String,
    commands: Vec<String>,
}

impl Verification<'_> {
    fn fact(&self) -> FactKey {
        FactKey::Sudo(SudoKey::Refused {
            user: self.user.to_owned(),
            runas: self.runas.clone(),
            commands: self.commands.clone(),
        })
    }

    /// The proof after writing `path`, which held `before` (`None`: nothing).
    fn change(&self, path: &str, before: Option<Vec<u8>>) -> Change {
        Change::Sudo(SudoChange::Verify {
            user: self.user.to_owned(),
            runas: self.runas.clone(),
            commands: self.commands.clone(),
            path: path.to_owned(),
            before,
        })
    }
}

/// Undoes sudoers' backslash escapes, giving the command line a user would type.
fn unescape(command: &str) -> String {
    let mut plain = String::with_capacity(command.len());
    let mut chars = command.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(next) = chars.next() {
                plain.push(next);
            }
        } else {
            plain.push(ch);
        }
    }
    plain
}

impl Sudoers {
    /// The path of the managed file.
    pub fn path(&self) -> String {
        format!("/etc/sudoers.d/{}", self.name)
    }

    fn principal(&self) -> String {
        match (&self.user, &self.group) {
            (Some(user), _) => user.clone(),
            (None, Some(group)) => format!("%{group}"),
            (None, None) => String::new(),
        }
    }

    /// The command lines the generated forms allow, as sudoers syntax (one rule each),
    /// with units' commands for each of the host's `systemctl` paths.
    fn allowed_commands(&self, systemctl: &[&str]) -> Vec<String> {
        if let Some(commands) = &self.commands {
            return commands.clone();
        }
        self.unit_commands(systemctl)
            .iter()
            .map(|words| {
                let (program, arguments) = words.split_first().expect("a command has a program");
                let mut line = program.clone();
                for argument in arguments {
                    line.push(' ');
                    line.push_str(&escape_argument(argument));
                }
                line
            })
            .collect()
    }

    /// The `units` form's commands, as words, once for each `systemctl` path: sudo-rs
    /// matches a command by its path, so on a host with a merged `/usr` both
    /// `/bin/systemctl` and `/usr/bin/systemctl` are named.
    fn unit_commands(&self, systemctl: &[&str]) -> Vec<Vec<String>> {
        let mut commands = Vec::new();
        for unit in self.units.iter().flatten() {
            let mut spellings = vec![unit.clone()];
            if let Some(bare) = unit.strip_suffix(".service") {
                // `systemctl restart sidekiq` and `... sidekiq.service` are different
                // command lines to sudo: allow both.
                spellings.insert(0, bare.to_owned());
            }
            for verb in self.verbs.iter().flatten() {
                for spelling in &spellings {
                    let forms: &[&[&str]] = if verb == "quiet" {
                        // Deploy tools send TSTP to the whole unit; converge's own
                        // `service` signal goes to the main process only.
                        &[
                            &["kill", "-s", "TSTP"],
                            &["kill", "--kill-who=main", "-s", "TSTP"],
                        ]
                    } else {
                        &[&[verb.as_str()]]
                    };
                    for program in systemctl {
                        for form in forms {
                            let mut words = vec![(*program).to_owned()];
                            words.extend(form.iter().map(|word| (*word).to_owned()));
                            words.push(spelling.clone());
                            commands.push(words);
                        }
                    }
                }
            }
        }
        commands
    }

    /// The user the rules let commands run as (`ALL`: anyone).
    fn runas(&self) -> String {
        self.runas
            .clone()
            .unwrap_or_else(|| if self.units.is_some() { "root" } else { "ALL" }.to_owned())
    }

    /// What can be proven with `sudo -l -U`: the user, the target user to ask about
    /// (root for `ALL`) and the command lines; `None` for literal content and for group
    /// rules (no user to ask for).
    fn verifiable(&self) -> Option<Verification<'_>> {
        if self.state == Presence::Absent {
            return None;
        }
        let user = self.user.as_deref()?;
        let commands = if let Some(commands) = &self.commands {
            commands.iter().map(|command| unescape(command)).collect()
        } else {
            self.units.as_ref()?;
            // A bare `systemctl` stands for every one the host has (`SUDO_CHECK`).
            self.unit_commands(&["systemctl"])
                .iter()
                .map(|words| words.join(" "))
                .collect()
        };
        let runas = match self.runas() {
            all if all == "ALL" => "root".to_owned(),
            runas => runas,
        };
        Some(Verification {
            user,
            runas,
            commands,
        })
    }

    /// The file content this task wants.
    pub fn rendered(&self, systemctl: &[&str]) -> String {
        if let Some(content) = &self.content {
            return content.clone();
        }
        let runas = self.runas();
        let tag = if self.nopasswd { "NOPASSWD: " } else { "" };
        let mut text = String::from("# Managed by converge; changes made here will be reverted.\n");
        for command in self.allowed_commands(systemctl) {
            let _ = writeln!(text, "{} ALL=({runas}) {tag}{command}", self.principal());
        }
        text
    }
}

impl Module for Sudoers {
    const NAME: &'static str = "sudoers";

    fn validate(&self) -> Result<(), ParamError> {
        names::sudoers_file(&self.name)?;
        let literal = content_sources(
            self.content.as_ref(),
            self.src.as_ref(),
            self.template.as_ref(),
        );
        let generated = self.commands.is_some() || self.units.is_some();
        if self.state == Presence::Absent {
            return Ok(());
        }
        if literal > 1 || (literal == 1 && generated) {
            return Err(ParamError::OneOf {
                options: "content, src, template, commands, units",
            });
        }
        if literal == 1 {
            if self.user.is_some()
                || self.group.is_some()
                || self.verbs.is_some()
                || self.runas.is_some()
                || self.allow_wildcards
            {
                return Err(ParamError::Invalid {
                    param: "content",
                    reason: "is the whole file; user, group, verbs, runas and allow_wildcards belong to the commands and units forms".to_owned(),
                });
            }
            return Ok(());
        }
        if !generated {
            return Err(ParamError::OneOf {
                options: "content, src, template, commands, units",
            });
        }
        if self.commands.is_some() && self.units.is_some() {
            return Err(ParamError::AtMostOne {
                options: "commands, units",
            });
        }
        match (&self.user, &self.group) {
            (Some(user), None) => names::user(user)?,
            (None, Some(group)) => names::group(group)?,
            _ => {
                return Err(ParamError::OneOf {
                    options: "user, group",
                })
            }
        }
        if let Some(runas) = &self.runas {
            if runas != "ALL" {
                names::user(runas)?;
            }
        }
        if let Some(commands) = &self.commands {
            if commands.is_empty() {
                return Err(ParamError::Invalid {
                    param: "commands",
                    reason: "is empty".to_owned(),
                });
            }
            for command in commands {
                if !command.starts_with('/') || command.contains('\n') {
                    return Err(ParamError::Invalid {
                        param: "commands",
                        reason: format!("entry {command:?} must be one line starting with an absolute path (sudo requires it)"),
                    });
                }
                if let Some(reason) =
                    unescaped_syntax(command).or_else(|| too_wide(command, self.allow_wildcards))
                {
                    return Err(ParamError::Invalid {
                        param: "commands",
                        reason: format!("entry {command:?} {reason}"),
                    });
                }
            }
        } else if self.allow_wildcards {
            return Err(ParamError::Invalid {
                param: "allow_wildcards",
                reason: "goes with commands".to_owned(),
            });
        }
        if let Some(units) = &self.units {
            if units.is_empty() {
                return Err(ParamError::Invalid {
                    param: "units",
                    reason: "is empty".to_owned(),
                });
            }
            for unit in units {
                names::unit(unit)?;
            }
            let verbs = self.verbs.as_ref().ok_or(ParamError::Required {
                param: "verbs",
                when: "with units",
            })?;
            if verbs.is_empty() {
                return Err(ParamError::Invalid {
                    param: "verbs",
                    reason: "is empty".to_owned(),
                });
            }
            for verb in verbs {
                if !VERBS.contains(&verb.as_str()) {
                    return Err(ParamError::Invalid {
                        param: "verbs",
                        reason: format!("has {verb:?}; allowed: {}", VERBS.join(", ")),
                    });
                }
            }
        } else if self.verbs.is_some() {
            return Err(ParamError::Invalid {
                param: "verbs",
                reason: "goes with units".to_owned(),
            });
        }
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        let mut keys = vec![
            FactKey::System,
            FactKey::Paths(PathKey::Path(self.path())),
            FactKey::Paths(PathKey::Content(self.path())),
        ];
        if let Some(verification) = self.verifiable() {
            keys.push(verification.fact());
        }
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let path = self.path();
        let state = facts.path(&path)?;
        if self.state == Presence::Absent {
            return Ok(Plan::of(match state.kind {
                PathKind::Missing => vec![],
                kind => vec![Change::Paths(PathChange::Remove { path, kind })],
            }));
        }
        if !matches!(state.kind, PathKind::Missing | PathKind::File) {
            return Err(PlanError::WrongKind {
                path,
                kind: state.kind,
                expected: "regular file",
            });
        }
        let system = facts.system()?;
        if system.sudo.is_none() {
            return Err(PlanError::NoSudo { missing: "sudo" });
        }
        if system.visudo.is_none() {
            return Err(PlanError::NoSudo { missing: "visudo" });
        }
        let systemctl: Vec<&str> = if system.systemctl.is_empty() {
            vec![SYSTEMCTL]
        } else {
            system.systemctl.iter().map(String::as_str).collect()
        };
        let content = self.rendered(&systemctl).into_bytes();
        let current = facts.content(&path)?;
        let wanted = Attributes {
            owner: Some("root".to_owned()),
            group: Some("root".to_owned()),
            mode: Some(0o440),
        };
        if current.as_deref() != Some(content.as_slice()) {
            let mut changes = vec![Change::Paths(PathChange::WriteFile(FileWrite {
                path: path.clone(),
                content,
                before: current.clone(),
                owner: wanted.owner,
                group: wanted.group,
                mode: 0o440,
                validator: Some(Validator::Sudoers),
                secret: false,
            }))];
            if let Some(verification) = self.verifiable() {
                changes.push(verification.change(&path, current.clone()));
            }
            return Ok(Plan::of(changes));
        }
        let mut plan = Plan::of(
            wanted
                .differing_from(state)
                .map(|attributes| {
                    Change::Paths(PathChange::SetAttributes {
                        path: path.clone(),
                        attributes,
                    })
                })
                .into_iter()
                .collect(),
        );
        if let Some(Verification {
            user,
            runas,
            commands,
        }) = self.verifiable()
        {
            if let Some(command) = facts.sudo_refused(user, &runas, &commands)? {
                return Err(PlanError::SudoRefuses {
                    user: user.to_owned(),
                    command: command.to_owned(),
                    file: path,
                });
            }
            plan.notes.push(format!(
                "verified with sudo -l: {user} may run all {} commands",
                commands.len()
            ));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests;
