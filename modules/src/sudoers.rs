//! `sudoers`: a file in `/etc/sudoers.d`, validated by `visudo` on the host before it
//! replaces the old one.
//!
//! Three ways to say what it holds: literal `content` (or `src`/`template`); `commands`
//! a user or group may run; or `units` and `verbs`, which generate the exact
//! `systemctl` rules a deploy tool runs (`quiet` is `kill -s TSTP`). The file is always
//! root:root 0440. A name sudo would silently skip (containing `.` or ending in `~`) is
//! refused, and content `visudo -cf` rejects is never put in place.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::change::{Attributes, Change, FileWrite, Validator};
use crate::fact::{FactKey, FactStore, PathKind};
use crate::{content_sources, names, Module, ParamError, Plan, PlanError, Presence};

/// The verbs the `units` form can grant.
pub const VERBS: &[&str] = &["start", "stop", "restart", "reload", "status", "quiet"];

/// Where the generated rules point; `/bin` is `/usr/bin` on merged-/usr systems and sudo
/// matches the two by inode.
const SYSTEMCTL: &str = "/bin/systemctl";

/// Parameters of the `sudoers` module.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sudoers {
    /// File name in /etc/sudoers.d.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbs: Option<Vec<String>>,
    #[serde(default = "nopasswd_by_default")]
    pub nopasswd: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// The commands the generated form allows, one per line in the file.
    fn allowed_commands(&self) -> Vec<String> {
        if let Some(commands) = &self.commands {
            return commands.clone();
        }
        let mut allowed = Vec::new();
        for unit in self.units.iter().flatten() {
            let mut spellings = vec![unit.clone()];
            if let Some(bare) = unit.strip_suffix(".service") {
                // `systemctl restart sidekiq` and `... sidekiq.service` are different
                // command lines to sudo: allow both.
                spellings.insert(0, bare.to_owned());
            }
            for verb in self.verbs.iter().flatten() {
                for spelling in &spellings {
                    let spelling = escape_argument(spelling);
                    allowed.push(if verb == "quiet" {
                        format!("{SYSTEMCTL} kill -s TSTP {spelling}")
                    } else {
                        format!("{SYSTEMCTL} {verb} {spelling}")
                    });
                }
            }
        }
        allowed
    }

    /// The file content this task wants.
    pub fn rendered(&self) -> String {
        if let Some(content) = &self.content {
            return content.clone();
        }
        let runas = self
            .runas
            .clone()
            .unwrap_or_else(|| if self.units.is_some() { "root" } else { "ALL" }.to_owned());
        let tag = if self.nopasswd { "NOPASSWD: " } else { "" };
        let mut text = String::from("# Managed by converge; changes made here will be reverted.\n");
        for command in self.allowed_commands() {
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
            {
                return Err(ParamError::Invalid {
                    param: "content",
                    reason: "is the whole file; user, group, verbs and runas belong to the commands and units forms".to_owned(),
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
            }
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
        vec![FactKey::Path(self.path()), FactKey::Content(self.path())]
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let path = self.path();
        let state = facts.path(&path)?;
        if self.state == Presence::Absent {
            return Ok(Plan::of(match state.kind {
                PathKind::Missing => vec![],
                kind => vec![Change::Remove { path, kind }],
            }));
        }
        if !matches!(state.kind, PathKind::Missing | PathKind::File) {
            return Err(PlanError::WrongKind {
                path,
                kind: state.kind,
                expected: "regular file",
            });
        }
        let content = self.rendered().into_bytes();
        let current = facts.content(&path)?;
        let wanted = Attributes {
            owner: Some("root".to_owned()),
            group: Some("root".to_owned()),
            mode: Some(0o440),
        };
        if current.as_deref() != Some(content.as_slice()) {
            return Ok(Plan::of(vec![Change::WriteFile(FileWrite {
                path,
                content,
                before: current.clone(),
                owner: wanted.owner,
                group: wanted.group,
                mode: 0o440,
                validator: Some(Validator::Sudoers),
                secret: false,
            })]));
        }
        Ok(Plan::of(
            wanted
                .differing_from(state)
                .map(|attributes| Change::SetAttributes { path, attributes })
                .into_iter()
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units_form() -> Sudoers {
        Sudoers {
            name: "sidekiq".into(),
            content: None,
            src: None,
            template: None,
            user: Some("deploy".into()),
            group: None,
            commands: None,
            units: Some(vec!["sidekiq.service".into()]),
            verbs: Some(vec!["restart".into(), "quiet".into()]),
            nopasswd: true,
            runas: None,
            state: Presence::Present,
        }
    }

    #[test]
    fn units_form_generates_exact_rules() {
        assert_eq!(units_form().validate(), Ok(()));
        assert_eq!(
            units_form().rendered(),
            "# Managed by converge; changes made here will be reverted.\n\
             deploy ALL=(root) NOPASSWD: /bin/systemctl restart sidekiq\n\
             deploy ALL=(root) NOPASSWD: /bin/systemctl restart sidekiq.service\n\
             deploy ALL=(root) NOPASSWD: /bin/systemctl kill -s TSTP sidekiq\n\
             deploy ALL=(root) NOPASSWD: /bin/systemctl kill -s TSTP sidekiq.service\n"
        );
    }

    #[test]
    fn commands_form_for_a_group() {
        let sudoers = Sudoers {
            user: None,
            group: Some("deploy".into()),
            units: None,
            verbs: None,
            commands: Some(vec!["/bin/systemctl restart sidekiq".into()]),
            nopasswd: false,
            ..units_form()
        };
        assert_eq!(sudoers.validate(), Ok(()));
        assert!(sudoers
            .rendered()
            .ends_with("%deploy ALL=(ALL) /bin/systemctl restart sidekiq\n"));
    }

    #[test]
    fn names_sudo_would_skip_are_refused() {
        for name in ["sidekiq.conf", "sidekiq~"] {
            let sudoers = Sudoers {
                name: name.into(),
                ..units_form()
            };
            assert!(sudoers.validate().is_err(), "{name}");
        }
    }

    #[test]
    fn unknown_verb_is_refused_with_the_allowed_list() {
        let sudoers = Sudoers {
            verbs: Some(vec!["reboot".into()]),
            ..units_form()
        };
        assert_eq!(
            sudoers.validate().unwrap_err().to_string(),
            "`verbs` has \"reboot\"; allowed: start, stop, restart, reload, status, quiet"
        );
    }

    #[test]
    fn relative_command_is_refused() {
        let sudoers = Sudoers {
            units: None,
            verbs: None,
            commands: Some(vec!["systemctl restart x".into()]),
            ..units_form()
        };
        assert!(sudoers.validate().is_err());
    }

    #[test]
    fn sudoers_special_characters_are_escaped() {
        assert_eq!(escape_argument("a:b,c=d\\e"), "a\\:b\\,c\\=d\\\\e");
    }
}
