//! `systemd_dropin`: one drop-in file that overrides settings of a unit, packaged or
//! not, without replacing its file.
//!
//! A system drop-in lives in `/etc/systemd/system/UNIT.d/NAME.conf` (root, 0644); a
//! user's in `~USER/.config/systemd/user/UNIT.d/NAME.conf`, owned by the user. Missing
//! directories are created, and the file is written through the same safe atomic write
//! path as a unit file. When the drop-in is written, changed or removed, the unit's
//! manager is reloaded, and a unit that was running is restarted (at most once per run,
//! whatever else restarts it) so it runs with what the drop-ins now say.

use serde::Deserialize;

use crate::change::Change;
use crate::fact::{FactKey, FactStore, Manager, PathKind, UnitRef};
use crate::paths::{PathChange, PathKey};
use crate::service::{plan_manager, plan_run_state, unit_facts, unit_ref, validate_scope};
use crate::settle::Verify;
use crate::systemd_unit::{
    config_dirs, file_owner, plan_directories, plan_file, plan_reload, unit_dir,
};
use crate::{content_sources, names, Module, ParamError, Plan, PlanError, Presence, Scope};

/// Parameters of the `systemd_dropin` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemdDropin {
    /// The unit the drop-in overrides, e.g. `redis-server.service`.
    pub unit: String,
    /// The drop-in's file name; `.conf` is appended when missing.
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
    pub state: Presence,
}

impl SystemdDropin {
    fn unit(&self) -> UnitRef {
        unit_ref(self.unit.clone(), self.scope, self.user.as_ref())
    }

    /// `UNIT.d` and the drop-in's path in it, once the manager's directory is known.
    fn paths(&self, manager: &Manager, facts: &FactStore) -> Option<(String, String)> {
        let dir = format!("{}/{}.d", unit_dir(manager, facts)?, self.unit);
        let name = names::dropin(&self.name).unwrap_or_else(|_| self.name.clone());
        let path = format!("{dir}/{name}");
        Some((dir, path))
    }
}

impl Module for SystemdDropin {
    const NAME: &'static str = "systemd_dropin";

    fn validate(&self) -> Result<(), ParamError> {
        names::unit(&self.unit)?;
        names::dropin(&self.name)?;
        validate_scope(self.scope, self.user.as_ref())?;
        let sources = content_sources(
            self.content.as_ref(),
            self.src.as_ref(),
            self.template.as_ref(),
        );
        match self.state {
            Presence::Present if sources != 1 => Err(ParamError::OneOf {
                options: "content, src, template",
            }),
            Presence::Absent if sources != 0 => Err(ParamError::Invalid {
                param: "content/src/template",
                reason: "is only for state: present".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn facts(&self, known: &FactStore) -> Vec<FactKey> {
        let unit = self.unit();
        let mut keys = unit_facts(&unit);
        if let Some((dir, path)) = self.paths(&unit.manager, known) {
            if self.state == Presence::Present {
                let parent = dir.rsplit_once('/').map_or("", |(parent, _)| parent);
                keys.extend(
                    config_dirs(&unit.manager, parent)
                        .into_iter()
                        .chain([dir])
                        .map(|dir| PathKey::Path(dir).into()),
                );
                keys.push(PathKey::Content(path.clone()).into());
            }
            keys.push(PathKey::Path(path).into());
        }
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let unit = self.unit();
        let mut plan = Plan::default();
        if let (Presence::Absent, Manager::User(user)) = (self.state, &unit.manager) {
            if facts.user(user)?.is_none() {
                // No user, no drop-in of theirs.
                return Ok(plan);
            }
        }
        let unit_state = plan_manager(&unit, facts, &mut plan)?;
        let manager_steps = std::mem::take(&mut plan.changes);
        let (dir, path) = self.paths(&unit.manager, facts).unwrap_or_default();

        let (changed, effective) = match self.state {
            Presence::Present => {
                let (owner, group) = file_owner(&unit.manager, facts)?;
                let parent = dir.rsplit_once('/').map_or("", |(parent, _)| parent);
                let mut dirs = config_dirs(&unit.manager, parent);
                dirs.push(dir);
                plan_directories(dirs, &owner, &group, facts, &mut plan)?;
                let content = self.content.clone().unwrap_or_default().into_bytes();
                let file = plan_file(&path, content, owner, group, facts)?;
                plan.changes.extend(file.change);
                (file.changed, file.effective)
            }
            Presence::Absent => match facts.path(&path)?.kind {
                PathKind::Missing => (false, false),
                PathKind::File => {
                    plan.changes.push(Change::Paths(PathChange::Remove {
                        path,
                        kind: PathKind::File,
                    }));
                    (true, true)
                }
                kind => {
                    return Err(PlanError::WrongKind {
                        path,
                        kind,
                        expected: "regular file",
                    })
                }
            },
        };
        if changed && !unit_state.exists() {
            plan.warnings.push(format!(
                "{unit} is not installed on the host: the drop-in applies once it is"
            ));
        }
        plan.changes.extend(manager_steps);
        let run_state = plan_run_state(
            &unit,
            &unit_state,
            None,
            None,
            effective && unit_state.exists(),
            &Verify::from_params(None, None, None),
        )?;
        plan_reload(&unit, &unit_state, changed, false, run_state, &mut plan);
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountFact, AccountKey};
    use crate::fact::{Fact, ManagerState, PathState, UnitState, UserInfo};
    use crate::paths::PathFact;
    use crate::systemd::{SystemdFact, SystemdKey};

    const DIR: &str = "/etc/systemd/system/redis-server.service.d";
    const PATH: &str = "/etc/systemd/system/redis-server.service.d/limits.conf";
    const LIMITS: &str = "[Service]\nLimitNOFILE=65536\n";

    fn limits() -> SystemdDropin {
        SystemdDropin {
            unit: "redis-server.service".into(),
            name: "limits".into(),
            content: Some(LIMITS.into()),
            src: None,
            template: None,
            scope: Scope::System,
            user: None,
            state: Presence::Present,
        }
    }

    fn file(mode: u32) -> PathState {
        PathState {
            kind: PathKind::File,
            owner: "root".into(),
            group: "root".into(),
            mode,
        }
    }

    fn directory() -> PathState {
        PathState {
            kind: PathKind::Directory,
            mode: 0o755,
            ..file(0)
        }
    }

    fn unit_state(load: &str, active: &str) -> UnitState {
        UnitState {
            manager: ManagerState::Running,
            load: load.into(),
            active: active.into(),
            unit_file: "enabled".into(),
            need_daemon_reload: false,
        }
    }

    fn insert_path(store: &mut FactStore, path: &str, state: PathState) {
        store.insert(
            PathKey::Path(path.into()).into(),
            PathFact::Path(state).into(),
        );
    }

    /// A host where the unit is in `unit` and the drop-in holds `content`.
    fn system_facts(content: Option<&str>, unit: UnitState) -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            SystemdKey::Unit(limits().unit()).into(),
            SystemdFact::Unit(unit).into(),
        );
        if content.is_some() {
            insert_path(&mut store, DIR, directory());
            insert_path(&mut store, PATH, file(0o644));
        } else {
            insert_path(&mut store, DIR, PathState::missing());
            insert_path(&mut store, PATH, PathState::missing());
        }
        store.insert(
            PathKey::Content(PATH.into()).into(),
            PathFact::Content(content.map(|c| c.as_bytes().to_vec())).into(),
        );
        store
    }

    fn described(plan: &Plan) -> Vec<String> {
        plan.changes.iter().map(Change::describe).collect()
    }

    #[test]
    fn a_new_drop_in_on_a_running_unit_is_written_reloaded_and_restarted() {
        let store = system_facts(None, unit_state("loaded", "active"));
        assert_eq!(
            Module::facts(&limits(), &store),
            [
                FactKey::from(SystemdKey::Unit(limits().unit())),
                PathKey::Path(DIR.into()).into(),
                PathKey::Content(PATH.into()).into(),
                PathKey::Path(PATH.into()).into(),
            ]
        );
        let plan = limits().plan(&store).unwrap();
        assert_eq!(
            described(&plan),
            [
                "create directory /etc/systemd/system/redis-server.service.d",
                "create /etc/systemd/system/redis-server.service.d/limits.conf",
                "daemon-reload (system manager)",
                "restart redis-server.service"
            ]
        );
        assert!(plan.warnings.is_empty());
        let Change::Paths(PathChange::WriteFile(write)) = &plan.changes[1] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (write.owner.as_deref(), write.group.as_deref(), write.mode),
            (Some("root"), Some("root"), 0o644)
        );
    }

    #[test]
    fn a_stopped_unit_is_reloaded_and_not_started() {
        let plan = limits()
            .plan(&system_facts(None, unit_state("loaded", "inactive")))
            .unwrap();
        assert_eq!(described(&plan)[2..], ["daemon-reload (system manager)"]);
    }

    #[test]
    fn an_unchanged_drop_in_is_ok_and_a_comment_is_not_worth_a_restart() {
        let running = || unit_state("loaded", "active");
        assert_eq!(
            limits()
                .plan(&system_facts(Some(LIMITS), running()))
                .unwrap(),
            Plan::default()
        );
        let noted = format!("# raised for redis\n{LIMITS}");
        assert_eq!(
            described(
                &limits()
                    .plan(&system_facts(Some(&noted), running()))
                    .unwrap()
            ),
            [
                "update /etc/systemd/system/redis-server.service.d/limits.conf",
                "daemon-reload (system manager)"
            ]
        );
        let mut loose = system_facts(Some(LIMITS), running());
        insert_path(&mut loose, PATH, file(0o666));
        assert_eq!(
            described(&limits().plan(&loose).unwrap()),
            ["set mode 0644 on /etc/systemd/system/redis-server.service.d/limits.conf"]
        );
    }

    #[test]
    fn check_mode_predicts_a_converged_host() {
        let mut store = system_facts(None, unit_state("loaded", "active"));
        for change in limits().plan(&store).unwrap().changes {
            change.predict(&mut store);
        }
        assert_eq!(limits().plan(&store).unwrap(), Plan::default());
    }

    #[test]
    fn a_drop_in_for_a_unit_not_yet_installed_is_written_with_a_warning() {
        let mut store = system_facts(None, unit_state("not-found", "inactive"));
        let plan = limits().plan(&store).unwrap();
        assert_eq!(
            described(&plan)[1..],
            [
                "create /etc/systemd/system/redis-server.service.d/limits.conf",
                "daemon-reload (system manager)"
            ]
        );
        assert_eq!(
            plan.warnings,
            ["redis-server.service is not installed on the host: the drop-in applies once it is"]
        );
        // The reload does not make the unit exist.
        for change in plan.changes {
            change.predict(&mut store);
        }
        assert!(!store.unit(&limits().unit()).unwrap().exists());
    }

    #[test]
    fn absent_removes_reloads_and_restarts_and_is_ok_when_missing() {
        let absent = SystemdDropin {
            content: None,
            state: Presence::Absent,
            ..limits()
        };
        assert_eq!(absent.validate(), Ok(()));
        let mut store = system_facts(Some(LIMITS), unit_state("loaded", "active"));
        let plan = absent.plan(&store).unwrap();
        assert_eq!(
            described(&plan),
            [
                "remove regular file /etc/systemd/system/redis-server.service.d/limits.conf",
                "daemon-reload (system manager)",
                "restart redis-server.service"
            ]
        );
        for change in plan.changes {
            change.predict(&mut store);
        }
        assert_eq!(absent.plan(&store).unwrap(), Plan::default());
        let missing = system_facts(None, unit_state("not-found", "inactive"));
        assert_eq!(absent.plan(&missing).unwrap(), Plan::default());
        // A directory where the drop-in should be is not removed.
        let mut odd = system_facts(None, unit_state("loaded", "active"));
        insert_path(&mut odd, PATH, directory());
        assert_eq!(
            absent.plan(&odd).unwrap_err().to_string(),
            "/etc/systemd/system/redis-server.service.d/limits.conf is a directory; expected a regular file"
        );
    }

    #[test]
    fn parameters_are_checked_before_any_host() {
        let mut dropin = limits();
        dropin.name = "../../sudoers.d/x".into();
        assert!(dropin
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("invalid drop-in name"));
        let mut dropin = limits();
        dropin.content = None;
        assert_eq!(
            dropin.validate().unwrap_err().to_string(),
            "give exactly one of content, src, template"
        );
        let absent = SystemdDropin {
            state: Presence::Absent,
            ..limits()
        };
        assert_eq!(
            absent.validate().unwrap_err().to_string(),
            "`content/src/template` is only for state: present"
        );
        let mut dropin = limits();
        dropin.scope = Scope::User;
        assert!(dropin.validate().is_err());
    }

    fn user_facts() -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            AccountKey::User("deploy".into()).into(),
            AccountFact::User(Some(UserInfo {
                uid: Some(1000),
                home: "/home/deploy".into(),
                shell: "/bin/bash".into(),
                primary_group: "deploy".into(),
                groups: vec![],
            }))
            .into(),
        );
        store.insert(
            SystemdKey::Linger("deploy".into()).into(),
            SystemdFact::Linger(true).into(),
        );
        store.insert(
            SystemdKey::Unit(UnitRef {
                manager: Manager::User("deploy".into()),
                name: "sidekiq.service".into(),
            })
            .into(),
            Fact::Systemd(SystemdFact::Unit(unit_state("loaded", "active"))),
        );
        store
    }

    #[test]
    fn a_user_drop_in_is_the_user_s_file_in_their_manager() {
        let dropin = SystemdDropin {
            unit: "sidekiq.service".into(),
            name: "env.conf".into(),
            scope: Scope::User,
            user: Some("deploy".into()),
            ..limits()
        };
        let mut store = user_facts();
        let keys = Module::facts(&dropin, &store);
        for key in &keys {
            if let FactKey::Paths(PathKey::Path(path)) = key {
                let state = if path == "/home/deploy/.config" {
                    PathState {
                        owner: "deploy".into(),
                        group: "deploy".into(),
                        ..directory()
                    }
                } else {
                    PathState::missing()
                };
                insert_path(&mut store, path, state);
            }
            if let FactKey::Paths(PathKey::Content(path)) = key {
                store.insert(key.clone(), PathFact::Content(None).into());
                assert_eq!(
                    path,
                    "/home/deploy/.config/systemd/user/sidekiq.service.d/env.conf"
                );
            }
        }
        let plan = dropin.plan(&store).unwrap();
        assert_eq!(
            described(&plan),
            [
                "create directory /home/deploy/.config/systemd",
                "create directory /home/deploy/.config/systemd/user",
                "create directory /home/deploy/.config/systemd/user/sidekiq.service.d",
                "create /home/deploy/.config/systemd/user/sidekiq.service.d/env.conf",
                "daemon-reload (deploy's user manager)",
                "restart sidekiq.service (user deploy)"
            ]
        );
        let Change::Paths(PathChange::WriteFile(write)) = &plan.changes[3] else {
            panic!("{plan:?}")
        };
        assert_eq!(write.owner.as_deref(), Some("deploy"));
        // No user: nothing of theirs to remove.
        store.insert(
            AccountKey::User("deploy".into()).into(),
            AccountFact::User(None).into(),
        );
        let absent = SystemdDropin {
            content: None,
            state: Presence::Absent,
            ..dropin
        };
        assert_eq!(absent.plan(&store).unwrap(), Plan::default());
    }
}
