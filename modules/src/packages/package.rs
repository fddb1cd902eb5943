//! `package`: Debian packages present (at a pinned version, or the newest apt offers)
//! or absent, installed with apt.
//!
//! The plan reads each package's state from dpkg's database in the batched read every
//! task's facts share, so a run with nothing to install costs no extra command; apt's
//! cache (`apt-cache policy`) is asked only where its answer matters: for `latest`,
//! and for a package to be installed, whose version check mode then shows. All the
//! packages of a task are installed (or removed) in one `apt-get` call, after the
//! package lists are refreshed when `update_cache` asks for it (only when older than
//! `cache_valid_time`, if that is given).

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::changes::{Install, PackageChange};
use super::facts::Answer;
use crate::change::Change;
use crate::fact::{FactKey, FactStore};
use crate::packages::{Dpkg, PackageKey, Policy};
use crate::{names, Module, ParamError, Plan, PlanError};

/// One package name or a list of them.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NamesVisitor;
        impl<'de> Visitor<'de> for NamesVisitor {
            type Value = Names;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a package name or a list of package names")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Names, E> {
                Ok(Names::One(name.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Names, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element()? {
                    names.push(name);
                }
                Ok(Names::Many(names))
            }
        }
        deserializer.deserialize_any(NamesVisitor)
    }
}

impl Names {
    fn as_slice(&self) -> &[String] {
        match self {
            Names::One(name) => std::slice::from_ref(name),
            Names::Many(names) => names,
        }
    }
}

/// What the packages should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    /// Installed, at whatever version (or at `version`).
    #[default]
    Present,
    /// Not installed (configuration files may stay, as `apt-get remove` leaves them).
    Absent,
    /// Installed at apt's candidate version: upgraded when the cache offers a newer one.
    Latest,
}

fn yes() -> bool {
    true
}

/// Parameters of the `package` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: Names,
    #[serde(default)]
    pub state: PackageState,
    /// The version to install (one package only), downgrading if need be.
    #[serde(default)]
    pub version: Option<String>,
    /// Refresh the package lists (`apt-get update`) before installing.
    #[serde(default)]
    pub update_cache: bool,
    /// Refresh them only when older than this many seconds.
    #[serde(default)]
    pub cache_valid_time: Option<u64>,
    /// `false`: the install starts none of the packages' services.
    #[serde(default = "yes")]
    pub start_services: bool,
}

impl Package {
    fn names(&self) -> &[String] {
        self.name.as_slice()
    }

    /// Whether the plan asks apt's cache about `name`: for `latest`, and for a package
    /// that will be installed (known once dpkg's answer is).
    fn needs_policy(&self, name: &str, known: &FactStore) -> bool {
        match self.state {
            PackageState::Latest => true,
            PackageState::Absent => false,
            PackageState::Present => match known.dpkg(name) {
                Ok(Answer::Known(Dpkg::Installed(version))) => self
                    .version
                    .as_ref()
                    .is_some_and(|pinned| pinned != version),
                Ok(Answer::Known(_)) => true,
                Ok(Answer::NoApt(_)) | Err(_) => false,
            },
        }
    }

    /// Whether the package lists are to be refreshed.
    fn refresh(&self, facts: &FactStore) -> Result<bool, PlanError> {
        if !self.update_cache {
            return Ok(false);
        }
        let age = facts.cache_age()?;
        Ok(match self.cache_valid_time {
            None => true,
            Some(valid) => age.is_none_or(|age| age > valid),
        })
    }

    /// What to install for `name` (`None`: it is as wanted).
    fn install(
        &self,
        name: &str,
        state: &Dpkg,
        facts: &FactStore,
        refresh: bool,
    ) -> Result<Option<Install>, PlanError> {
        let installed = match state {
            Dpkg::Installed(version) => Some(version),
            Dpkg::Absent | Dpkg::Unfinished { .. } => None,
        };
        let policy = |facts: &FactStore| -> Result<Policy, PlanError> {
            match facts.policy(name)? {
                Answer::Known(policy) => Ok(policy.clone()),
                Answer::NoApt(found) => Err(no_apt(facts, found)),
            }
        };
        // Where the lists are about to be refreshed, what the old ones lack proves nothing.
        let unknown = |reason: String| -> Result<(), PlanError> {
            if refresh {
                Ok(())
            } else {
                Err(PlanError::NoCandidate {
                    package: name.to_owned(),
                    reason,
                })
            }
        };
        let (pin, to) = match (&self.version, self.state) {
            (Some(pinned), _) => {
                if installed == Some(pinned) {
                    return Ok(None);
                }
                let policy = policy(facts)?;
                if !policy.versions.contains(pinned) {
                    let known = if policy.versions.is_empty() {
                        "none".to_owned()
                    } else {
                        policy.versions.join(", ")
                    };
                    unknown(format!(
                        "has no version {pinned} in apt's cache (it knows: {known}); update_cache: true refreshes the package lists"
                    ))?;
                }
                (Some(pinned.clone()), Some(pinned.clone()))
            }
            (None, PackageState::Present) if installed.is_some() => return Ok(None),
            // The lists about to be refreshed may offer a newer version than they do
            // now: `apt-get install` takes whatever is newest then (nothing, if the
            // installed one still is).
            (None, PackageState::Latest) if refresh => (None, None),
            (None, _) => {
                let policy = policy(facts)?;
                match (&policy.candidate, installed) {
                    // `latest`, and apt offers what is installed (or nothing at all: a
                    // package installed from elsewhere).
                    (Some(candidate), Some(version)) if candidate == version => return Ok(None),
                    (None, Some(_)) => return Ok(None),
                    (None, None) => unknown(
                        "is not in apt's package lists: check the name, or refresh the lists with update_cache: true"
                            .to_owned(),
                    )?,
                    _ => {}
                }
                (None, policy.candidate)
            }
        };
        Ok(Some(Install {
            name: name.to_owned(),
            pin,
            from: installed.cloned(),
            to,
        }))
    }
}

fn no_apt(facts: &FactStore, found: &str) -> PlanError {
    let os = facts.system().map_or_else(
        |_| "unknown system".to_owned(),
        |system| {
            format!("{} {}", system.os, system.os_version)
                .trim_end()
                .to_owned()
        },
    );
    let found = if found == "none" {
        "no other package manager found".to_owned()
    } else {
        format!("found {found}")
    };
    PlanError::NoApt {
        found: format!("{os}; {found}"),
    }
}

impl Module for Package {
    const NAME: &'static str = "package";

    fn validate(&self) -> Result<(), ParamError> {
        let names = self.names();
        if names.is_empty() {
            return Err(ParamError::Invalid {
                param: "name",
                reason: "is an empty list".to_owned(),
            });
        }
        for (i, name) in names.iter().enumerate() {
            names::package(name)?;
            if names[..i].contains(name) {
                return Err(ParamError::Invalid {
                    param: "name",
                    reason: format!("lists {name} twice"),
                });
            }
        }
        if let Some(version) = &self.version {
            names::package_version(version)?;
            if names.len() > 1 {
                return Err(ParamError::Invalid {
                    param: "version",
                    reason: "pins one package: give a single name".to_owned(),
                });
            }
            if self.state != PackageState::Present {
                return Err(ParamError::Invalid {
                    param: "version",
                    reason: "is only for state: present".to_owned(),
                });
            }
        }
        if self.cache_valid_time.is_some() && !self.update_cache {
            return Err(ParamError::Required {
                param: "update_cache",
                when: "(true) when cache_valid_time is given",
            });
        }
        if !self.start_services && self.state == PackageState::Absent {
            return Err(ParamError::Invalid {
                param: "start_services",
                reason: "is about installs: state is absent".to_owned(),
            });
        }
        Ok(())
    }

    fn facts(&self, known: &FactStore) -> Vec<FactKey> {
        let mut keys: Vec<FactKey> = self
            .names()
            .iter()
            .map(|name| PackageKey::Dpkg(name.clone()).into())
            .collect();
        if self.update_cache {
            keys.push(PackageKey::Cache.into());
        }
        keys.extend(
            self.names()
                .iter()
                .filter(|name| self.needs_policy(name, known))
                .map(|name| PackageKey::Candidate(name.clone()).into()),
        );
        keys
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        let mut states = Vec::new();
        for name in self.names() {
            match facts.dpkg(name)? {
                Answer::Known(state) => states.push((name, state)),
                Answer::NoApt(found) => return Err(no_apt(facts, found)),
            }
        }
        let refresh = self.refresh(facts)?;
        // An earlier task's refresh, planned in check mode, is as good as this one's.
        let lists_change = refresh || facts.refresh_planned();
        let mut changes = Vec::new();
        if refresh {
            changes.push(Change::Packages(PackageChange::RefreshCache));
        }
        if self.state == PackageState::Absent {
            let packages: Vec<(String, String)> = states
                .into_iter()
                .filter_map(|(name, state)| match state {
                    Dpkg::Installed(version) | Dpkg::Unfinished { version, .. } => {
                        Some((name.clone(), version.clone()))
                    }
                    Dpkg::Absent => None,
                })
                .collect();
            if !packages.is_empty() {
                changes.push(Change::Packages(PackageChange::Remove { packages }));
            }
        } else {
            let mut packages = Vec::new();
            for (name, state) in states {
                packages.extend(self.install(name, state, facts, lists_change)?);
            }
            if !packages.is_empty() {
                changes.push(Change::Packages(PackageChange::Install {
                    packages,
                    start_services: self.start_services,
                }));
            }
        }
        Ok(Plan::of(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::{parse, Fact, SystemInfo};
    use crate::packages::changes::tests::install;
    use crate::packages::PackageFact;

    fn package(names: &[&str], state: PackageState) -> Package {
        Package {
            name: Names::Many(names.iter().map(|&n| n.to_owned()).collect()),
            state,
            version: None,
            update_cache: false,
            cache_valid_time: None,
            start_services: true,
        }
    }

    /// A store filled from recorded probe output, as the batched read fills it.
    fn recorded(outputs: &[(PackageKey, &str)]) -> FactStore {
        let mut store = FactStore::default();
        for (key, output) in outputs {
            let key = FactKey::Packages(key.clone());
            let fact = parse(&key, output).unwrap();
            store.insert(key, fact);
        }
        store
    }

    fn dpkg(name: &str) -> PackageKey {
        PackageKey::Dpkg(name.into())
    }

    fn policy(name: &str) -> PackageKey {
        PackageKey::Candidate(name.into())
    }

    const HELLO_POLICY: &str = "policy\nhello:\n  Installed: (none)\n  Candidate: 2.10-3\n  Version table:\n     2.10-3 500\n        500 file:/srv/repo ./ Packages\n";
    const HELLO_NEWER: &str = "policy\nhello:\n  Installed: 2.10-2\n  Candidate: 2.10-3\n  Version table:\n     2.10-3 500\n        500 file:/srv/repo ./ Packages\n *** 2.10-2 100\n        100 /var/lib/dpkg/status\n";

    fn installs(packages: Vec<Install>) -> Vec<Change> {
        vec![Change::Packages(PackageChange::Install {
            packages,
            start_services: true,
        })]
    }

    #[test]
    fn an_installed_package_needs_no_cache_read_and_no_change() {
        let wanted = package(&["hello"], PackageState::Present);
        let store = recorded(&[(dpkg("hello"), "dpkg\nii |2.10-3\n")]);
        assert_eq!(wanted.facts(&store), vec![FactKey::Packages(dpkg("hello"))]);
        assert_eq!(wanted.plan(&store).unwrap(), Plan::default());
    }

    #[test]
    fn a_missing_package_is_installed_at_its_candidate() {
        let wanted = package(&["hello"], PackageState::Present);
        let mut store = recorded(&[(dpkg("hello"), "dpkg\n")]);
        // Only once dpkg says it is missing is apt's cache asked.
        assert!(wanted
            .facts(&store)
            .contains(&FactKey::Packages(policy("hello"))));
        store = recorded(&[(dpkg("hello"), "dpkg\n"), (policy("hello"), HELLO_POLICY)]);
        let plan = wanted.plan(&store).unwrap();
        assert_eq!(
            plan.changes,
            installs(vec![install("hello", None, Some("2.10-3"))])
        );
        assert_eq!(plan.changes[0].describe(), "install package hello 2.10-3");
    }

    #[test]
    fn removed_leaving_its_configuration_counts_as_missing() {
        let wanted = package(&["at"], PackageState::Present);
        let store = recorded(&[
            (dpkg("at"), "dpkg\nrc |3.2.5-1+b1\n"),
            (
                policy("at"),
                "policy\nat:\n  Installed: (none)\n  Candidate: 3.2.5-1+b1\n  Version table:\n     3.2.5-1+b1 500\n        500 file:/srv/repo ./ Packages\n",
            ),
        ]);
        assert_eq!(
            wanted.plan(&store).unwrap().changes,
            installs(vec![install("at", None, Some("3.2.5-1+b1"))])
        );
    }

    #[test]
    fn a_half_installed_package_is_installed_again() {
        let wanted = package(&["hello"], PackageState::Present);
        let store = recorded(&[
            (dpkg("hello"), "dpkg\niF |2.10-3\n"),
            (policy("hello"), HELLO_POLICY),
        ]);
        assert_eq!(
            wanted.plan(&store).unwrap().changes,
            installs(vec![install("hello", None, Some("2.10-3"))])
        );
    }

    #[test]
    fn several_packages_are_installed_in_one_call_leaving_the_installed_alone() {
        let wanted = package(&["hello", "bash"], PackageState::Present);
        let store = recorded(&[
            (dpkg("hello"), "dpkg\n"),
            (dpkg("bash"), "dpkg\nii |5.2.15-2+b8\n"),
            (policy("hello"), HELLO_POLICY),
        ]);
        assert_eq!(
            wanted.facts(&store),
            vec![
                FactKey::Packages(dpkg("hello")),
                FactKey::Packages(dpkg("bash")),
                FactKey::Packages(policy("hello")),
            ]
        );
        assert_eq!(
            wanted.plan(&store).unwrap().changes,
            installs(vec![install("hello", None, Some("2.10-3"))])
        );
    }

    #[test]
    fn latest_upgrades_to_the_candidate_and_is_ok_at_it() {
        let wanted = package(&["hello"], PackageState::Latest);
        // `latest` reads the cache in the first read: one command when nothing changes.
        assert_eq!(
            wanted.facts(&FactStore::default()),
            vec![
                FactKey::Packages(dpkg("hello")),
                FactKey::Packages(policy("hello"))
            ]
        );
        let older = recorded(&[
            (dpkg("hello"), "dpkg\nii |2.10-2\n"),
            (policy("hello"), HELLO_NEWER),
        ]);
        let plan = wanted.plan(&older).unwrap();
        assert_eq!(
            plan.changes,
            installs(vec![install("hello", Some("2.10-2"), Some("2.10-3"))])
        );
        assert_eq!(
            plan.changes[0].describe(),
            "upgrade package hello 2.10-2 -> 2.10-3"
        );
        let current = recorded(&[
            (dpkg("hello"), "dpkg\nii |2.10-3\n"),
            (policy("hello"), HELLO_POLICY),
        ]);
        assert_eq!(wanted.plan(&current).unwrap(), Plan::default());
        // Installed from elsewhere, unknown to the cache: nothing apt could do.
        let local = recorded(&[
            (dpkg("hello"), "dpkg\nii |9.9\n"),
            (policy("hello"), "policy\n"),
        ]);
        assert_eq!(wanted.plan(&local).unwrap(), Plan::default());
    }

    #[test]
    fn latest_with_a_refresh_installs_whatever_the_refreshed_lists_offer() {
        let mut wanted = package(&["hello"], PackageState::Latest);
        wanted.update_cache = true;
        let store = recorded(&[
            (dpkg("hello"), "dpkg\nii |2.10-3\n"),
            (policy("hello"), HELLO_POLICY),
            (PackageKey::Cache, "cache\n10000\n1000\n"),
        ]);
        let plan = wanted.plan(&store).unwrap();
        assert_eq!(
            plan.changes[1].describe(),
            "upgrade package hello 2.10-3 -> newest"
        );
        wanted.cache_valid_time = Some(86_400);
        assert_eq!(wanted.plan(&store).unwrap(), Plan::default());
    }

    #[test]
    fn a_pinned_version_is_installed_downgraded_or_refused_when_unknown() {
        let mut wanted = package(&["hello"], PackageState::Present);
        wanted.version = Some("2.10-2".into());
        let at_pin = recorded(&[(dpkg("hello"), "dpkg\nii |2.10-2\n")]);
        assert_eq!(
            wanted.facts(&at_pin),
            vec![FactKey::Packages(dpkg("hello"))]
        );
        assert_eq!(wanted.plan(&at_pin).unwrap(), Plan::default());
        let newer = recorded(&[
            (dpkg("hello"), "dpkg\nii |2.10-3\n"),
            (policy("hello"), HELLO_NEWER),
        ]);
        let mut downgrade = install("hello", Some("2.10-3"), Some("2.10-2"));
        downgrade.pin = Some("2.10-2".into());
        assert_eq!(
            wanted.plan(&newer).unwrap().changes,
            installs(vec![downgrade])
        );
        wanted.version = Some("1.0-1".into());
        assert_eq!(
            wanted.plan(&newer).unwrap_err().to_string(),
            "package hello has no version 1.0-1 in apt's cache (it knows: 2.10-3, 2.10-2); update_cache: true refreshes the package lists"
        );
    }

    #[test]
    fn a_package_unknown_to_the_cache_is_an_error_unless_the_lists_are_refreshed_first() {
        let mut wanted = package(&["hello"], PackageState::Present);
        let store = recorded(&[
            (dpkg("hello"), "dpkg\n"),
            (policy("hello"), "policy\n"),
            (PackageKey::Cache, "cache\n1000\nnone\n"),
        ]);
        assert_eq!(
            wanted.plan(&store).unwrap_err().to_string(),
            "package hello is not in apt's package lists: check the name, or refresh the lists with update_cache: true"
        );
        // A fresh host has no lists: refreshed, then the package installed at the
        // version the new lists offer.
        wanted.update_cache = true;
        wanted.cache_valid_time = Some(3600);
        assert_eq!(
            wanted.plan(&store).unwrap().changes,
            vec![
                Change::Packages(PackageChange::RefreshCache),
                installs(vec![install("hello", None, None)]).remove(0),
            ]
        );
    }

    #[test]
    fn the_cache_is_refreshed_only_when_older_than_cache_valid_time() {
        let mut wanted = package(&["bash"], PackageState::Present);
        wanted.update_cache = true;
        wanted.cache_valid_time = Some(3600);
        let fresh = recorded(&[
            (dpkg("bash"), "dpkg\nii |5.2.15-2+b8\n"),
            (PackageKey::Cache, "cache\n10000\n9000\n"),
        ]);
        assert_eq!(wanted.plan(&fresh).unwrap(), Plan::default());
        let stale = recorded(&[
            (dpkg("bash"), "dpkg\nii |5.2.15-2+b8\n"),
            (PackageKey::Cache, "cache\n10000\n1000\n"),
        ]);
        let refresh = vec![Change::Packages(PackageChange::RefreshCache)];
        assert_eq!(wanted.plan(&stale).unwrap().changes, refresh);
        // Without cache_valid_time, every run refreshes.
        wanted.cache_valid_time = None;
        assert_eq!(wanted.plan(&fresh).unwrap().changes, refresh);
    }

    #[test]
    fn absent_removes_what_is_installed_or_half_installed() {
        let wanted = package(&["hello", "at", "bash"], PackageState::Absent);
        let store = recorded(&[
            (dpkg("hello"), "dpkg\nii |2.10-3\n"),
            (dpkg("at"), "dpkg\nrc |3.2.5-1+b1\n"),
            (dpkg("bash"), "dpkg\niU |5.2.15-2+b8\n"),
        ]);
        assert_eq!(
            wanted.facts(&store).len(),
            3,
            "absent never asks apt's cache"
        );
        let plan = wanted.plan(&store).unwrap();
        assert_eq!(
            plan.changes,
            vec![Change::Packages(PackageChange::Remove {
                packages: vec![
                    ("hello".into(), "2.10-3".into()),
                    ("bash".into(), "5.2.15-2+b8".into())
                ]
            })]
        );
        assert_eq!(
            plan.changes[0].describe(),
            "remove packages hello 2.10-3, bash 5.2.15-2+b8"
        );
    }

    #[test]
    fn check_mode_plans_later_tasks_against_the_installed_package() {
        let wanted = package(&["hello"], PackageState::Present);
        let mut store = recorded(&[(dpkg("hello"), "dpkg\n"), (policy("hello"), HELLO_POLICY)]);
        for change in wanted.plan(&store).unwrap().changes {
            change.predict(&mut store);
        }
        assert_eq!(wanted.plan(&store).unwrap(), Plan::default());
        let latest = package(&["hello"], PackageState::Latest);
        assert_eq!(latest.plan(&store).unwrap(), Plan::default());
        let absent = package(&["hello"], PackageState::Absent);
        for change in absent.plan(&store).unwrap().changes {
            change.predict(&mut store);
        }
        assert!(!wanted.plan(&store).unwrap().changes.is_empty());
    }

    #[test]
    fn check_mode_plans_a_later_task_against_the_lists_an_earlier_one_refreshes() {
        // A fresh host: no lists. The first task refreshes them and installs redis; the
        // second, without update_cache, installs sidekiq, which the old lists lack.
        let mut first = package(&["redis-server"], PackageState::Present);
        first.update_cache = true;
        let second = package(&["ruby-sidekiq"], PackageState::Present);
        let mut store = recorded(&[
            (dpkg("redis-server"), "dpkg\n"),
            (policy("redis-server"), "policy\n"),
            (dpkg("ruby-sidekiq"), "dpkg\n"),
            (policy("ruby-sidekiq"), "policy\n"),
            (PackageKey::Cache, "cache\n1000\nnone\n"),
        ]);
        assert!(second.plan(&store).is_err(), "unknown without a refresh");
        for change in first.plan(&store).unwrap().changes {
            change.predict(&mut store);
        }
        assert_eq!(
            second.plan(&store).unwrap().changes,
            installs(vec![install("ruby-sidekiq", None, None)])
        );
        // The refresh is planned already: a third task asking for one, valid for an
        // hour, plans none.
        let mut third = package(&["redis-server"], PackageState::Present);
        third.update_cache = true;
        third.cache_valid_time = Some(3600);
        assert_eq!(third.plan(&store).unwrap(), Plan::default());
    }

    #[test]
    fn a_host_without_apt_is_a_clear_failure_naming_what_it_has() {
        let mut store = recorded(&[(dpkg("hello"), "noapt:dnf\n")]);
        store.insert(
            FactKey::System,
            Fact::System(SystemInfo {
                os: "fedora".into(),
                os_version: "40".into(),
                ..SystemInfo::default()
            }),
        );
        let wanted = package(&["hello"], PackageState::Present);
        assert_eq!(wanted.facts(&store), vec![FactKey::Packages(dpkg("hello"))]);
        assert_eq!(
            wanted.plan(&store).unwrap_err().to_string(),
            "apt is not on this host (fedora 40; found dnf): the package module installs with apt, on Debian and Ubuntu"
        );
        let store = recorded(&[(dpkg("hello"), "noapt:none\n")]);
        assert!(matches!(
            wanted.plan(&store),
            Err(PlanError::NoApt { found }) if found == "unknown system; no other package manager found"
        ));
        assert!(matches!(
            store.fact(&FactKey::Packages(dpkg("hello"))),
            Ok(Fact::Packages(PackageFact::NoApt(_)))
        ));
    }

    #[test]
    fn parameters_are_checked_before_any_host() {
        let one: Package = serde_json::from_str(r#"{"name": "hello"}"#).unwrap();
        assert!(one.start_services);
        assert_eq!(one.state, PackageState::Present);
        assert_eq!(one.validate(), Ok(()));
        let mut two = package(&["hello", "at"], PackageState::Present);
        two.version = Some("2.10-3".into());
        assert_eq!(
            two.validate().unwrap_err().to_string(),
            "`version` pins one package: give a single name"
        );
        assert!(package(&["hello", "hello"], PackageState::Present)
            .validate()
            .is_err());
        assert!(package(&[], PackageState::Present).validate().is_err());
        assert!(package(&["-oAPT::x"], PackageState::Present)
            .validate()
            .is_err());
        let mut latest = package(&["hello"], PackageState::Latest);
        latest.version = Some("2.10-3".into());
        assert!(latest.validate().is_err());
        let mut valid_time = package(&["hello"], PackageState::Present);
        valid_time.cache_valid_time = Some(60);
        assert_eq!(
            valid_time.validate().unwrap_err().to_string(),
            "`update_cache` is required (true) when cache_valid_time is given"
        );
        assert!(
            serde_json::from_str::<Package>(r#"{"name": "hello", "state": "installed"}"#).is_err()
        );
        let error = serde_json::from_str::<Package>(r#"{"name": 5}"#).unwrap_err();
        assert!(error.to_string().starts_with(
            "invalid type: integer `5`, expected a package name or a list of package names"
        ));
        let many: Package = serde_json::from_str(r#"{"name": ["hello", "at"]}"#).unwrap();
        assert_eq!(many.names(), ["hello", "at"]);
    }
}
