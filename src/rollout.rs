//! Rolling changes: how a play's hosts are cut into batches (`serial`), when a rollout
//! stops (`max_fail_percentage`, `any_errors_fatal`), and what the recap says about it.
//!
//! `serial` is a number of hosts, a percentage of the play's hosts, or a list of
//! those (`[1, "25%", "100%"]`: a canary, then a quarter, then the rest), the last
//! size repeating until every host had its turn, as in Ansible. A batch whose share of
//! failed hosts is above `max_fail_percentage` (default 0) stops the rollout: later
//! batches are not run, and the recap says which batches ran and why it stopped.

use std::fmt::{self, Write as _};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// One batch size of `serial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Hosts(usize),
    Percent(u8),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Hosts(count) => write!(f, "{count}"),
            Step::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// A play's `serial`: batch sizes, the last one repeating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serial(pub Vec<Step>);

impl Serial {
    /// Why these sizes cannot work, if they cannot.
    pub fn problem(&self) -> Option<&'static str> {
        if self.0.is_empty() {
            return Some("serial must list at least one batch size");
        }
        self.0.iter().find_map(|step| match step {
            Step::Hosts(0) => Some("serial must be at least 1"),
            Step::Percent(0 | 101..) => Some("a serial percentage must be between 1% and 100%"),
            _ => None,
        })
    }

    /// The sizes of the batches `hosts` hosts are cut into.
    pub fn batches(&self, hosts: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut left = hosts;
        let mut steps = self.0.iter();
        let mut step = steps.next().copied().unwrap_or(Step::Hosts(usize::MAX));
        while left > 0 {
            let size = match step {
                Step::Hosts(count) => count,
                // As Ansible: rounded down, and at least one host.
                Step::Percent(percent) => hosts * usize::from(percent) / 100,
            }
            .clamp(1, left);
            sizes.push(size);
            left -= size;
            if let Some(next) = steps.next() {
                step = *next;
            }
        }
        sizes
    }
}

impl<'de> Deserialize<'de> for Serial {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl Visitor<'_> for StepVisitor {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of hosts or a percentage such as \"25%\"")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Step, E> {
                usize::try_from(value)
                    .map(Step::Hosts)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Step, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::invalid_type(de::Unexpected::Signed(value), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Step, E> {
                let invalid = || E::invalid_value(de::Unexpected::Str(value), &self);
                match value.trim().strip_suffix('%') {
                    Some(percent) => percent
                        .trim()
                        .parse::<u8>()
                        .map(Step::Percent)
                        .map_err(|_| invalid()),
                    None => value
                        .trim()
                        .parse::<usize>()
                        .map(Step::Hosts)
                        .map_err(|_| invalid()),
                }
            }
        }

        struct SerialVisitor;
        impl<'de> Visitor<'de> for SerialVisitor {
            type Value = Serial;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of hosts, a percentage such as \"25%\", or a list of them")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Serial, E> {
                StepVisitor.visit_u64(value).map(|step| Serial(vec![step]))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Serial, E> {
                StepVisitor.visit_i64(value).map(|step| Serial(vec![step]))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Serial, E> {
                StepVisitor.visit_str(value).map(|step| Serial(vec![step]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Serial, A::Error> {
                struct StepSeed;
                impl<'de> de::DeserializeSeed<'de> for StepSeed {
                    type Value = Step;
                    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Step, D::Error> {
                        d.deserialize_any(StepVisitor)
                    }
                }
                let mut steps = Vec::new();
                while let Some(step) = seq.next_element_seed(StepSeed)? {
                    steps.push(step);
                }
                Ok(Serial(steps))
            }
        }
        deserializer.deserialize_any(SerialVisitor)
    }
}

/// One batch of a rollout, for the recap and the JSON report.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub hosts: Vec<String>,
    /// Whether the batch ran (`false`: the rollout had stopped before it).
    pub ran: bool,
    /// Hosts of the batch that failed or could not be reached.
    pub failed: usize,
}

/// How a play's rollout went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rollout {
    pub batches: Vec<Batch>,
    /// Why the rollout stopped before its last batch (`None`: it did not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Why a batch stops the rollout, if it does: more than `max_fail_percentage` of its
/// hosts failed, or any did under `any_errors_fatal`.
pub fn stop_reason(
    failed: usize,
    hosts: usize,
    max_fail_percentage: u8,
    any_errors_fatal: bool,
) -> Option<String> {
    if failed == 0 {
        return None;
    }
    if any_errors_fatal {
        return Some(format!(
            "{failed} of {hosts} hosts in an earlier batch failed (any_errors_fatal)"
        ));
    }
    (failed * 100 > hosts * usize::from(max_fail_percentage)).then(|| {
        format!(
            "{failed} of {hosts} hosts in an earlier batch failed (max_fail_percentage {max_fail_percentage})"
        )
    })
}

/// The recap lines of the rollouts of `plays`: one per batch, and why a rollout
/// stopped.
pub fn human(plays: &[(String, &Rollout)]) -> String {
    let mut out = String::new();
    for (play, rollout) in plays {
        let total = rollout.batches.len();
        let _ = writeln!(out, "rollout of {play}:");
        for (index, batch) in rollout.batches.iter().enumerate() {
            let hosts = batch.hosts.join(", ");
            let state = if !batch.ran {
                "not run".to_owned()
            } else if batch.failed > 0 {
                format!("ran, {} of {} failed", batch.failed, batch.hosts.len())
            } else {
                "ran".to_owned()
            };
            let _ = writeln!(out, "  batch {}/{total} ({hosts}): {state}", index + 1);
        }
        if let Some(reason) = &rollout.stopped {
            let _ = writeln!(out, "  stopped: {reason}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial(yaml: &str) -> Serial {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_number_a_percentage_and_a_list() {
        assert_eq!(serial("2").batches(5), [2, 2, 1]);
        assert_eq!(serial("\"40%\"").batches(5), [2, 2, 1]);
        assert_eq!(serial("10%").batches(5), [1, 1, 1, 1, 1]);
        assert_eq!(serial("[1, \"25%\", \"100%\"]").batches(9), [1, 2, 6]);
        assert_eq!(serial("[1, 3]").batches(10), [1, 3, 3, 3]);
        assert_eq!(serial("[5]").batches(2), [2]);
        assert_eq!(serial("3").batches(0), Vec::<usize>::new());
    }

    #[test]
    fn impossible_sizes_are_named() {
        assert_eq!(serial("0").problem(), Some("serial must be at least 1"));
        assert_eq!(
            serial("[1, \"0%\"]").problem(),
            Some("a serial percentage must be between 1% and 100%")
        );
        assert_eq!(
            serial("[]").problem(),
            Some("serial must list at least one batch size")
        );
        assert_eq!(serial("[1, \"100%\"]").problem(), None);
        let error = serde_yaml::from_str::<Serial>("-1")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("invalid type: integer `-1`"), "{error}");
        let error = serde_yaml::from_str::<Serial>("lots")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "invalid value: string \"lots\", expected a number of hosts or a percentage"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_rollout_stops_above_its_failure_budget() {
        assert_eq!(stop_reason(0, 4, 0, true), None);
        assert_eq!(
            stop_reason(1, 2, 0, false).as_deref(),
            Some("1 of 2 hosts in an earlier batch failed (max_fail_percentage 0)")
        );
        assert_eq!(stop_reason(1, 4, 25, false), None);
        assert!(stop_reason(2, 4, 25, false).is_some());
        assert_eq!(
            stop_reason(1, 4, 50, true).as_deref(),
            Some("1 of 4 hosts in an earlier batch failed (any_errors_fatal)")
        );
    }

    #[test]
    fn the_recap_names_every_batch_and_the_reason() {
        let rollout = Rollout {
            batches: vec![
                Batch {
                    hosts: vec!["app1".into()],
                    ran: true,
                    failed: 1,
                },
                Batch {
                    hosts: vec!["app2".into(), "app3".into()],
                    ran: false,
                    failed: 0,
                },
            ],
            stopped: Some("1 of 1 hosts in an earlier batch failed (max_fail_percentage 0)".into()),
        };
        assert_eq!(
            human(&[("deploy".into(), &rollout)]),
            "rollout of deploy:\n  batch 1/2 (app1): ran, 1 of 1 failed\n  batch 2/2 (app2, app3): not run\n  stopped: 1 of 1 hosts in an earlier batch failed (max_fail_percentage 0)\n"
        );
    }
}
