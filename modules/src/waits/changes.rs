//! The change a wait plans: check the condition once a second until it holds, for at
//! most the timeout; past it the task fails.

use crate::change::{Cmd, DomainChange};
use crate::fact::{FactStore, Touch};
use crate::waits::facts::{address_list, PORT_CHECK};
use crate::waits::{WaitFact, WaitKey};

/// Wait until the condition of `key` is `holds`, at most `timeout` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitUntil {
    pub key: WaitKey,
    pub holds: bool,
    pub timeout: u32,
}

/// `$1`: the kind (`port` or `path`); `$2`: the accepted addresses or the path; `$3`:
/// `yes` or `no`, what to wait for; `$4`: the timeout in seconds; `$5`: what is waited
/// for, for the message.
const WAIT: &str = r#"kind=$1 what=$2 want=$3 timeout=$4 label=$5
waited=0
while :; do
  if [ "$kind" = port ]; then
    addrs=$what
    now=$(CHECK)
  elif [ -e "$what" ]; then now=yes; else now=no; fi
  if [ "$now" = "$want" ]; then exit 0; fi
  if [ "$waited" -ge "$timeout" ]; then
    echo "timed out after $timeout s waiting for $label" >&2
    exit 1
  fi
  sleep 1
  waited=$((waited + 1))
done"#;

impl WaitUntil {
    fn label(&self) -> String {
        match (&self.key, self.holds) {
            (WaitKey::Port { host, port }, true) => {
                format!("port {port} on {host} to be listened on")
            }
            (WaitKey::Port { host, port }, false) => {
                format!("port {port} on {host} to be closed")
            }
            (WaitKey::Path(path), true) => format!("{path} to exist"),
            (WaitKey::Path(path), false) => format!("{path} to be gone"),
        }
    }
}

impl DomainChange for WaitUntil {
    fn describe(&self) -> String {
        format!("wait for {} (at most {} s)", self.label(), self.timeout)
    }

    fn command(&self) -> Cmd {
        let (kind, what) = match &self.key {
            WaitKey::Port { host, port } => ("port", address_list(host, *port)),
            WaitKey::Path(path) => ("path", path.clone()),
        };
        let script = WAIT.replace("CHECK", PORT_CHECK);
        Cmd::script(
            &script,
            [
                kind.to_owned(),
                what,
                if self.holds { "yes" } else { "no" }.to_owned(),
                self.timeout.to_string(),
                self.label(),
            ],
        )
    }

    fn touches(&self) -> Vec<Touch> {
        vec![Touch::Key(self.key.clone().into())]
    }

    fn predict(&self, store: &mut FactStore) {
        store.insert(self.key.clone().into(), WaitFact::Holds(self.holds).into());
    }
}
