use super::*;
use crate::accounts::{AccountFact, AccountKey};
use crate::fact::{Fact, ManagerState, PathState, UnitRef, UnitState, UserInfo};
use crate::paths::PathFact;
use crate::systemd::SystemdFact;

const UNIT: &str = "[Unit]\nDescription=sidekiq\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n";

fn sidekiq() -> SystemdUnit {
    SystemdUnit {
        name: "sidekiq.service".into(),
        content: Some(UNIT.into()),
        src: None,
        template: None,
        scope: Scope::System,
        user: None,
        enabled: Some(true),
        state: Some(UnitFileState::Started),

        settle: None,
        probe: None,
        journal_lines: None,
    }
}

fn system_facts(content: Option<&str>, unit: UnitState) -> FactStore {
    let path = "/etc/systemd/system/sidekiq.service";
    let mut store = FactStore::default();
    store.insert(
        FactKey::Paths(PathKey::Path(path.into())),
        Fact::Paths(PathFact::Path(match content {
            Some(_) => PathState {
                kind: PathKind::File,
                owner: "root".into(),
                group: "root".into(),
                mode: 0o644,
            },
            None => PathState::missing(),
        })),
    );
    store.insert(
        FactKey::Paths(PathKey::Content(path.into())),
        Fact::Paths(PathFact::Content(content.map(|c| c.as_bytes().to_vec()))),
    );
    store.insert(
        FactKey::Systemd(SystemdKey::Unit(UnitRef {
            manager: Manager::System,
            name: "sidekiq.service".into(),
        })),
        Fact::Systemd(SystemdFact::Unit(unit)),
    );
    verified(&sidekiq(), store)
}

fn unit_state(load: &str, active: &str, unit_file: &str) -> UnitState {
    UnitState {
        manager: ManagerState::Running,
        load: load.into(),
        active: active.into(),
        unit_file: unit_file.into(),
        need_daemon_reload: false,
    }
}

fn described(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(Change::describe).collect()
}

#[test]
fn fresh_host_gets_file_enable_reload_start() {
    let plan = sidekiq()
        .plan(&system_facts(None, unit_state("not-found", "inactive", "")))
        .unwrap();
    assert_eq!(
        described(&plan),
        [
            "create /etc/systemd/system/sidekiq.service",
            "enable sidekiq.service",
            "daemon-reload (system manager)",
            "start sidekiq.service"
        ]
    );
    // One reload of the manager, not two: enable skips its own.
    assert_eq!(
        plan.changes[1].command().argv,
        [
            "systemctl",
            "enable",
            "--no-reload",
            "--",
            "sidekiq.service"
        ]
    );
}

#[test]
fn enabling_without_a_file_change_lets_systemctl_reload() {
    let plan = sidekiq()
        .plan(&system_facts(
            Some(UNIT),
            unit_state("loaded", "active", "disabled"),
        ))
        .unwrap();
    assert_eq!(described(&plan), ["enable sidekiq.service"]);
    assert_eq!(
        plan.changes[0].command().argv,
        ["systemctl", "enable", "--", "sidekiq.service"]
    );
}

#[test]
fn converged_host_is_ok() {
    let plan = sidekiq()
        .plan(&system_facts(
            Some(UNIT),
            unit_state("loaded", "active", "enabled"),
        ))
        .unwrap();
    assert_eq!(plan, Plan::default());
}

#[test]
fn edited_file_is_rewritten_reloaded_and_restarted() {
    let plan = sidekiq()
        .plan(&system_facts(
            Some("edited"),
            unit_state("loaded", "active", "enabled"),
        ))
        .unwrap();
    assert_eq!(
        described(&plan),
        [
            "update /etc/systemd/system/sidekiq.service",
            "daemon-reload (system manager)",
            "restart sidekiq.service"
        ]
    );
}

#[test]
fn a_comment_only_edit_is_rewritten_and_reloaded_without_a_restart() {
    let reordered = format!(
        "# a note\n\n{}",
        UNIT.replace("Description=sidekiq\n", "Description=sidekiq\n; why\n")
    );
    let plan = sidekiq()
        .plan(&system_facts(
            Some(&reordered),
            unit_state("loaded", "active", "enabled"),
        ))
        .unwrap();
    assert_eq!(
        described(&plan),
        [
            "update /etc/systemd/system/sidekiq.service",
            "daemon-reload (system manager)",
        ]
    );
}

#[test]
fn restarts_carry_their_proof() {
    let mut unit = sidekiq();
    unit.settle = Some(10);
    let plan = unit
        .plan(&system_facts(
            Some("edited"),
            unit_state("loaded", "active", "enabled"),
        ))
        .unwrap();
    let Change::Systemd(SystemdChange::Unit { verify, .. }) = &plan.changes[2] else {
        panic!("{plan:?}")
    };
    assert_eq!(verify.as_ref().map(|v| v.settle), Some(10));
    assert!(plan.changes[2].command().argv[2].contains("NRestarts"));
}

#[test]
fn a_program_a_planned_package_may_install_is_waited_on_in_check_mode() {
    let mut store = system_facts(None, unit_state("not-found", "inactive", ""));
    store.insert(
        FactKey::Paths(PathKey::Path("/bin/sleep".into())),
        Fact::Paths(PathFact::Path(PathState::missing())),
    );
    store.unsettle("package", "coreutils-sleep", "not yet installed");
    let error = sidekiq().plan(&store).unwrap_err();
    assert_eq!(
        error,
        PlanError::NoProgram {
            program: "/bin/sleep".into()
        }
    );
    assert_eq!(
        error.pending_on(&store).as_deref(),
        Some("depends on package coreutils-sleep, not yet installed: program /bin/sleep does not exist yet")
    );
}

#[test]
fn a_unit_verify_rejects_is_refused_and_nothing_is_written() {
    let mut store = system_facts(None, unit_state("not-found", "inactive", ""));
    let candidate = Candidate {
        manager: Manager::System,
        path: "/etc/systemd/system/sidekiq.service".into(),
        content: UNIT.into(),
    };
    store.insert(
        FactKey::Systemd(SystemdKey::UnitVerify(candidate)),
        Fact::Systemd(SystemdFact::UnitVerify(Verdict::Checked {
            errors: vec!["/etc/systemd/system/sidekiq.service (new):4: Unknown key 'ExecStrat' in section [Service], ignoring.".into()],
            warnings: vec![],
        })),
    );
    store.insert(
        FactKey::Paths(PathKey::Path("/bin/sleep".into())),
        Fact::Paths(PathFact::Path(PathState::missing())),
    );
    assert_eq!(
        sidekiq().plan(&store).unwrap_err().to_string(),
        "refusing the new /etc/systemd/system/sidekiq.service; the current file is kept:\n  - /bin/sleep, which the unit runs, does not exist on the host\n  - /etc/systemd/system/sidekiq.service (new):4: Unknown key 'ExecStrat' in section [Service], ignoring."
    );
    // A program an earlier task installs (check mode predicts it) is there.
    store.insert(
        FactKey::Paths(PathKey::Path("/bin/sleep".into())),
        Fact::Paths(PathFact::Path(PathState {
            kind: PathKind::File,
            owner: "root".into(),
            group: "root".into(),
            mode: 0o755,
        })),
    );
    assert_eq!(
        sidekiq()
            .plan(&store)
            .unwrap_err()
            .to_string()
            .matches("\n  - ")
            .count(),
        1
    );
}

fn absent() -> SystemdUnit {
    SystemdUnit {
        content: None,
        enabled: None,
        state: Some(UnitFileState::Absent),
        ..sidekiq()
    }
}

#[test]
fn absent_stops_disables_removes_then_reloads() {
    let mut store = system_facts(Some(UNIT), unit_state("loaded", "active", "enabled"));
    assert_eq!(
        Module::facts(&absent(), &store),
        [
            FactKey::Systemd(SystemdKey::Unit(UnitRef {
                manager: Manager::System,
                name: "sidekiq.service".into(),
            })),
            FactKey::Paths(PathKey::Path("/etc/systemd/system/sidekiq.service".into())),
        ]
    );
    let plan = absent().plan(&store).unwrap();
    assert_eq!(
        described(&plan),
        [
            "stop sidekiq.service",
            "disable sidekiq.service",
            "remove regular file /etc/systemd/system/sidekiq.service",
            "daemon-reload (system manager)"
        ]
    );
    assert_eq!(
        plan.changes[1].command().argv,
        [
            "systemctl",
            "disable",
            "--no-reload",
            "--",
            "sidekiq.service"
        ]
    );
    // Check mode predicts the unit gone, and a second plan empty.
    for change in plan.changes {
        change.predict(&mut store);
    }
    let unit = UnitRef {
        manager: Manager::System,
        name: "sidekiq.service".into(),
    };
    assert_eq!(
        store.unit(&unit).unwrap(),
        &unit_state("not-found", "inactive", "")
    );
    assert_eq!(absent().plan(&store).unwrap(), Plan::default());
}

#[test]
fn absent_on_a_stopped_disabled_or_missing_unit_does_only_what_is_left() {
    let stopped = system_facts(Some(UNIT), unit_state("loaded", "inactive", "disabled"));
    assert_eq!(
        described(&absent().plan(&stopped).unwrap()),
        [
            "remove regular file /etc/systemd/system/sidekiq.service",
            "daemon-reload (system manager)"
        ]
    );
    let missing = system_facts(None, unit_state("not-found", "inactive", ""));
    assert_eq!(absent().plan(&missing).unwrap(), Plan::default());
    // Removed by hand, not yet reloaded: the reload is still owed.
    let mut owed = unit_state("not-found", "inactive", "");
    owed.need_daemon_reload = true;
    assert_eq!(
        described(&absent().plan(&system_facts(None, owed)).unwrap()),
        ["daemon-reload (system manager)"]
    );
}

#[test]
fn absent_takes_no_content_nor_run_parameters() {
    assert_eq!(absent().validate(), Ok(()));
    let with_content = SystemdUnit {
        content: Some(UNIT.into()),
        ..absent()
    };
    assert_eq!(
        with_content.validate().unwrap_err().to_string(),
        "`content/src/template` makes no sense with state: absent"
    );
    let enabled = SystemdUnit {
        enabled: Some(true),
        ..absent()
    };
    assert_eq!(
        enabled.validate().unwrap_err().to_string(),
        "`enabled` makes no sense with state: absent"
    );
}

#[test]
fn absent_for_a_missing_user_is_ok() {
    let mut store = user_facts(true, ManagerState::NoSuchUser);
    store.insert(
        FactKey::Accounts(AccountKey::User("deploy".into())),
        Fact::Accounts(AccountFact::User(None)),
    );
    let unit = SystemdUnit {
        scope: Scope::User,
        user: Some("deploy".into()),
        ..absent()
    };
    assert_eq!(unit.plan(&store).unwrap(), Plan::default());
}

#[test]
fn pending_daemon_reload_is_done() {
    let mut state = unit_state("loaded", "active", "enabled");
    state.need_daemon_reload = true;
    let plan = sidekiq().plan(&system_facts(Some(UNIT), state)).unwrap();
    assert_eq!(described(&plan), ["daemon-reload (system manager)"]);
}

#[test]
fn check_mode_prediction_chains_into_service() {
    let mut store = system_facts(None, unit_state("not-found", "inactive", ""));
    for change in sidekiq().plan(&store).unwrap().changes {
        change.predict(&mut store);
    }
    assert_eq!(sidekiq().plan(&store).unwrap(), Plan::default());
}

#[test]
fn template_units_are_written_and_reloaded_only() {
    let mut template = sidekiq();
    template.name = "alert@.service".into();
    assert!(template
        .validate()
        .unwrap_err()
        .to_string()
        .contains("cannot apply to the template"));
    template.enabled = None;
    template.state = None;
    assert_eq!(template.validate(), Ok(()));
    assert_eq!(
        FactKey::Systemd(SystemdKey::Unit(UnitRef {
            manager: Manager::System,
            name: "alert@.service".into()
        }))
        .probe(),
        "echo LoadState=template"
    );
}

#[test]
fn a_user_unit_wanted_by_a_system_only_target_is_rejected() {
    let mut unit = user_unit();
    unit.content = Some(UNIT.into());
    assert_eq!(
        unit.validate().unwrap_err().to_string(),
        "`scope` is user, but the unit's [Install] section names multi-user.target, which only the system manager has: the user's manager would never start the unit; use WantedBy=default.target"
    );
    unit.content = Some(UNIT.replace("multi-user.target", "graphical.target"));
    assert!(unit.validate().is_err());
    // Not enabled by this task, but enabled by hand it would never start either.
    unit.enabled = None;
    assert!(unit.validate().is_err());
    unit.content = Some(UNIT.replace("multi-user.target", "default.target"));
    assert_eq!(unit.validate(), Ok(()));
    // The same file is right for the system manager.
    assert_eq!(sidekiq().validate(), Ok(()));
}

#[test]
fn the_install_hint_names_the_target_of_the_unit_s_manager() {
    let mut unit = user_unit();
    unit.content = Some("[Service]\nExecStart=/bin/true\n".into());
    assert!(unit
        .validate()
        .unwrap_err()
        .to_string()
        .ends_with("add e.g. WantedBy=default.target"));
}

#[test]
fn enabling_a_unit_without_install_section_is_rejected() {
    let mut unit = sidekiq();
    unit.content = Some("[Service]\nExecStart=/bin/true\n".into());
    assert!(unit
        .validate()
        .unwrap_err()
        .to_string()
        .contains("no [Install] section"));
}

fn user_facts(lingering: bool, manager: ManagerState) -> FactStore {
    let mut store = FactStore::default();
    store.insert(
        FactKey::Accounts(AccountKey::User("deploy".into())),
        Fact::Accounts(AccountFact::User(Some(UserInfo {
            uid: Some(1000),
            home: "/home/deploy".into(),
            shell: "/bin/bash".into(),
            primary_group: "deploy".into(),
            groups: vec![],
        }))),
    );
    store.insert(
        FactKey::Systemd(SystemdKey::Linger("deploy".into())),
        Fact::Systemd(SystemdFact::Linger(lingering)),
    );
    for dir in [
        "/home/deploy/.config",
        "/home/deploy/.config/systemd",
        "/home/deploy/.config/systemd/user",
    ] {
        store.insert(
            FactKey::Paths(PathKey::Path(dir.into())),
            Fact::Paths(PathFact::Path(PathState::missing())),
        );
    }
    let path = "/home/deploy/.config/systemd/user/sidekiq.service";
    store.insert(
        FactKey::Paths(PathKey::Path(path.into())),
        Fact::Paths(PathFact::Path(PathState::missing())),
    );
    store.insert(
        FactKey::Paths(PathKey::Content(path.into())),
        Fact::Paths(PathFact::Content(None)),
    );
    let mut state = unit_state("not-found", "inactive", "");
    state.manager = manager;
    store.insert(
        FactKey::Systemd(SystemdKey::Unit(UnitRef {
            manager: Manager::User("deploy".into()),
            name: "sidekiq.service".into(),
        })),
        Fact::Systemd(SystemdFact::Unit(state)),
    );
    verified(&user_unit(), store)
}

/// `store` plus what `systemd-analyze verify` says of `unit`'s file: nothing.
pub(crate) fn verified(unit: &SystemdUnit, mut store: FactStore) -> FactStore {
    for key in Module::facts(unit, &store) {
        if let FactKey::Systemd(SystemdKey::UnitVerify(_)) = key {
            let clean = Verdict::Checked {
                errors: vec![],
                warnings: vec![],
            };
            store.insert(key, Fact::Systemd(SystemdFact::UnitVerify(clean)));
        }
    }
    store
}

fn user_unit() -> SystemdUnit {
    SystemdUnit {
        scope: Scope::User,
        user: Some("deploy".into()),
        content: Some(UNIT.replace("multi-user.target", "default.target")),
        ..sidekiq()
    }
}

#[test]
fn user_unit_creates_directories_owned_by_the_user() {
    let plan = user_unit()
        .plan(&user_facts(true, ManagerState::Running))
        .unwrap();
    assert_eq!(
        described(&plan),
        [
            "create directory /home/deploy/.config",
            "create directory /home/deploy/.config/systemd",
            "create directory /home/deploy/.config/systemd/user",
            "create /home/deploy/.config/systemd/user/sidekiq.service",
            "enable sidekiq.service (user deploy)",
            "daemon-reload (deploy's user manager)",
            "start sidekiq.service (user deploy)"
        ]
    );
    assert!(plan.warnings.is_empty());
}

#[test]
fn user_unit_without_lingering_warns() {
    let plan = user_unit()
        .plan(&user_facts(false, ManagerState::Running))
        .unwrap();
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0]
        .starts_with("lingering is off for deploy: sidekiq.service will be stopped"));
}

#[test]
fn user_unit_with_lingering_planned_later_turns_it_on_first() {
    let mut store = user_facts(false, ManagerState::Down);
    store.promise([(
        FactKey::Systemd(SystemdKey::Linger("deploy".into())),
        Fact::Systemd(SystemdFact::Linger(true)),
    )]);
    let plan = user_unit().plan(&store).unwrap();
    assert!(plan.warnings.is_empty());
    assert!(described(&plan).contains(&"enable lingering for deploy".to_owned()));
}

#[test]
fn user_unit_with_manager_down_and_no_lingering_fails_clearly() {
    let err = user_unit()
        .plan(&user_facts(false, ManagerState::Down))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("deploy's user manager is not running"),
        "{err}"
    );
}

#[test]
fn user_unit_for_missing_user_fails_clearly() {
    let mut store = user_facts(true, ManagerState::NoSuchUser);
    store.insert(
        FactKey::Accounts(AccountKey::User("deploy".into())),
        Fact::Accounts(AccountFact::User(None)),
    );
    assert_eq!(
        user_unit().plan(&store).unwrap_err().to_string(),
        "user deploy does not exist (a user-scope unit needs its user: create it in an earlier task)"
    );
}
