//! The changes a package plan makes, each one `apt-get` run non-interactively:
//! `DEBIAN_FRONTEND=noninteractive`, a changed configuration file keeps the host's
//! version (`--force-confdef`, `--force-confold`), and dpkg's lock, held by another apt
//! (an unattended upgrade), is waited for up to [`LOCK_TIMEOUT`] seconds rather than
//! failed on.
//!
//! An install with `start_services: false` puts a `policy-rc.d` answering 101 ("action
//! forbidden") in place for the length of the `apt-get` call, as Debian's tools for
//! building images do: the packages' maintainer scripts install and enable their
//! services, but `deb-systemd-invoke` and `invoke-rc.d` do not start them. It is
//! removed when the script exits, failed or not; one the host already had is put back.

use crate::change::{Cmd, DomainChange};
use crate::fact::{FactStore, Touch};
use crate::packages::{Dpkg, PackageFact, PackageKey};

/// How long `apt-get` waits for dpkg's lock before it fails, in seconds.
pub const LOCK_TIMEOUT: u32 = 120;

/// One package an install brings to a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub name: String,
    /// A pinned version: installed as `NAME=VERSION`, downgrading if need be.
    pub pin: Option<String>,
    /// The version installed now (an upgrade, a downgrade or a finished install).
    pub from: Option<String>,
    /// The version it will have: the pin, or apt's candidate (`None`: only known once
    /// the package lists are refreshed, and then the newest they offer).
    pub to: Option<String>,
}

/// A change to the host's packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageChange {
    /// `apt-get update`.
    RefreshCache,
    /// `apt-get install` of these packages, in one transaction.
    Install {
        packages: Vec<Install>,
        /// `false`: no service is started by the install (see the module's doc).
        start_services: bool,
    },
    /// `apt-get remove` of these packages (name, installed version).
    Remove { packages: Vec<(String, String)> },
}

const REFRESH: &str = r#"set -eu
lock=$1
export DEBIAN_FRONTEND=noninteractive
apt-get -q -y -o "DPkg::Lock::Timeout=$lock" update
mkdir -p /var/lib/apt/periodic
touch /var/lib/apt/periodic/update-success-stamp"#;

const INSTALL: &str = r#"set -eu
lock=$1 start=$2
shift 2
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d saved=
if [ "$start" = no ]; then
  if [ -e "$policy" ] || [ -h "$policy" ]; then
    saved=$policy.converge-saved
    mv -f "$policy" "$saved"
  fi
  trap 'rm -f "$policy" "$policy.converge-new"; if [ -n "$saved" ]; then mv -f "$saved" "$policy"; fi' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  printf '#!/bin/sh\n# converge: no service starts during this install\nexit 101\n' > "$policy.converge-new"
  chmod 0755 "$policy.converge-new"
  mv -f "$policy.converge-new" "$policy"
fi
apt-get -q -y -o "DPkg::Lock::Timeout=$lock" -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --allow-downgrades install "$@""#;

const REMOVE: &str = r#"set -eu
lock=$1
shift
export DEBIAN_FRONTEND=noninteractive
apt-get -q -y -o "DPkg::Lock::Timeout=$lock" remove "$@""#;

fn plural(count: usize) -> &'static str {
    if count == 1 {
        "package"
    } else {
        "packages"
    }
}

impl Install {
    fn describe(&self) -> String {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) => format!("{} {from} -> {to}", self.name),
            (Some(from), None) => format!("{} {from} -> newest", self.name),
            (None, Some(to)) => format!("{} {to}", self.name),
            (None, None) => self.name.clone(),
        }
    }

    /// The argument `apt-get install` gets.
    fn argument(&self) -> String {
        match &self.pin {
            Some(version) => format!("{}={version}", self.name),
            None => self.name.clone(),
        }
    }
}

impl DomainChange for PackageChange {
    fn describe(&self) -> String {
        match self {
            PackageChange::RefreshCache => "refresh apt's package lists".to_owned(),
            PackageChange::Install {
                packages,
                start_services,
            } => {
                let verb = if packages.iter().all(|p| p.from.is_some() && p.pin.is_none()) {
                    "upgrade"
                } else {
                    "install"
                };
                let list: Vec<String> = packages.iter().map(Install::describe).collect();
                let quiet = if *start_services {
                    ""
                } else {
                    " (services not started)"
                };
                format!(
                    "{verb} {} {}{quiet}",
                    plural(packages.len()),
                    list.join(", ")
                )
            }
            PackageChange::Remove { packages } => {
                let list: Vec<String> = packages
                    .iter()
                    .map(|(name, version)| format!("{name} {version}"))
                    .collect();
                format!("remove {} {}", plural(packages.len()), list.join(", "))
            }
        }
    }

    fn command(&self) -> Cmd {
        let lock = LOCK_TIMEOUT.to_string();
        match self {
            PackageChange::RefreshCache => Cmd::script(REFRESH, [lock]),
            PackageChange::Install {
                packages,
                start_services,
            } => {
                let start = if *start_services { "yes" } else { "no" };
                let args = [lock, start.to_owned()]
                    .into_iter()
                    .chain(packages.iter().map(Install::argument));
                Cmd::script(INSTALL, args)
            }
            PackageChange::Remove { packages } => Cmd::script(
                REMOVE,
                std::iter::once(lock).chain(packages.iter().map(|(name, _)| name.clone())),
            ),
        }
    }

    /// A package's maintainer scripts may add users, units and files anywhere, and a
    /// refresh changes every candidate: nothing known can be trusted afterwards.
    fn touches(&self) -> Vec<Touch> {
        vec![Touch::Everything]
    }

    /// An install leaves each package installed at its expected version (an empty one
    /// where only the refreshed lists will tell); a removal, absent; a refresh, fresh
    /// lists whose content is not known yet. What else a new package would bring
    /// (units, system users and groups its maintainer scripts add, files) cannot be
    /// known from here: it is recorded as unsettled, so a later task missing one of
    /// them is pending on the package.
    fn predict(&self, store: &mut FactStore) {
        match self {
            PackageChange::RefreshCache => {
                store.insert(PackageKey::Cache.into(), PackageFact::RefreshPlanned.into());
            }
            PackageChange::Install { packages, .. } => {
                for package in packages {
                    if package.from.is_none() {
                        store.unsettle("package", &package.name, "not yet installed");
                    }
                    let version = package.to.clone().unwrap_or_default();
                    store.insert(
                        PackageKey::Dpkg(package.name.clone()).into(),
                        PackageFact::Dpkg(Dpkg::Installed(version)).into(),
                    );
                }
            }
            PackageChange::Remove { packages } => {
                for (name, _) in packages {
                    store.insert(
                        PackageKey::Dpkg(name.clone()).into(),
                        PackageFact::Dpkg(Dpkg::Absent).into(),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An unpinned install, for the plan's tests too.
    pub(crate) fn install(name: &str, from: Option<&str>, to: Option<&str>) -> Install {
        Install {
            name: name.into(),
            pin: None,
            from: from.map(Into::into),
            to: to.map(Into::into),
        }
    }

    #[test]
    fn a_new_package_leaves_what_it_brings_unsettled_and_an_upgrade_does_not() {
        let mut store = FactStore::default();
        PackageChange::Install {
            packages: vec![
                install("redis-server", None, Some("5:7.0.15-1")),
                install("hello", Some("2.10-2"), Some("2.10-3")),
            ],
            start_services: false,
        }
        .predict(&mut store);
        let names: Vec<&str> = store.unsettled().iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["redis-server"]);
    }

    #[test]
    fn a_missing_unit_or_user_is_pending_on_the_package_named_like_it() {
        let mut store = FactStore::default();
        store.unsettle("package", "ruby-sidekiq", "not yet installed");
        store.unsettle("package", "redis-server", "not yet installed");
        let unit = crate::PlanError::NoSuchUnit {
            unit: "redis-server.service".into(),
            hint: "",
        };
        assert_eq!(
            unit.pending_on(&store).as_deref(),
            Some("depends on package redis-server, not yet installed: unit redis-server.service does not exist yet")
        );
        let user = crate::PlanError::NoSuchUser {
            user: "redis".into(),
            hint: "",
        };
        assert_eq!(
            user.pending_on(&store).as_deref(),
            Some(
                "depends on package redis-server, not yet installed: user redis does not exist yet"
            )
        );
        // Nothing alike: every planned package is named.
        let group = crate::PlanError::NoSuchGroup {
            group: "app".into(),
            hint: "",
        };
        assert_eq!(
            group.pending_on(&store).as_deref(),
            Some("depends on package ruby-sidekiq, not yet installed; package redis-server, not yet installed: group app does not exist yet")
        );
        // Another kind of error is never pending; nothing planned, nothing pending.
        let masked = crate::PlanError::Masked {
            unit: "redis-server.service".into(),
            action: "start",
        };
        assert_eq!(masked.pending_on(&store), None);
        assert_eq!(unit.pending_on(&FactStore::default()), None);
    }

    #[test]
    fn changes_describe_what_apt_will_do() {
        let new = PackageChange::Install {
            packages: vec![install("hello", None, Some("2.10-3"))],
            start_services: true,
        };
        assert_eq!(new.describe(), "install package hello 2.10-3");
        let quiet = PackageChange::Install {
            packages: vec![
                install("redis-server", None, Some("5:7.0.15-1~deb12u1")),
                install("at", None, None),
            ],
            start_services: false,
        };
        assert_eq!(
            quiet.describe(),
            "install packages redis-server 5:7.0.15-1~deb12u1, at (services not started)"
        );
        let upgrade = PackageChange::Install {
            packages: vec![install("hello", Some("2.10-2"), Some("2.10-3"))],
            start_services: true,
        };
        assert_eq!(upgrade.describe(), "upgrade package hello 2.10-2 -> 2.10-3");
        let remove = PackageChange::Remove {
            packages: vec![("hello".into(), "2.10-3".into())],
        };
        assert_eq!(remove.describe(), "remove package hello 2.10-3");
    }

    #[test]
    fn install_is_non_interactive_keeps_configuration_and_waits_for_the_lock() {
        let mut pinned = install("hello", None, Some("2.10-2"));
        pinned.pin = Some("2.10-2".into());
        let cmd = PackageChange::Install {
            packages: vec![pinned, install("at", None, None)],
            start_services: false,
        }
        .command();
        assert_eq!(&cmd.argv[4..], ["120", "no", "hello=2.10-2", "at"]);
        let script = &cmd.argv[2];
        assert!(script.contains("export DEBIAN_FRONTEND=noninteractive"));
        assert!(script.contains("--force-confdef -o Dpkg::Options::=--force-confold"));
        assert!(
            script.contains(r#"apt-get -q -y -o "DPkg::Lock::Timeout=$lock""#),
            "{script}"
        );
        assert!(script.contains("exit 101"));
        assert!(script.contains("trap 'rm -f \"$policy\""));
    }

    #[test]
    fn check_mode_sees_the_packages_installed_or_removed() {
        let mut store = FactStore::default();
        PackageChange::Install {
            packages: vec![install("hello", None, Some("2.10-3"))],
            start_services: true,
        }
        .predict(&mut store);
        assert!(matches!(
            store.dpkg("hello"),
            Ok(crate::packages::facts::Answer::Known(Dpkg::Installed(v))) if v == "2.10-3"
        ));
        PackageChange::Remove {
            packages: vec![("hello".into(), "2.10-3".into())],
        }
        .predict(&mut store);
        assert!(matches!(
            store.dpkg("hello"),
            Ok(crate::packages::facts::Answer::Known(Dpkg::Absent))
        ));
        PackageChange::RefreshCache.predict(&mut store);
        assert_eq!(store.cache_age(), Ok(Some(0)));
    }
}
