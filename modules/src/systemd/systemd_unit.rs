//! `systemd_unit`: a unit file plus the unit's enablement and run state, in the system
//! manager or in one user's manager.
//!
//! System units live in `/etc/systemd/system/NAME` (root, 0644); user units in
//! `~USER/.config/systemd/user/NAME`, owned by the user, with missing directories
//! created for them. When the file changes, the right manager is reloaded, and a unit
//! that was running is restarted so it runs what the file now says.

use serde::{Deserialize, Serialize};

use crate::change::{Attributes, Change, FileWrite, UnitAction};
use crate::fact::{FactKey, FactStore, Manager, PathKind, UnitRef, UnitState};
use crate::paths::PathChange;
use crate::paths::PathKey;
use crate::service::{
    plan_manager, plan_run_state, unit_facts, unit_ref, validate_scope, RunState,
};
use crate::settle::{Probe, Verify};
use crate::systemd::SystemdChange;
use crate::systemd::SystemdKey;
use crate::unit_lint::{self, Candidate, Verdict};
use crate::{content_sources, names, Module, ParamError, Plan, PlanError, Scope};

/// Parameters of the `systemd_unit` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdUnit {
    /// Full unit name, e.g. `sidekiq.service`.
    pub name: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub src: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub state: Option<UnitFileState>,
    /// Seconds a unit this task starts or restarts must stay up (0: off).
    #[serde(default)]
    pub settle: Option<u32>,
    /// A health check run on the host once the unit has settled.
    #[serde(default)]
    pub probe: Option<Probe>,
    /// Journal lines shown when the unit fails to start or settle.
    #[serde(default)]
    pub journal_lines: Option<u32>,
}

/// `state` of a `systemd_unit`: the unit's run state, or `absent`: the unit stopped,
/// disabled and its file removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnitFileState {
    Started,
    Stopped,
    /// Restart now (always a change).
    Restarted,
    /// Reload now, or start when not running (always a change).
    Reloaded,
    Absent,
}

impl UnitFileState {
    /// The run state asked for, if any.
    fn run(self) -> Option<RunState> {
        match self {
            UnitFileState::Started => Some(RunState::Started),
            UnitFileState::Stopped => Some(RunState::Stopped),
            UnitFileState::Restarted => Some(RunState::Restarted),
            UnitFileState::Reloaded => Some(RunState::Reloaded),
            UnitFileState::Absent => None,
        }
    }
}

impl SystemdUnit {
    fn absent(&self) -> bool {
        self.state == Some(UnitFileState::Absent)
    }

    fn run_state(&self) -> Option<RunState> {
        self.state.and_then(UnitFileState::run)
    }

    /// Stops and disables the unit if its file exists, removes the file, and reloads
    /// the manager. Nothing to do when the file is not there (nor its user).
    fn plan_absent(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let unit = unit_ref(self.name.clone(), self.scope, self.user.as_ref());
        if let Manager::User(user) = &unit.manager {
            if facts.user(user)?.is_none() {
                return Ok(Plan::default());
            }
        }
        let mut plan = Plan::default();
        let state = plan_manager(&unit, facts, &mut plan)?;
        let path = format!(
            "{}/{}",
            unit_dir(&unit.manager, facts).unwrap_or_default(),
            self.name
        );
        let removes = match facts.path(&path)?.kind {
            PathKind::Missing => false,
            PathKind::File => true,
            kind => {
                return Err(PlanError::WrongKind {
                    path,
                    kind,
                    expected: "regular file",
                })
            }
        };
        if !removes && !state.need_daemon_reload {
            return Ok(Plan::default());
        }
        // The reload that follows is the one the removal needs anyway.
        let action = |action| {
            Change::Systemd(SystemdChange::Unit {
                unit: unit.clone(),
                action,
                reload_follows: action == UnitAction::Disable,
                verify: None,
            })
        };
        if removes {
            if state.is_active() {
                plan.changes.push(action(UnitAction::Stop));
            }
            if state.is_enabled() {
                plan.changes.push(action(UnitAction::Disable));
            }
            plan.changes.push(Change::Paths(PathChange::Remove {
                path,
                kind: PathKind::File,
            }));
        }
        plan.changes
            .push(Change::Systemd(SystemdChange::DaemonReload {
                manager: unit.manager.clone(),
                unit: Some(unit.name.clone()),
                removed: removes,
            }));
        Ok(plan)
    }

    /// The unit file to verify before it is installed at `path` (a template cannot be
    /// verified as such: only its instances can).
    fn candidate(&self, unit: &UnitRef, path: String) -> Option<Candidate> {
        let content = self.content.clone()?;
        (!crate::fact::is_template(&self.name)).then(|| Candidate {
            manager: unit.manager.clone(),
            path,
            content,
        })
    }

    /// The checks a new unit file must pass on the host before it replaces `path`:
    /// its programs exist and `systemd-analyze verify` accepts it. An error refuses
    /// the whole task, so the current file stays; warnings go to `plan`.
    fn lint_on_host(
        &self,
        unit: &UnitRef,
        path: &str,
        facts: &FactStore,
        plan: &mut Plan,
    ) -> Result<(), PlanError> {
        let content = self.content.as_deref().unwrap_or_default();
        let mut problems = Vec::new();
        for program in unit_lint::programs(content) {
            // A path converge may not read (a symbolic link on the way, as /bin is on
            // merged-/usr systems) is left to `systemd-analyze verify`.
            let Ok(state) = facts.path(&program) else {
                continue;
            };
            match state.kind {
                // In check mode, a program an earlier planned change may install (a
                // package) is what the task waits on, before anything else is judged.
                PathKind::Missing if !facts.unsettled().is_empty() => {
                    return Err(PlanError::NoProgram { program });
                }
                PathKind::Missing => problems.push(format!(
                    "{program}, which the unit runs, does not exist on the host"
                )),
                PathKind::File if state.mode & 0o111 == 0 => problems.push(format!(
                    "{program}, which the unit runs, is not executable (mode {:04o})",
                    state.mode
                )),
                PathKind::Directory | PathKind::Other => problems.push(format!(
                    "{program}, which the unit runs, is a {}",
                    state.kind
                )),
                _ => {}
            }
        }
        if let Some(candidate) = self.candidate(unit, path.to_owned()) {
            match facts.unit_verify(&candidate)? {
                Verdict::Checked { errors, warnings } => {
                    problems.extend(errors.iter().cloned());
                    plan.warnings.extend(warnings.iter().cloned());
                }
                Verdict::Unavailable => plan.warnings.push(format!(
                    "systemd-analyze is not available on the host: the new {path} was not verified"
                )),
                Verdict::Installed => {}
            }
        }
        plan.warnings
            .extend(unit_lint::lint(content, self.scope, self.enabled).warnings);
        if problems.is_empty() {
            return Ok(());
        }
        Err(PlanError::UnitRefused {
            path: path.to_owned(),
            problems: format!("\n  - {}", problems.join("\n  - ")),
        })
    }
}

impl Module for SystemdUnit {
    const NAME: &'static str = "systemd_unit";

    fn validate(&self) -> Result<(), ParamError> {
        names::unit(&self.name)?;
        validate_scope(self.scope, self.user.as_ref())?;
        let sources = content_sources(
            self.content.as_ref(),
            self.src.as_ref(),
            self.template.as_ref(),
        );
        if self.absent() {
            let given = [
                ("content/src/template", sources > 0),
                ("enabled", self.enabled.is_some()),
                ("settle", self.settle.is_some()),
                ("probe", self.probe.is_some()),
                ("journal_lines", self.journal_lines.is_some()),
            ];
            return match given.into_iter().find(|(_, given)| *given) {
                Some((param, _)) => Err(ParamError::Invalid {
                    param,
                    reason: "makes no sense with state: absent".to_owned(),
                }),
                None => Ok(()),
            };
        }
        if sources != 1 {
            return Err(ParamError::OneOf {
                options: "content, src, template",
            });
        }
        if crate::fact::is_template(&self.name) && (self.enabled.is_some() || self.state.is_some())
        {
            return Err(ParamError::Invalid {
                param: "enabled/state",
                reason: format!(
                    "cannot apply to the template {}: manage an instance of it (e.g. with the service module) instead",
                    self.name
                ),
            });
        }
        crate::settle::validate(self.settle, self.probe.as_ref(), self.journal_lines)?;
        if let Some(content) = &self.content {
            // converge's own lints: an error refuses the task before any host is
            // contacted; warnings are reported by the plan.
            if let Some(error) = unit_lint::lint(content, self.scope, self.enabled)
                .errors
                .into_iter()
                .next()
            {
                return Err(error);
            }
        }
        Ok(())
    }

    fn facts(&self, known: &FactStore) -> Vec<FactKey> {
        let unit = unit_ref(self.name.clone(), self.scope, self.user.as_ref());
        let mut keys = unit_facts(&unit);
        if self.absent() {
            if let Some(dir) = unit_dir(&unit.manager, known) {
                keys.push(PathKey::Path(format!("{dir}/{}", self.name)).into());
            }
            return keys;
        }
        if let Some(dir) = unit_dir(&unit.manager, known) {
            keys.extend(
                config_dirs(&unit.manager, &dir)
                    .into_iter()
                    .map(PathKey::Path)
                    .map(FactKey::from),
            );
            let path = format!("{dir}/{}", self.name);
            keys.push(FactKey::Paths(PathKey::Path(path.clone())));
            keys.push(FactKey::Paths(PathKey::Content(path.clone())));
            if let Some(candidate) = self.candidate(&unit, path) {
                keys.push(FactKey::Systemd(SystemdKey::UnitVerify(candidate)));
            }
        }
        if let Some(content) = &self.content {
            keys.extend(
                unit_lint::programs(content)
                    .into_iter()
                    .map(|path| PathKey::Path(path).into()),
            );
        }
        keys
    }

    fn restarts(&self) -> Option<UnitRef> {
        (self.run_state() == Some(RunState::Restarted))
            .then(|| unit_ref(self.name.clone(), self.scope, self.user.as_ref()))
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        if self.absent() {
            return self.plan_absent(facts);
        }
        let unit = unit_ref(self.name.clone(), self.scope, self.user.as_ref());
        let mut plan = Plan::default();
        let unit_state = plan_manager(&unit, facts, &mut plan)?;
        let manager_steps = std::mem::take(&mut plan.changes);

        let (owner, group) = file_owner(&unit.manager, facts)?;
        let dir = unit_dir(&unit.manager, facts).unwrap_or_default();
        plan_directories(
            config_dirs(&unit.manager, &dir),
            &owner,
            &group,
            facts,
            &mut plan,
        )?;
        let path = format!("{dir}/{}", self.name);
        let content = self.content.clone().unwrap_or_default().into_bytes();
        let file = plan_file(&path, content, owner, group, facts)?;
        if file.changed {
            self.lint_on_host(&unit, &path, facts, &mut plan)?;
        }
        plan.changes.extend(file.change);
        plan.changes.extend(manager_steps);
        let run_state = plan_run_state(
            &unit,
            &unit_state,
            self.enabled,
            self.run_state(),
            file.effective && unit_state.exists(),
            &Verify::from_params(self.settle, self.probe.as_ref(), self.journal_lines),
        )?;
        plan_reload(&unit, &unit_state, file.changed, true, run_state, &mut plan);
        Ok(plan)
    }
}

/// The directory a manager reads its administrator's unit files (and their drop-in
/// directories) from: `/etc/systemd/system`, or `~USER/.config/systemd/user` (`None`
/// while the user's home is not known).
pub(crate) fn unit_dir(manager: &Manager, facts: &FactStore) -> Option<String> {
    match manager {
        Manager::System => Some("/etc/systemd/system".to_owned()),
        Manager::User(user) => {
            let info = facts.user(user).ok()?.as_ref()?;
            Some(format!(
                "{}/.config/systemd/user",
                info.home.trim_end_matches('/')
            ))
        }
    }
}

/// The directories on the way to a user's `dir` that converge creates for the user
/// when they are missing (none for the system manager: its directory is the
/// system's).
pub(crate) fn config_dirs(manager: &Manager, dir: &str) -> Vec<String> {
    match manager {
        Manager::System => Vec::new(),
        Manager::User(_) => {
            let config = dir.trim_end_matches("/systemd/user");
            vec![
                config.to_owned(),
                format!("{config}/systemd"),
                dir.to_owned(),
            ]
        }
    }
}

/// Who owns the unit files of `manager`: root, or the user and their primary group.
pub(crate) fn file_owner(
    manager: &Manager,
    facts: &FactStore,
) -> Result<(String, String), PlanError> {
    match manager {
        Manager::System => Ok(("root".to_owned(), "root".to_owned())),
        Manager::User(user) => {
            let info = facts
                .user(user)?
                .as_ref()
                .ok_or_else(|| PlanError::NoSuchUser {
                    user: user.clone(),
                    hint: crate::CREATE_IT_FIRST,
                })?;
            Ok((user.clone(), info.primary_group.clone()))
        }
    }
}

/// Creates each of `dirs` that is missing (0755, owned by `owner` and `group`); anything
/// but a directory in their place is refused.
pub(crate) fn plan_directories(
    dirs: Vec<String>,
    owner: &str,
    group: &str,
    facts: &FactStore,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    for path in dirs {
        match facts.path(&path)?.kind {
            PathKind::Directory => {}
            PathKind::Missing => {
                plan.changes
                    .push(Change::Paths(PathChange::CreateDirectory {
                        path,
                        attributes: Attributes {
                            owner: Some(owner.to_owned()),
                            group: Some(group.to_owned()),
                            mode: Some(0o755),
                        },
                    }));
            }
            kind => {
                return Err(PlanError::WrongKind {
                    path,
                    kind,
                    expected: "directory",
                })
            }
        }
    }
    Ok(())
}

/// What a unit file (or drop-in) task does to its file.
pub(crate) struct FileStep {
    /// The write, or the owner/group/mode repair, if any.
    pub change: Option<Change>,
    /// The file's content changes.
    pub changed: bool,
    /// It changes in something systemd sees (comments, blank lines and key order are
    /// not worth a restart).
    pub effective: bool,
}

/// Plans `path` to hold `content`, owned by `owner` and `group`, mode 0644, written
/// through the safe atomic write path.
pub(crate) fn plan_file(
    path: &str,
    content: Vec<u8>,
    owner: String,
    group: String,
    facts: &FactStore,
) -> Result<FileStep, PlanError> {
    let state = facts.path(path)?;
    match state.kind {
        PathKind::Missing | PathKind::File => {}
        kind => {
            return Err(PlanError::WrongKind {
                path: path.to_owned(),
                kind,
                expected: "regular file",
            })
        }
    }
    let current = facts.content(path)?;
    let changed = current.as_deref() != Some(content.as_slice());
    let effective = changed
        && current
            .as_deref()
            .is_none_or(|old| unit_lint::effectively_differ(old, &content));
    let attributes = Attributes {
        owner: Some(owner),
        group: Some(group),
        mode: Some(0o644),
    };
    let change = if changed {
        Some(Change::Paths(PathChange::WriteFile(FileWrite {
            path: path.to_owned(),
            content,
            before: current.clone(),
            owner: attributes.owner,
            group: attributes.group,
            mode: 0o644,
            validator: None,
            secret: false,
        })))
    } else {
        attributes.differing_from(state).map(|differing| {
            Change::Paths(PathChange::SetAttributes {
                path: path.to_owned(),
                attributes: differing,
            })
        })
    };
    Ok(FileStep {
        change,
        changed,
        effective,
    })
}

/// Adds to `plan` the daemon-reload a changed file (or a reload the manager is owed)
/// needs, and the unit's `run_state` changes after it. Check mode predicts the unit
/// loaded after the reload when its own file was written, or it was loaded already. An enable or disable goes
/// before the reload and skips its own: `systemctl enable` reloads the manager by
/// itself, and one reload then sees the new file and the new links together.
pub(crate) fn plan_reload(
    unit: &UnitRef,
    unit_state: &UnitState,
    file_changed: bool,
    writes_unit_file: bool,
    mut run_state: Vec<Change>,
    plan: &mut Plan,
) {
    if file_changed || unit_state.need_daemon_reload {
        for change in &mut run_state {
            if let Change::Systemd(SystemdChange::Unit {
                action: UnitAction::Enable | UnitAction::Disable,
                reload_follows,
                ..
            }) = change
            {
                *reload_follows = true;
                plan.changes.push(change.clone());
            }
        }
        run_state.retain(|change| {
            !matches!(
                change,
                Change::Systemd(SystemdChange::Unit {
                    reload_follows: true,
                    ..
                })
            )
        });
        plan.changes
            .push(Change::Systemd(SystemdChange::DaemonReload {
                manager: unit.manager.clone(),
                unit: (writes_unit_file || unit_state.exists()).then(|| unit.name.clone()),
                removed: false,
            }));
    }
    plan.changes.extend(run_state);
}

#[cfg(test)]
pub(crate) mod tests;
