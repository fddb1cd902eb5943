//! `service`: a unit's enablement and run state, or a signal sent to it.
//!
//! Also home of the planning shared with `systemd_unit`: which manager a unit lives in,
//! whether that manager can be reached, and the enable/start/stop/restart decisions.

use serde::{Deserialize, Serialize};

use crate::accounts::AccountKey;
use crate::change::{Change, UnitAction};
use crate::fact::{FactKey, FactStore, Manager, ManagerState, UnitRef, UnitState};
use crate::settle::{Probe, Verify};
use crate::systemd::facts::{lingering_promised, started_with_manager};
use crate::systemd::SystemdChange;
use crate::systemd::SystemdKey;
use crate::{names, Module, ParamError, Plan, PlanError, Scope};

/// Desired run state of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Started,
    Stopped,
    /// Restart now (always a change).
    Restarted,
    /// Reload now, or start when not running (always a change).
    Reloaded,
}

/// Parameters of the `service` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `sidekiq` or `sidekiq.service`.
    pub name: String,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub state: Option<RunState>,
    /// A signal to send with `systemctl kill -s` (e.g. `TSTP` to quiet Sidekiq).
    #[serde(default)]
    pub signal: Option<String>,
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

/// Checks that `user` is given exactly when the scope is `user`.
pub(crate) fn validate_scope(scope: Scope, user: Option<&String>) -> Result<(), ParamError> {
    match (scope, user) {
        (Scope::User, None) => Err(ParamError::Required {
            param: "user",
            when: "when scope is user",
        }),
        (Scope::System, Some(_)) => Err(ParamError::Invalid {
            param: "user",
            reason: "is only for scope: user".to_owned(),
        }),
        (Scope::User, Some(user)) => Ok(names::user(user)?),
        (Scope::System, None) => Ok(()),
    }
}

/// The unit `name` in the manager chosen by `scope` and `user`.
pub(crate) fn unit_ref(name: String, scope: Scope, user: Option<&String>) -> UnitRef {
    let manager = match (scope, user) {
        (Scope::User, Some(user)) => Manager::User(user.clone()),
        _ => Manager::System,
    };
    UnitRef { manager, name }
}

/// Facts about a unit and, for a user unit, its user and lingering.
pub(crate) fn unit_facts(unit: &UnitRef) -> Vec<FactKey> {
    let mut keys = Vec::with_capacity(3);
    if let Manager::User(user) = &unit.manager {
        keys.push(FactKey::Accounts(AccountKey::User(user.clone())));
        keys.push(FactKey::Systemd(SystemdKey::Linger(user.clone())));
    }
    keys.push(FactKey::Systemd(SystemdKey::Unit(unit.clone())));
    keys
}

/// Checks that a unit's manager can be talked to, and returns the unit's state as it
/// will be once the manager steps this adds to `plan` are done. For a user unit: the
/// user exists, lingering is on (or a warning says what happens without it), and a
/// manager that is down is waited for, or brought up by turning lingering on when the
/// play does that anyway.
pub(crate) fn plan_manager(
    unit: &UnitRef,
    facts: &FactStore,
    plan: &mut Plan,
) -> Result<UnitState, PlanError> {
    let state = facts.unit(unit)?;
    let Manager::User(user) = &unit.manager else {
        return Ok(state.clone());
    };
    let no_such_user = || PlanError::NoSuchUser {
        user: user.clone(),
        hint: " (a user-scope unit needs its user: create it in an earlier task)",
    };
    let account = facts.user(user)?.as_ref().ok_or_else(no_such_user)?;
    let lingering = *facts.linger(user)?;
    if !lingering && !lingering_promised(facts, user) {
        plan.warnings.push(format!(
            "lingering is off for {user}: {} will be stopped when {user}'s last session ends and will not start at boot; add a linger task for {user}",
            unit.name
        ));
    }
    let mut state = state.clone();
    if state.manager == ManagerState::NoSuchUser && account.uid.is_none() {
        // Check mode, and the account is one an earlier task would create: the unit was
        // read before it existed. A new account's manager is down, unless lingering was
        // turned on for it, which waits for the manager to come up.
        state.manager = ManagerState::Down;
        if lingering {
            return Ok(started_with_manager(&state));
        }
    }
    match state.manager {
        ManagerState::Running => Ok(state),
        ManagerState::Down if lingering => {
            plan.changes
                .push(Change::Systemd(SystemdChange::AwaitUserManager {
                    user: user.clone(),
                }));
            Ok(started_with_manager(&state))
        }
        ManagerState::Down if lingering_promised(facts, user) => {
            // The play turns lingering on later anyway; doing it now is what makes this
            // unit manageable at all.
            plan.changes.push(Change::Systemd(SystemdChange::Linger {
                user: user.clone(),
                enabled: true,
            }));
            Ok(started_with_manager(&state))
        }
        ManagerState::Down => Err(PlanError::ManagerDown {
            user: user.clone(),
            unit: unit.name.clone(),
        }),
        ManagerState::NoSuchUser => Err(no_such_user()),
    }
}

/// Enable/disable and start/stop/restart decisions for a unit in `state`.
/// `file_changed`: the unit file's effective content is being changed, so a running
/// unit is restarted (unless it is to be stopped) to pick it up. A start or restart
/// carries `verify`.
pub(crate) fn plan_run_state(
    unit: &UnitRef,
    state: &UnitState,
    enabled: Option<bool>,
    run: Option<RunState>,
    file_changed: bool,
    verify: &Verify,
) -> Result<Vec<Change>, PlanError> {
    let masked = state.load == "masked" || state.unit_file.starts_with("masked");
    let wants_up = enabled == Some(true)
        || matches!(
            run,
            Some(RunState::Started | RunState::Restarted | RunState::Reloaded)
        );
    if masked && wants_up {
        return Err(PlanError::Masked {
            unit: unit.to_string(),
            action: if enabled == Some(true) {
                "enable"
            } else {
                "start"
            },
        });
    }
    let mut actions = Vec::new();
    match enabled {
        Some(true) if !state.is_enabled() => actions.push(UnitAction::Enable),
        Some(false) if state.is_enabled() => actions.push(UnitAction::Disable),
        _ => {}
    }
    let active = state.is_active();
    match run {
        Some(RunState::Started) if !active => actions.push(UnitAction::Start),
        Some(RunState::Started) | None if active && file_changed => {
            actions.push(UnitAction::Restart);
        }
        Some(RunState::Stopped) if active => actions.push(UnitAction::Stop),
        Some(RunState::Restarted) => actions.push(UnitAction::Restart),
        Some(RunState::Reloaded) => actions.push(if active {
            UnitAction::Reload
        } else {
            UnitAction::Start
        }),
        _ => {}
    }
    Ok(actions
        .into_iter()
        .map(|action| {
            Change::Systemd(SystemdChange::Unit {
                unit: unit.clone(),
                action,
                reload_follows: false,
                verify: matches!(action, UnitAction::Start | UnitAction::Restart)
                    .then(|| verify.clone()),
            })
        })
        .collect())
}

impl Service {
    fn unit(&self) -> UnitRef {
        let name = names::service(&self.name).unwrap_or_else(|_| self.name.clone());
        unit_ref(name, self.scope, self.user.as_ref())
    }
}

impl Module for Service {
    const NAME: &'static str = "service";

    fn validate(&self) -> Result<(), ParamError> {
        names::service(&self.name)?;
        validate_scope(self.scope, self.user.as_ref())?;
        if let Some(signal) = &self.signal {
            names::signal(signal)?;
        }
        crate::settle::validate(self.settle, self.probe.as_ref(), self.journal_lines)?;
        if self.enabled.is_none() && self.state.is_none() && self.signal.is_none() {
            return Err(ParamError::Required {
                param: "enabled, state or signal",
                when: "(at least one of them)",
            });
        }
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        unit_facts(&self.unit())
    }

    fn restarts(&self) -> Option<UnitRef> {
        (self.state == Some(RunState::Restarted)).then(|| self.unit())
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let unit = self.unit();
        let mut plan = Plan::default();
        let state = plan_manager(&unit, facts, &mut plan)?;
        let state = &state;
        let wants_unit = self.enabled == Some(true)
            || self.signal.is_some()
            || matches!(
                self.state,
                Some(RunState::Started | RunState::Restarted | RunState::Reloaded)
            );
        if !state.exists() && state.manager == ManagerState::Running {
            if wants_unit {
                return Err(PlanError::NoSuchUnit {
                    unit: unit.to_string(),
                    hint: " (install it with systemd_unit, or the package that ships it, in an earlier task)",
                });
            }
            return Ok(plan);
        }
        if self.enabled == Some(true) && state.unit_file == "static" {
            return Err(PlanError::NotInstallable {
                unit: unit.to_string(),
            });
        }
        plan.changes.extend(plan_run_state(
            &unit,
            state,
            self.enabled,
            self.state,
            false,
            &Verify::from_params(self.settle, self.probe.as_ref(), self.journal_lines),
        )?);
        if let Some(signal) = &self.signal {
            let will_run = state.is_active()
                || plan.changes.iter().any(|change| {
                    matches!(
                        change,
                        Change::Systemd(SystemdChange::Unit {
                            action: UnitAction::Start | UnitAction::Restart,
                            ..
                        })
                    )
                });
            if will_run {
                plan.changes.push(Change::Systemd(SystemdChange::Signal {
                    unit,
                    signal: signal.clone(),
                }));
            } else {
                plan.warnings
                    .push(format!("{unit} is not running; {signal} was not sent"));
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountChange;
    use crate::accounts::AccountFact;
    use crate::fact::Fact;
    use crate::paths::{PathFact, PathKey};
    use crate::systemd::SystemdFact;

    fn state(active: &str, unit_file: &str) -> UnitState {
        UnitState {
            manager: ManagerState::Running,
            load: "loaded".into(),
            active: active.into(),
            unit_file: unit_file.into(),
            need_daemon_reload: false,
        }
    }

    fn sidekiq() -> Service {
        Service {
            name: "sidekiq".into(),
            scope: Scope::System,
            user: None,
            enabled: Some(true),
            state: Some(RunState::Started),
            signal: None,
            settle: None,
            probe: None,
            journal_lines: None,
        }
    }

    fn store(state: UnitState) -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Systemd(SystemdKey::Unit(UnitRef {
                manager: Manager::System,
                name: "sidekiq.service".into(),
            })),
            Fact::Systemd(SystemdFact::Unit(state)),
        );
        store
    }

    fn described(plan: &Plan) -> Vec<String> {
        plan.changes.iter().map(Change::describe).collect()
    }

    #[test]
    fn stopped_disabled_unit_is_enabled_and_started() {
        let plan = sidekiq()
            .plan(&store(state("inactive", "disabled")))
            .unwrap();
        assert_eq!(
            described(&plan),
            ["enable sidekiq.service", "start sidekiq.service"]
        );
    }

    #[test]
    fn running_enabled_unit_is_ok() {
        assert!(sidekiq()
            .plan(&store(state("active", "enabled")))
            .unwrap()
            .changes
            .is_empty());
    }

    #[test]
    fn enabling_a_static_unit_is_a_clear_error() {
        let err = sidekiq()
            .plan(&store(state("inactive", "static")))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("sidekiq.service cannot be enabled: it has no [Install] section"),
            "{err}"
        );
    }

    #[test]
    fn missing_unit_is_a_clear_error() {
        let mut missing = state("inactive", "");
        missing.load = "not-found".into();
        assert_eq!(
            sidekiq().plan(&store(missing)).unwrap_err().to_string(),
            "unit sidekiq.service does not exist on the host (install it with systemd_unit, or the package that ships it, in an earlier task)"
        );
    }

    #[test]
    fn signal_is_always_a_change_when_running() {
        let quiet = Service {
            enabled: None,
            state: None,
            signal: Some("TSTP".into()),
            ..sidekiq()
        };
        let plan = quiet.plan(&store(state("active", "enabled"))).unwrap();
        assert_eq!(described(&plan), ["send TSTP to sidekiq.service"]);
        let plan = quiet.plan(&store(state("inactive", "enabled"))).unwrap();
        assert!(plan.changes.is_empty());
        assert_eq!(
            plan.warnings,
            ["sidekiq.service is not running; TSTP was not sent"]
        );
    }

    #[test]
    fn file_change_restarts_a_running_unit() {
        let unit = UnitRef {
            manager: Manager::System,
            name: "a.service".into(),
        };
        let changes = plan_run_state(
            &unit,
            &state("active", "enabled"),
            Some(true),
            Some(RunState::Started),
            true,
            &Verify::from_params(None, None, None),
        )
        .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].describe(), "restart a.service");
        let changes = plan_run_state(
            &unit,
            &state("active", "enabled"),
            None,
            Some(RunState::Stopped),
            true,
            &Verify::from_params(None, None, None),
        )
        .unwrap();
        assert_eq!(changes[0].describe(), "stop a.service");
    }

    #[test]
    fn user_scope_needs_user() {
        let service = Service {
            scope: Scope::User,
            ..sidekiq()
        };
        assert_eq!(
            service.validate().unwrap_err().to_string(),
            "`user` is required when scope is user"
        );
    }

    /// What the engine reads on a host where `deploy` does not exist yet: the unit
    /// probe says so, and nothing under the future home directory exists.
    fn fresh_host() -> FactStore {
        let mut store = FactStore::default();
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(None)),
        );
        store.insert(
            FactKey::Accounts(AccountKey::Group("deploy".into())),
            Fact::Accounts(AccountFact::Group(None)),
        );
        store.insert(
            FactKey::Systemd(SystemdKey::Linger("deploy".into())),
            Fact::Systemd(SystemdFact::Linger(false)),
        );
        let unit = FactKey::Systemd(SystemdKey::Unit(user_sidekiq()));
        let probed = crate::fact::parse(&unit, "manager=no-such-user\n").unwrap();
        store.insert(unit, probed);
        for path in [
            "/home/deploy/.config",
            "/home/deploy/.config/systemd",
            "/home/deploy/.config/systemd/user",
            "/home/deploy/.config/systemd/user/sidekiq.service",
        ] {
            store.insert(
                FactKey::Paths(PathKey::Path(path.into())),
                Fact::Paths(PathFact::Path(crate::fact::PathState::missing())),
            );
            store.insert(
                FactKey::Paths(PathKey::Content(path.into())),
                Fact::Paths(PathFact::Content(None)),
            );
        }
        crate::systemd_unit::tests::verified(&user_unit(), store)
    }

    fn user_sidekiq() -> UnitRef {
        UnitRef {
            manager: Manager::User("deploy".into()),
            name: "sidekiq.service".into(),
        }
    }

    fn user_unit() -> crate::systemd_unit::SystemdUnit {
        crate::systemd_unit::SystemdUnit {
            name: "sidekiq.service".into(),
            content: Some(
                "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n"
                    .into(),
            ),
            src: None,
            template: None,
            scope: Scope::User,
            user: Some("deploy".into()),
            enabled: Some(true),
            state: Some(crate::systemd_unit::UnitFileState::Started),
            settle: None,
            probe: None,
            journal_lines: None,
        }
    }

    fn restart_handler() -> Service {
        Service {
            scope: Scope::User,
            user: Some("deploy".into()),
            enabled: None,
            state: Some(RunState::Restarted),
            ..sidekiq()
        }
    }

    /// Plans `module`, records its predictions as check mode does, and returns what it
    /// would do.
    fn check(module: &dyn crate::DynModule, store: &mut FactStore) -> Vec<String> {
        let plan = module.plan(store).unwrap();
        for change in &plan.changes {
            change.predict(store);
        }
        described(&plan)
    }

    fn create_deploy(store: &mut FactStore) {
        let add = Change::Accounts(AccountChange::AddUser(crate::change::NewUser {
            name: "deploy".into(),
            system: false,
            uid: None,
            create_home: true,
            home: None,
            shell: None,
            groups: vec![],
        }));
        add.predict(store);
        *store = crate::systemd_unit::tests::verified(&user_unit(), store.clone());
    }

    #[test]
    fn check_mode_plans_a_user_unit_for_an_account_the_same_run_creates() {
        let mut store = fresh_host();
        create_deploy(&mut store);
        let linger = crate::linger::Linger {
            user: "deploy".into(),
            enabled: true,
        };
        assert_eq!(check(&linger, &mut store), ["enable lingering for deploy"]);
        // Exactly what a real run does once the account exists and its manager runs:
        // no wait for the manager (enabling lingering waited already), no error.
        assert_eq!(
            check(&user_unit(), &mut store),
            [
                "create directory /home/deploy/.config",
                "create directory /home/deploy/.config/systemd",
                "create directory /home/deploy/.config/systemd/user",
                "create /home/deploy/.config/systemd/user/sidekiq.service",
                "enable sidekiq.service (user deploy)",
                "daemon-reload (deploy's user manager)",
                "start sidekiq.service (user deploy)",
            ]
        );
        assert_eq!(
            check(&restart_handler(), &mut store),
            ["restart sidekiq.service (user deploy)"]
        );
        assert!(check(&user_unit(), &mut store).is_empty());
    }

    #[test]
    fn check_mode_turns_lingering_on_first_for_a_new_account_when_the_play_does_later() {
        let mut store = fresh_host();
        store.promise([(
            FactKey::Systemd(SystemdKey::Linger("deploy".into())),
            Fact::Systemd(SystemdFact::Linger(true)),
        )]);
        create_deploy(&mut store);
        let plan = user_unit().plan(&store).unwrap();
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert_eq!(
            check(&user_unit(), &mut store)[3..],
            [
                "create /home/deploy/.config/systemd/user/sidekiq.service",
                "enable lingering for deploy",
                "enable sidekiq.service (user deploy)",
                "daemon-reload (deploy's user manager)",
                "start sidekiq.service (user deploy)",
            ]
        );
        let linger = crate::linger::Linger {
            user: "deploy".into(),
            enabled: true,
        };
        assert!(check(&linger, &mut store).is_empty());
    }

    #[test]
    fn check_mode_without_lingering_for_a_new_account_fails_like_the_real_run() {
        let mut store = fresh_host();
        create_deploy(&mut store);
        assert!(user_unit()
            .plan(&store)
            .unwrap_err()
            .to_string()
            .starts_with("deploy's user manager is not running"));
    }

    #[test]
    fn an_account_that_exists_but_has_no_manager_probe_is_still_missing() {
        let mut store = fresh_host();
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(Some(crate::fact::UserInfo {
                uid: Some(1000),
                home: "/home/deploy".into(),
                shell: "/bin/sh".into(),
                primary_group: "deploy".into(),
                groups: vec![],
            }))),
        );
        store.insert(
            FactKey::Systemd(SystemdKey::Linger("deploy".into())),
            Fact::Systemd(SystemdFact::Linger(true)),
        );
        assert!(user_unit()
            .plan(&store)
            .unwrap_err()
            .to_string()
            .starts_with("user deploy does not exist"));
    }

    #[test]
    fn an_enabled_unit_is_not_started_by_hand_when_its_manager_comes_up() {
        // Lingering is on but the manager is not up yet (just booted): once it is, it
        // starts the enabled unit itself.
        let mut store = FactStore::default();
        store.insert(
            FactKey::Accounts(AccountKey::User("deploy".into())),
            Fact::Accounts(AccountFact::User(Some(crate::fact::UserInfo {
                uid: Some(1000),
                home: "/home/deploy".into(),
                shell: "/bin/sh".into(),
                primary_group: "deploy".into(),
                groups: vec![],
            }))),
        );
        store.insert(
            FactKey::Systemd(SystemdKey::Linger("deploy".into())),
            Fact::Systemd(SystemdFact::Linger(true)),
        );
        let unit = FactKey::Systemd(SystemdKey::Unit(user_sidekiq()));
        let probed = crate::fact::parse(
            &unit,
            "manager=down\nUnitFileState=enabled\nUnitFile=present\n",
        )
        .unwrap();
        store.insert(unit, probed);
        let service = Service {
            scope: Scope::User,
            user: Some("deploy".into()),
            ..sidekiq()
        };
        assert_eq!(
            check(&service, &mut store),
            ["wait for deploy's user manager"]
        );
        assert!(check(&service, &mut store).is_empty());
        // A unit that is not enabled is started once the manager is up.
        let unit = FactKey::Systemd(SystemdKey::Unit(user_sidekiq()));
        let probed = crate::fact::parse(&unit, "manager=down\nUnitFile=present\n").unwrap();
        store.insert(unit, probed);
        assert_eq!(
            check(&service, &mut store),
            [
                "wait for deploy's user manager",
                "enable sidekiq.service (user deploy)",
                "start sidekiq.service (user deploy)"
            ]
        );
    }
}
