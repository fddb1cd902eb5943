//! `wait_for`: wait until a TCP port on the host is listened on (or closed), or a path
//! exists (or is gone), for at most `timeout` seconds.
//!
//! The condition is a fact like any other, read in the batched read, and read again
//! after any change on the host: when it already holds, the task is `ok` and costs
//! nothing; otherwise it waits (`changed`), and past the timeout it fails. Check mode
//! says what it would wait for, and later tasks are planned as if it held.

use serde::Deserialize;

use crate::change::Change;
use crate::fact::{FactKey, FactStore};
use crate::waits::facts::listen_addresses;
use crate::waits::{WaitKey, WaitUntil};
use crate::{names, Module, ParamError, Plan, PlanError};

/// The longest a wait may last: an hour.
pub const MAX_TIMEOUT: u32 = 3600;

/// What to wait for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitState {
    /// The port is listened on; the path exists.
    #[default]
    Started,
    /// The port is not listened on; the path does not exist.
    Stopped,
    /// The path exists (as `started`).
    Present,
    /// The path does not exist (as `stopped`).
    Absent,
}

/// Parameters of the `wait_for` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    #[serde(default)]
    pub port: Option<u16>,
    /// The address the port is listened on: an IP address of the host, or
    /// `localhost`. Default `127.0.0.1` (a wildcard listener counts too).
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub state: WaitState,
    /// Seconds; default 300.
    #[serde(default = "default_timeout")]
    pub timeout: u32,
}

fn default_timeout() -> u32 {
    300
}

impl WaitFor {
    fn key(&self) -> WaitKey {
        match (&self.path, self.port) {
            (Some(path), _) => WaitKey::Path(path.clone()),
            (None, port) => WaitKey::Port {
                host: self.host.clone().unwrap_or_else(|| "127.0.0.1".to_owned()),
                port: port.unwrap_or_default(),
            },
        }
    }

    fn holds(&self) -> bool {
        matches!(self.state, WaitState::Started | WaitState::Present)
    }
}

impl Module for WaitFor {
    const NAME: &'static str = "wait_for";

    fn validate(&self) -> Result<(), ParamError> {
        match (&self.path, self.port) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(ParamError::OneOf {
                    options: "port and path",
                })
            }
            (Some(path), None) => {
                names::file_path(path)?;
                if self.host.is_some() {
                    return Err(ParamError::Invalid {
                        param: "host",
                        reason: "goes with port, not path".to_owned(),
                    });
                }
            }
            (None, Some(port)) => {
                if port == 0 {
                    return Err(ParamError::Invalid {
                        param: "port",
                        reason: "must be 1 to 65535".to_owned(),
                    });
                }
                if matches!(self.state, WaitState::Present | WaitState::Absent) {
                    return Err(ParamError::Invalid {
                        param: "state",
                        reason: "for a port is started or stopped".to_owned(),
                    });
                }
                let host = self.host.as_deref().unwrap_or("127.0.0.1");
                if listen_addresses(host, port).is_none() {
                    return Err(ParamError::Invalid {
                        param: "host",
                        reason: format!(
                            "{host:?} is not an IP address or localhost: wait_for checks the host's own listening sockets"
                        ),
                    });
                }
            }
        }
        if self.timeout > MAX_TIMEOUT {
            return Err(ParamError::Invalid {
                param: "timeout",
                reason: format!("is at most {MAX_TIMEOUT} seconds"),
            });
        }
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        vec![self.key().into()]
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let key = self.key();
        if facts.wait(&key)? == self.holds() {
            return Ok(Plan::default());
        }
        Ok(Plan::of(vec![Change::Waits(WaitUntil {
            key,
            holds: self.holds(),
            timeout: self.timeout,
        })]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::DomainChange as _;
    use crate::waits::WaitFact;

    fn module(yaml: &str) -> WaitFor {
        serde_json::from_str(yaml).unwrap()
    }

    fn plan(module: &WaitFor, holds: bool) -> Plan {
        let mut facts = FactStore::default();
        facts.insert(module.key().into(), WaitFact::Holds(holds).into());
        module.plan(&facts).unwrap()
    }

    #[test]
    fn a_condition_that_holds_is_ok_and_one_that_does_not_is_waited_for() {
        let port = module(r#"{"port": 8080}"#);
        assert!(port.validate().is_ok());
        assert_eq!(plan(&port, true), Plan::default());
        let waits = plan(&port, false);
        assert_eq!(
            waits.changes[0].describe(),
            "wait for port 8080 on 127.0.0.1 to be listened on (at most 300 s)"
        );
        let gone = module(r#"{"path": "/run/app.pid", "state": "absent", "timeout": 5}"#);
        assert!(gone.validate().is_ok());
        assert_eq!(plan(&gone, false), Plan::default());
        assert_eq!(
            plan(&gone, true).changes[0].describe(),
            "wait for /run/app.pid to be gone (at most 5 s)"
        );
    }

    #[test]
    fn check_mode_records_the_condition_as_holding() {
        let port = module(r#"{"port": 80, "state": "stopped"}"#);
        let mut facts = FactStore::default();
        facts.insert(port.key().into(), WaitFact::Holds(true).into());
        for change in port.plan(&facts).unwrap().changes {
            change.predict(&mut facts);
        }
        assert_eq!(port.plan(&facts).unwrap(), Plan::default());
    }

    #[test]
    fn bad_parameters_are_refused() {
        for (yaml, message) in [
            ("{}", "give exactly one of port and path"),
            (r#"{"port": 1, "path": "/x"}"#, "give exactly one of port and path"),
            (r#"{"port": 0}"#, "`port` must be 1 to 65535"),
            (r#"{"port": 1, "state": "present"}"#, "`state` for a port is started or stopped"),
            (r#"{"path": "/x", "host": "::1"}"#, "`host` goes with port, not path"),
            (
                r#"{"port": 1, "host": "db.example"}"#,
                "`host` \"db.example\" is not an IP address or localhost: wait_for checks the host's own listening sockets",
            ),
            (r#"{"port": 1, "timeout": 3601}"#, "`timeout` is at most 3600 seconds"),
        ] {
            assert_eq!(
                module(yaml).validate().unwrap_err().to_string(),
                message,
                "{yaml}"
            );
        }
    }

    /// The wait's own script, run here: it returns at once when the path is there,
    /// and fails naming what it waited for past the timeout.
    #[test]
    fn the_wait_script_returns_or_times_out() {
        let path = std::env::temp_dir().join(format!("converge-wait-{}", std::process::id()));
        let change = |holds: bool| WaitUntil {
            key: WaitKey::Path(path.display().to_string()),
            holds,
            timeout: 1,
        };
        let run = |change: WaitUntil| {
            let argv = change.command().argv;
            std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .output()
                .unwrap()
        };
        let output = run(change(false));
        assert!(output.status.success());
        let output = run(change(true));
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("to exist"));
    }
}
