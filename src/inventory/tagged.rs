//! Inventory variables as one YAML source writes them: data, or, where the value carries
//! the `!template` tag, a template its file's author asks converge to render.
//!
//! # Guarantees
//!
//! - A value is a template only when it is tagged `!template` itself; every other value,
//!   whatever it contains, is data and reaches tasks as written. `!unsafe` (Ansible's tag
//!   for "never render") is accepted and changes nothing, since that is the default here.
//! - A tag anywhere else (inside a list or a mapping, an unknown tag) and a tagged
//!   connection setting (`ansible_host`, `port`, ...: they are needed before any
//!   variable can be rendered) are errors at the value's position in the file.
//! - Of several levels (`all`, groups, the host), the last one to set a variable decides
//!   whether it is a template: an untagged value over a tagged one is data again.

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::de::{self, Deserializer, EnumAccess, MapAccess, VariantAccess, Visitor};
use serde::Deserialize;

use super::builder::set_var;
use super::{Vars, SETTINGS};

/// The tag that makes an inventory value a template.
pub const TEMPLATE_TAG: &str = "template";

/// Inventory variables tagged `!template`, by name, with the file each is written in.
pub type Templates = IndexMap<String, PathBuf>;

/// One level of inventory variables (a group's, a host's, a `group_vars/` file's): the
/// values, and which of them are templates.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Level {
    pub(super) vars: Vars,
    pub(super) templates: Templates,
}

impl Level {
    /// Variables that are all data (an INI source, a host list).
    pub(super) fn data(vars: Vars) -> Self {
        Level {
            vars,
            templates: Templates::new(),
        }
    }

    /// The variables of one YAML mapping read from `file`.
    pub(super) fn read(vars: TaggedVars, file: &Path) -> Self {
        let mut level = Level::default();
        for (name, value) in vars.0 {
            let (value, tagged) = match value {
                TaggedValue::Data(value) => (value, false),
                TaggedValue::Template(value) => (value, true),
            };
            level.vars.insert(name.clone(), value);
            if tagged {
                level.templates.insert(name, file.to_path_buf());
            } else {
                level.templates.shift_remove(&name);
            }
        }
        level
    }

    /// Applies `over` on top of this level, variable by variable.
    pub(super) fn merge(&mut self, over: &Level) {
        for (name, value) in &over.vars {
            set_var(&mut self.vars, name, value.clone());
            match over.templates.get(name) {
                Some(file) => {
                    self.templates.insert(name.clone(), file.clone());
                }
                None => {
                    self.templates.shift_remove(name);
                }
            }
        }
    }
}

/// A YAML mapping of variables, each value data or tagged `!template`, in the order
/// written (a name written twice: the later value wins).
#[derive(Debug, Default)]
pub(super) struct TaggedVars(Vec<(String, TaggedValue)>);

/// One variable's value as written.
#[derive(Debug)]
pub(super) enum TaggedValue {
    Data(serde_json::Value),
    Template(serde_json::Value),
}

impl<'de> Deserialize<'de> for TaggedVars {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VarsVisitor;
        impl<'de> Visitor<'de> for VarsVisitor {
            type Value = TaggedVars;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E: de::Error>(self) -> Result<TaggedVars, E> {
                Ok(TaggedVars::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TaggedVars, A::Error> {
                let mut entries = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let value: TaggedValue = map.next_value()?;
                    if matches!(value, TaggedValue::Template(_))
                        && SETTINGS.iter().any(|spellings| spellings.contains(&&*name))
                    {
                        return Err(de::Error::custom(format!(
                            "`{name}` is a connection setting, which cannot be a `!template` \
                             (it is needed before any variable is rendered)"
                        )));
                    }
                    entries.push((name, value));
                }
                Ok(TaggedVars(entries))
            }
        }
        deserializer.deserialize_map(VarsVisitor)
    }
}

impl<'de> Deserialize<'de> for TaggedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Reads a value as `serde_json::Value` reads it, and a tagged one (which the YAML
/// parser hands over as an enum, the tag naming the variant) by its tag.
struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = TaggedValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(value.into()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(
            serde_json::Number::from_f64(value).map_or(serde_json::Value::Null, Into::into),
        ))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(value.into()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(value.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(serde_json::Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<TaggedValue, E> {
        Ok(TaggedValue::Data(serde_json::Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<TaggedValue, D::Error> {
        serde_json::Value::deserialize(deserializer).map(TaggedValue::Data)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<TaggedValue, A::Error> {
        serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))
            .map(TaggedValue::Data)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TaggedValue, A::Error> {
        serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(TaggedValue::Data)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<TaggedValue, A::Error> {
        let (tag, value): (String, _) = data.variant()?;
        let tag = tag.trim_start_matches('!');
        let inner: serde_json::Value = value.newtype_variant()?;
        match tag {
            TEMPLATE_TAG => Ok(TaggedValue::Template(inner)),
            "unsafe" => Ok(TaggedValue::Data(inner)),
            other => Err(de::Error::custom(format!(
                "unknown tag `!{other}`: an inventory value may be tagged `!template` (render \
                 it as a template) or `!unsafe` (data, as every untagged value is)"
            ))),
        }
    }
}
