//! A unit is restarted at most once per run on a host, however many reasons there are.
//!
//! Two rules, applied to a task's plan before it is carried out (or, in check mode,
//! reported), so check mode and apply agree:
//! - a restart of a unit this run already restarted on the host is dropped;
//! - a task's restart of a unit that a notified handler will restart anyway (the
//!   handler is notified already, or by this very task) is left to that handler, which
//!   runs at the end of the play, after every change the restart should pick up. A
//!   task whose plan would then be empty keeps its restart: it must still report
//!   `changed` to notify the handler, and the handler's restart is then dropped.
//!
//! Each dropped restart leaves a note in the task's outcome saying why.

use converge_modules::systemd::SystemdChange;
use std::collections::BTreeSet;

use converge_modules::change::UnitAction;
use converge_modules::fact::UnitRef;
use converge_modules::Change;

fn restarted(change: &Change) -> Option<&UnitRef> {
    match change {
        Change::Systemd(SystemdChange::Unit {
            unit,
            action: UnitAction::Restart,
            ..
        }) => Some(unit),
        _ => None,
    }
}

/// Drops from `changes` the restarts the rules above make redundant, given the units
/// `done` (restarted earlier in the run) and those notified handlers will restart
/// (`handlers`; empty for a handler itself). Returns a note per dropped restart.
pub fn at_most_once(
    changes: &mut Vec<Change>,
    done: &BTreeSet<UnitRef>,
    handlers: &BTreeSet<UnitRef>,
) -> Vec<String> {
    let mut notes = Vec::new();
    changes.retain(|change| match restarted(change) {
        Some(unit) if done.contains(unit) => {
            notes.push(format!(
                "{unit} was restarted earlier in this run: not restarted again"
            ));
            false
        }
        _ => true,
    });
    let others = changes
        .iter()
        .filter(|change| restarted(change).is_none_or(|unit| !handlers.contains(unit)))
        .count();
    if others > 0 {
        changes.retain(|change| match restarted(change) {
            Some(unit) if handlers.contains(unit) => {
                notes.push(format!(
                    "restart of {unit} left to its handler, which restarts it once at the end of the play"
                ));
                false
            }
            _ => true,
        });
    }
    notes
}

/// Records the units `changes` restart.
pub fn note(changes: &[Change], done: &mut BTreeSet<UnitRef>) {
    done.extend(changes.iter().filter_map(restarted).cloned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use converge_modules::fact::Manager;

    fn sidekiq() -> UnitRef {
        UnitRef {
            manager: Manager::System,
            name: "sidekiq.service".into(),
        }
    }

    fn unit(action: UnitAction) -> Change {
        Change::Systemd(SystemdChange::Unit {
            unit: sidekiq(),
            action,
            reload_follows: false,
            verify: None,
        })
    }

    fn reload() -> Change {
        Change::Systemd(SystemdChange::DaemonReload {
            manager: Manager::System,
            unit: Some("sidekiq.service".into()),
            removed: false,
        })
    }

    fn described(changes: &[Change]) -> Vec<String> {
        changes.iter().map(Change::describe).collect()
    }

    #[test]
    fn a_unit_change_notifying_its_restart_handler_restarts_once_at_the_end() {
        let handlers = BTreeSet::from([sidekiq()]);
        let mut done = BTreeSet::new();
        // The unit task: the file is rewritten and reloaded, the restart waits.
        let mut task = vec![reload(), unit(UnitAction::Restart)];
        let notes = at_most_once(&mut task, &done, &handlers);
        assert_eq!(described(&task), ["daemon-reload (system manager)"]);
        assert_eq!(
            notes,
            ["restart of sidekiq.service left to its handler, which restarts it once at the end of the play"]
        );
        note(&task, &mut done);
        // The handler restarts.
        let mut handler = vec![unit(UnitAction::Restart)];
        assert!(at_most_once(&mut handler, &done, &BTreeSet::new()).is_empty());
        note(&handler, &mut done);
        assert_eq!(done, BTreeSet::from([sidekiq()]));
        // A second handler for the same unit does nothing.
        let mut again = vec![unit(UnitAction::Restart)];
        let notes = at_most_once(&mut again, &done, &BTreeSet::new());
        assert!(again.is_empty());
        assert_eq!(
            notes,
            ["sidekiq.service was restarted earlier in this run: not restarted again"]
        );
    }

    #[test]
    fn a_task_that_only_restarts_keeps_its_restart() {
        let handlers = BTreeSet::from([sidekiq()]);
        let mut task = vec![unit(UnitAction::Restart)];
        assert!(at_most_once(&mut task, &BTreeSet::new(), &handlers).is_empty());
        assert_eq!(described(&task), ["restart sidekiq.service"]);
    }

    #[test]
    fn starts_and_other_units_are_left_alone() {
        let done = BTreeSet::from([sidekiq()]);
        let mut task = vec![unit(UnitAction::Start), unit(UnitAction::Enable)];
        assert!(at_most_once(&mut task, &done, &BTreeSet::new()).is_empty());
        assert_eq!(task.len(), 2);
    }
}
