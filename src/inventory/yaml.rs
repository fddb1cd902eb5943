//! The YAML inventory format: visitors that keep duplicate keys and check names as they
//! read, and YAML errors with their positions.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::builder::Builder;
use super::names::{check_group_name, expand_hosts};
use super::tagged::{Level, TaggedVars};
use super::InventoryError;

/// Reads a YAML inventory into `builder`; `origin` names the file in error messages.
pub(super) fn read_yaml(
    builder: &mut Builder,
    text: &str,
    origin: &Path,
) -> Result<(), InventoryError> {
    crate::yaml::check_nesting(text, origin).map_err(nesting_error)?;
    let document: Option<Entries<GroupKey, Option<YamlGroup>>> =
        serde_yaml::from_str(text).map_err(|e| yaml_error(origin, &e))?;
    for (GroupKey(name), group) in document.map(|entries| entries.0).unwrap_or_default() {
        builder.group(&name);
        if let Some(group) = group {
            add_yaml_group(builder, &name, group, origin);
        }
    }
    Ok(())
}

/// A mapping read as its list of entries, so a key written twice is merged (as Ansible
/// does) rather than silently replaced.
struct Entries<K, V>(Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = Entries<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

/// A host key, with its ranges expanded. Names are checked inside `visit_str` so that the
/// YAML parser attaches the key's own position to the error.
struct HostKey(Vec<String>);

impl<'de> Deserialize<'de> for HostKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HostKeyVisitor;
        impl Visitor<'_> for HostKeyVisitor {
            type Value = HostKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a host name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<HostKey, E> {
                expand_hosts(name).map(HostKey).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(HostKeyVisitor)
    }
}

/// A group key, checked like [`HostKey`].
struct GroupKey(String);

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct GroupKeyVisitor;
        impl Visitor<'_> for GroupKeyVisitor {
            type Value = GroupKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a group name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<GroupKey, E> {
                check_group_name(name).map(GroupKey).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(GroupKeyVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlGroup {
    #[serde(default)]
    hosts: Option<Entries<HostKey, Option<TaggedVars>>>,
    #[serde(default)]
    vars: Option<TaggedVars>,
    #[serde(default)]
    children: Option<Entries<GroupKey, Option<YamlGroup>>>,
}

/// Recursion follows the YAML nesting, which the parser already limits.
fn add_yaml_group(builder: &mut Builder, name: &str, group: YamlGroup, origin: &Path) {
    if let Some(vars) = group.vars {
        builder.add_group_vars(name, &Level::read(vars, origin));
    }
    for (HostKey(hosts), vars) in group.hosts.map(|entries| entries.0).unwrap_or_default() {
        let vars = Level::read(vars.unwrap_or_default(), origin);
        for host in hosts {
            builder.add_host(name, &host, &vars);
        }
    }
    for (GroupKey(child), sub) in group.children.map(|entries| entries.0).unwrap_or_default() {
        builder.add_child(name, &child);
        if let Some(sub) = sub {
            add_yaml_group(builder, &child, sub, origin);
        }
    }
}

pub(super) fn nesting_error(error: crate::yaml::YamlError) -> InventoryError {
    InventoryError::Yaml {
        file: error.file,
        line: error.line,
        column: error.column,
        message: error.message,
    }
}

pub(super) fn yaml_error(file: &Path, error: &serde_yaml::Error) -> InventoryError {
    let text = error.to_string();
    match error.location() {
        Some(location) => {
            // The position is reported separately, so drop the parser's own mention of it.
            let position = format!(" at line {} column {}", location.line(), location.column());
            InventoryError::Yaml {
                file: file.to_path_buf(),
                line: location.line(),
                column: location.column(),
                message: text.replacen(&position, "", 1),
            }
        }
        None => InventoryError::YamlDocument {
            file: file.to_path_buf(),
            message: text,
        },
    }
}
