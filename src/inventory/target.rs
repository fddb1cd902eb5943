//! A host's connection settings, read from its merged variables.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{InventoryError, InventoryHost, SETTINGS};
use crate::transport::{Connection, HostKeyChecking, TargetSettings};

// What a connection setting's value was checked against, for error messages.
const EXPECT_TEXT: &str = "a non-empty string";
const EXPECT_PORT: &str = "an integer from 1 to 65535";
const EXPECT_CONNECTION: &str = "one of ssh, local";
const EXPECT_HOST_KEY_CHECKING: &str = "one of strict, accept-new, off";

impl InventoryHost {
    /// The connection settings the host's merged vars give (aliases applied), for
    /// [`Target::new`](crate::transport::Target::new) to fold with the other sources.
    ///
    /// A setting whose value is null counts as unset. A leading `~` in `identity_file`
    /// is the local `$HOME`.
    pub fn settings(&self) -> Result<TargetSettings, InventoryError> {
        let home = std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from);
        self.settings_with(home.as_deref())
    }

    pub(super) fn settings_with(
        &self,
        home: Option<&Path>,
    ) -> Result<TargetSettings, InventoryError> {
        let [host, port, user, identity_file, connection, host_key_checking] = SETTINGS;
        let host = match self.setting(host) {
            Some((var, value)) => Some(self.text(var, value)?),
            None => None,
        };
        let port = match self.setting(port) {
            Some((var, value)) => {
                let number = match value {
                    Value::Number(number) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
                    Value::String(text) => text.trim().parse::<u16>().ok(),
                    _ => None,
                };
                match number {
                    Some(number) if number != 0 => Some(number),
                    _ => return Err(self.invalid(var, value, EXPECT_PORT)),
                }
            }
            None => None,
        };
        let user = match self.setting(user) {
            Some((var, value)) => Some(self.text(var, value)?),
            None => None,
        };
        let identity_file = match self.setting(identity_file) {
            Some((var, value)) => Some(expand_tilde(&self.text(var, value)?, home)),
            None => None,
        };
        let connection = match self.setting(connection) {
            Some((var, value)) => Some(match value.as_str() {
                Some("ssh") => Connection::Ssh,
                Some("local") => Connection::Local,
                _ => return Err(self.invalid(var, value, EXPECT_CONNECTION)),
            }),
            None => None,
        };
        let host_key_checking = match self.setting(host_key_checking) {
            Some((var, value)) => Some(match value.as_str() {
                Some("strict") => HostKeyChecking::Strict,
                Some("accept-new") => HostKeyChecking::AcceptNew,
                Some("off") => HostKeyChecking::Off,
                _ => return Err(self.invalid(var, value, EXPECT_HOST_KEY_CHECKING)),
            }),
            None => None,
        };
        Ok(TargetSettings {
            host,
            port,
            user,
            identity_file,
            connection,
            host_key_checking,
            ..TargetSettings::default()
        })
    }

    /// The first non-null spelling of a setting.
    fn setting(&self, spellings: &[&'static str]) -> Option<(&'static str, &Value)> {
        spellings.iter().find_map(|&var| {
            self.vars
                .get(var)
                .filter(|value| !value.is_null())
                .map(|value| (var, value))
        })
    }

    fn text(&self, var: &str, value: &Value) -> Result<String, InventoryError> {
        match value {
            Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            _ => Err(self.invalid(var, value, EXPECT_TEXT)),
        }
    }

    fn invalid(&self, var: &str, value: &Value, expected: &'static str) -> InventoryError {
        InventoryError::InvalidVar {
            host: self.name.clone(),
            var: var.to_string(),
            value: value.to_string(),
            expected,
        }
    }
}

/// `~` and `~/...` under `home`; anything else as it is.
pub(crate) fn expand_tilde(path: &str, home: Option<&Path>) -> PathBuf {
    match (home, path.strip_prefix('~')) {
        (Some(home), Some("")) => home.to_path_buf(),
        (Some(home), Some(rest)) if rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}
