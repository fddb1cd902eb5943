//! The fact a wait's plan reads: whether its condition holds now.
//!
//! A port is listened on when `/proc/net/tcp` or `/proc/net/tcp6` has a socket in the
//! LISTEN state on that port whose local address is one the wait accepts (the host's
//! address, the wildcard, or its IPv4-mapped form): no tool beyond the shell's
//! builtins. A path exists when `[ -e ]` says so (a link to something that exists
//! counts).

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use serde::Serialize;

use crate::fact::{DomainKey, Fact, FactKey, FactStore, FactUnavailable};
use crate::shell::quote;

/// What a wait waits on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum WaitKey {
    /// A TCP port listened on at one of the host's addresses (`localhost` stands for
    /// `127.0.0.1` and `::1`).
    Port { host: String, port: u16 },
    /// A path that exists.
    Path(String),
}

/// The value of a [`WaitKey`]: whether the port is listened on or the path exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WaitFact {
    Holds(bool),
}

/// Prints `yes` when one of the LISTEN sockets has a local address in `$addrs` (a
/// space-separated list with spaces around), `no` otherwise.
pub(crate) const PORT_CHECK: &str = "found=no; for f in /proc/net/tcp /proc/net/tcp6; do if [ -r \"$f\" ]; then while read -r _ local _ st _; do if [ \"$st\" = 0A ]; then case \"$addrs\" in *\" $local \"*) found=yes;; esac; fi; done < \"$f\"; fi; done; echo \"$found\"";

/// The local addresses, as `/proc/net/tcp{,6}` writes them, a socket listening for
/// `host`:`port` may have; `None` for a host that is not an address of the host
/// itself written as an IP address or `localhost`.
pub fn listen_addresses(host: &str, port: u16) -> Option<Vec<String>> {
    let hosts: Vec<IpAddr> = if host == "localhost" {
        vec!["127.0.0.1".parse().ok()?, "::1".parse().ok()?]
    } else {
        vec![host.parse().ok()?]
    };
    let mut addresses = vec![
        format!("00000000:{port:04X}"),
        format!("{}:{port:04X}", "0".repeat(32)),
    ];
    for ip in hosts {
        match ip {
            IpAddr::V4(v4) => {
                let word = u32::from_le_bytes(v4.octets());
                addresses.push(format!("{word:08X}:{port:04X}"));
                addresses.push(format!("0000000000000000FFFF0000{word:08X}:{port:04X}"));
            }
            IpAddr::V6(v6) => {
                let mut words = String::with_capacity(32);
                for chunk in v6.octets().chunks(4) {
                    let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    let _ = write!(words, "{word:08X}");
                }
                addresses.push(format!("{words}:{port:04X}"));
            }
        }
    }
    addresses.dedup();
    Some(addresses)
}

/// `addrs` as the shell snippets want it: spaces around every address.
pub(crate) fn address_list(host: &str, port: u16) -> String {
    let addresses = listen_addresses(host, port).unwrap_or_default();
    format!(" {} ", addresses.join(" "))
}

impl FactStore {
    /// Whether the wait's condition holds (the port listened on, the path there).
    pub fn wait(&self, key: &WaitKey) -> Result<bool, FactUnavailable> {
        let key = FactKey::Waits(key.clone());
        match self.fact(&key)? {
            Fact::Waits(WaitFact::Holds(holds)) => Ok(*holds),
            _ => Err(FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }
}

impl fmt::Display for WaitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitKey::Port { host, port } => write!(f, "port {port} on {host}"),
            WaitKey::Path(path) => write!(f, "path {path}"),
        }
    }
}

impl DomainKey for WaitKey {
    fn probe(&self) -> String {
        match self {
            WaitKey::Port { host, port } => {
                format!("addrs={}; {PORT_CHECK}", quote(&address_list(host, *port)))
            }
            WaitKey::Path(path) => {
                format!("if [ -e {} ]; then echo yes; else echo no; fi", quote(path))
            }
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match output {
            "yes\n" => Some(Fact::Waits(WaitFact::Holds(true))),
            "no\n" => Some(Fact::Waits(WaitFact::Holds(false))),
            _ => None,
        }
    }

    fn volatile(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_written_as_the_kernel_writes_them() {
        assert_eq!(
            listen_addresses("127.0.0.1", 8080).unwrap(),
            [
                "00000000:1F90",
                "00000000000000000000000000000000:1F90",
                "0100007F:1F90",
                "0000000000000000FFFF00000100007F:1F90",
            ]
        );
        assert!(listen_addresses("::1", 22)
            .unwrap()
            .contains(&"00000000000000000000000001000000:0016".to_owned()));
        assert_eq!(listen_addresses("localhost", 1).unwrap().len(), 5);
        assert_eq!(listen_addresses("example.com", 1), None);
    }

    #[test]
    fn the_probe_says_yes_or_no() {
        let key = WaitKey::Path("/x".into());
        assert_eq!(key.parse("yes\n"), Some(Fact::Waits(WaitFact::Holds(true))));
        assert_eq!(key.parse("no\n"), Some(Fact::Waits(WaitFact::Holds(false))));
        assert_eq!(key.parse("maybe\n"), None);
    }

    /// The probe run here: a port this test listens on is found, a closed one is not.
    #[test]
    fn the_port_probe_finds_a_listening_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let run = |port: u16| {
            let key = WaitKey::Port {
                host: "127.0.0.1".into(),
                port,
            };
            let output = std::process::Command::new("sh")
                .arg("-c")
                .arg(key.probe())
                .output()
                .unwrap();
            String::from_utf8(output.stdout).unwrap()
        };
        assert_eq!(run(port), "yes\n");
        drop(listener);
        assert_eq!(run(port), "no\n");
    }
}
