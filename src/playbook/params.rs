//! A task's parameters in two stages: raw values as the playbook wrote them, then the
//! module's typed parameters.
//!
//! Parsing keeps the raw value tree ([`Raw`]): templates may stand anywhere a value
//! does. What needs no variables is checked at load ([`Stage::Load`]): a template
//! stands in for whatever type its place asks for, and where that cannot be known (a
//! mode, a choice among words) the check stops there, to be finished once rendered.
//! For each host the tree is rendered once, then deserialized into the module's typed
//! parameters through the registry ([`Stage::Rendered`]). A string that is one whole
//! `{{ expression }}` becomes the expression's own value (a boolean, a number, a list,
//! a map), as in Ansible; a rendered string may also stand for a boolean or a number
//! (`"true"`, `"8080"`), and a rendered number for a string.
//!
//! Every error names the path of the value it is about ([`Step`]), so that it can be
//! located in the playbook's text (see `yaml::locate`).

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use crate::yaml::Step;

use crate::inventory::Vars;
use crate::template::{is_template, Renderer, TemplateError};

/// A parameter value as written in the playbook, or rendered from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Raw>),
    /// Keys in the order written; a key is never given twice.
    Map(Vec<(String, Raw)>),
    /// Bytes read from a file beside the playbook that are not UTF-8 text.
    Bytes(Vec<u8>),
    /// What the template `from` rendered to.
    Rendered {
        from: String,
        value: Box<Raw>,
    },
}

/// Which stage a deserialization is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// At load, before any variable is known: templates are placeholders.
    Load,
    /// After rendering for a host: every value is final.
    Rendered,
}

/// Parameters that do not fit their module's types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsError {
    pub message: String,
    /// Where in the parameters the error is; `None` while it is not known yet.
    pub at: Option<Vec<Step>>,
    /// The template the offending value was rendered from.
    pub rendered_from: Option<String>,
    /// At load: the check reached a template whose type only its value decides.
    pub deferred: bool,
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(from) = &self.rendered_from {
            write!(f, " (rendered from {from:?})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParamsError {}

impl de::Error for ParamsError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ParamsError {
            message: message.to_string(),
            at: None,
            rendered_from: None,
            deferred: false,
        }
    }
}

impl ParamsError {
    fn deferred() -> Self {
        ParamsError {
            deferred: true,
            ..de::Error::custom("a templated value decides its own type")
        }
    }

    /// The top-level parameter the error is about, if known.
    pub fn param(&self) -> Option<&str> {
        match self.at.as_deref()?.first()? {
            Step::Key(key) | Step::KeyItself(key) => Some(key),
            Step::Index(_) => None,
        }
    }
}

impl Raw {
    /// The value of `key`, when this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Raw> {
        match self {
            Raw::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Raw::Rendered { value, .. } => value.get(key),
            _ => None,
        }
    }

    /// Removes `key` from a map, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Raw> {
        let Raw::Map(entries) = self else {
            return None;
        };
        let index = entries.iter().position(|(k, _)| k == key)?;
        Some(entries.remove(index).1)
    }

    /// Sets `key` in a map (replacing an earlier value).
    pub fn insert(&mut self, key: &str, value: Raw) {
        if let Raw::Map(entries) = self {
            entries.retain(|(k, _)| k != key);
            entries.push((key.to_owned(), value));
        }
    }

    /// Takes out the value at `path` (a map's entry, a list's item); returns the key of
    /// the entry, if it was one.
    fn remove_at(&mut self, path: &[Step]) -> Option<String> {
        let (last, parents) = path.split_last()?;
        let mut parent = self;
        for step in parents {
            parent = match (parent, step) {
                (Raw::Map(entries), Step::Key(key)) => {
                    &mut entries.iter_mut().find(|(k, _)| k == key)?.1
                }
                (Raw::Seq(items), Step::Index(index)) => items.get_mut(*index)?,
                _ => return None,
            };
        }
        match (parent, last) {
            (Raw::Map(entries), Step::Key(key)) => {
                entries.retain(|(k, _)| k != key);
                Some(key.clone())
            }
            (Raw::Seq(items), Step::Index(index)) if *index < items.len() => {
                items.remove(*index);
                None
            }
            _ => None,
        }
    }

    /// Whether any string in the value is a template.
    pub fn has_template(&self) -> bool {
        self.templates().next().is_some()
    }

    /// Every template string in the value.
    pub fn templates(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Raw::Str(text) if is_template(text) => Box::new(std::iter::once(text.as_str())),
            Raw::Seq(items) => Box::new(items.iter().flat_map(Raw::templates)),
            Raw::Map(entries) => Box::new(entries.iter().flat_map(|(_, v)| v.templates())),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// File content read from beside the playbook: a string when it is UTF-8 text.
    pub fn content(bytes: Vec<u8>) -> Raw {
        match String::from_utf8(bytes) {
            Ok(text) => Raw::Str(text),
            Err(error) => Raw::Bytes(error.into_bytes()),
        }
    }

    /// A `copy` source tree as the module's `tree` parameter.
    pub fn tree(tree: &super::SourceTree) -> Raw {
        let files = tree
            .files
            .iter()
            .map(|file| {
                Raw::Map(vec![
                    ("path".to_owned(), Raw::Str(file.path.clone())),
                    ("content".to_owned(), Raw::content(file.content.clone())),
                    ("executable".to_owned(), Raw::Bool(file.executable)),
                ])
            })
            .collect();
        Raw::Map(vec![
            (
                "directories".to_owned(),
                Raw::Seq(tree.directories.iter().cloned().map(Raw::Str).collect()),
            ),
            ("files".to_owned(), Raw::Seq(files)),
        ])
    }

    /// The value as JSON (a rendered value as what it rendered to).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Raw::Null => Value::Null,
            Raw::Bool(b) => Value::Bool(*b),
            Raw::UInt(n) => (*n).into(),
            Raw::Int(n) => (*n).into(),
            Raw::Float(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Raw::Str(text) => Value::String(text.clone()),
            Raw::Bytes(bytes) => Value::String(format!("({} bytes)", bytes.len())),
            Raw::Seq(items) => Value::Array(items.iter().map(Raw::to_json).collect()),
            Raw::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
            Raw::Rendered { value, .. } => value.to_json(),
        }
    }

    /// A JSON value (a variable's) as a raw one.
    pub fn from_json(value: &serde_json::Value) -> Raw {
        use serde_json::Value;
        match value {
            Value::Null => Raw::Null,
            Value::Bool(b) => Raw::Bool(*b),
            Value::Number(n) => n
                .as_u64()
                .map(Raw::UInt)
                .or_else(|| n.as_i64().map(Raw::Int))
                .unwrap_or_else(|| Raw::Float(n.as_f64().unwrap_or_default())),
            Value::String(text) => Raw::Str(text.clone()),
            Value::Array(items) => Raw::Seq(items.iter().map(Raw::from_json).collect()),
            Value::Object(map) => Raw::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Raw::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Renders every template in the value for one host (see [`Renderer::value`]).
    ///
    /// # Errors
    /// A template does not render.
    pub fn render(
        &self,
        renderer: &Renderer,
        vars: &Vars,
        origin: &str,
    ) -> Result<Raw, TemplateError> {
        Ok(match self {
            Raw::Str(text) if is_template(text) => Raw::Rendered {
                from: text.clone(),
                value: Box::new(Raw::from_json(&renderer.value(text, vars, origin)?)),
            },
            Raw::Seq(items) => Raw::Seq(
                items
                    .iter()
                    .map(|item| item.render(renderer, vars, origin))
                    .collect::<Result<_, _>>()?,
            ),
            Raw::Map(entries) => Raw::Map(
                entries
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), value.render(renderer, vars, origin)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// A deserializer of this value for `stage`.
    pub fn deserializer(&self, stage: Stage) -> Node<'_> {
        Node {
            raw: self,
            path: Vec::new(),
            stage,
            rendered_from: None,
        }
    }
}

/// Checks `params` at load with `typed` as far as it goes without variables: a
/// template whose type only its value decides is left out, and the rest checked again,
/// so that an unknown key or a wrong type after it is still found. Returns the module
/// when nothing had to be left out.
///
/// # Errors
/// What does not fit, whatever the variables.
pub fn check_at_load<T>(
    params: &Raw,
    typed: impl Fn(&Raw) -> Result<T, ParamsError>,
) -> Result<Option<T>, ParamsError> {
    let mut params = params.clone();
    let mut left_out: Vec<String> = Vec::new();
    loop {
        match typed(&params) {
            Ok(module) => return Ok(left_out.is_empty().then_some(module)),
            Err(error) if error.deferred => {
                let at = error.at.unwrap_or_default();
                if at.is_empty() {
                    return Ok(None);
                }
                left_out.extend(params.remove_at(&at));
            }
            // A required value that was left out is there, only not known yet.
            Err(error)
                if left_out
                    .iter()
                    .any(|key| error.message == format!("missing field `{key}`")) =>
            {
                return Ok(None)
            }
            Err(error) => return Err(error),
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
        Raw::deserialize(deserializer)
    }
    fn visit_bool<E>(self, value: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(value))
    }
    fn visit_u64<E>(self, value: u64) -> Result<Raw, E> {
        Ok(Raw::UInt(value))
    }
    fn visit_i64<E>(self, value: i64) -> Result<Raw, E> {
        Ok(u64::try_from(value).map_or(Raw::Int(value), Raw::UInt))
    }
    fn visit_f64<E>(self, value: f64) -> Result<Raw, E> {
        Ok(Raw::Float(value))
    }
    fn visit_str<E>(self, value: &str) -> Result<Raw, E> {
        Ok(Raw::Str(value.to_owned()))
    }
    fn visit_string<E>(self, value: String) -> Result<Raw, E> {
        Ok(Raw::Str(value))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries: Vec<(String, Raw)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Raw::Map(entries))
    }
}

/// Deserializes one raw value into typed parameters (see [`Raw::deserializer`]).
pub struct Node<'a> {
    raw: &'a Raw,
    path: Vec<Step>,
    stage: Stage,
    /// Set inside a rendered value: conversions between scalars are allowed.
    rendered_from: Option<&'a str>,
}

impl<'a> Node<'a> {
    fn child(&self, raw: &'a Raw, step: Step) -> Node<'a> {
        let mut path = self.path.clone();
        path.push(step);
        Node {
            raw,
            path,
            stage: self.stage,
            rendered_from: self.rendered_from,
        }
    }

    /// The value with rendering looked through.
    fn settled(self) -> Node<'a> {
        match self.raw {
            Raw::Rendered { from, value } => Node {
                raw: value,
                rendered_from: Some(from),
                ..self
            },
            _ => self,
        }
    }

    /// A template met at load, where no value is known yet.
    fn placeholder(&self) -> bool {
        self.stage == Stage::Load && matches!(self.raw, Raw::Str(text) if is_template(text))
    }

    /// Puts this node's path (and template) on an error that has none yet.
    fn locate(&self, mut error: ParamsError) -> ParamsError {
        if error.at.is_none() {
            error.at = Some(self.path.clone());
            error.rendered_from = self.rendered_from.map(str::to_owned);
        }
        error
    }

    /// The scalar as text, as YAML wrote it (for a parameter that wants a string).
    fn text(&self) -> Option<String> {
        match self.raw {
            Raw::Bool(b) => Some(b.to_string()),
            Raw::UInt(n) => Some(n.to_string()),
            Raw::Int(n) => Some(n.to_string()),
            Raw::Float(x) => Some(x.to_string()),
            _ => None,
        }
    }

    fn any<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        if self.placeholder() {
            return Err(self.locate(ParamsError::deferred()));
        }
        let result = match self.raw {
            Raw::Null => visitor.visit_unit(),
            Raw::Bool(b) => visitor.visit_bool(*b),
            Raw::UInt(n) => visitor.visit_u64(*n),
            Raw::Int(n) => visitor.visit_i64(*n),
            Raw::Float(x) => visitor.visit_f64(*x),
            Raw::Str(text) => visitor.visit_str(text),
            Raw::Bytes(bytes) => visitor.visit_bytes(bytes),
            Raw::Seq(items) => visitor.visit_seq(SeqItems {
                node: &self,
                items: items.iter().enumerate(),
            }),
            Raw::Map(entries) => visitor.visit_map(MapItems {
                node: &self,
                entries: entries.iter(),
                value: None,
            }),
            Raw::Rendered { .. } => return self.settled().any(visitor),
        };
        result.map_err(|error| self.locate(error))
    }

    /// A rendered string read as what the parameter wants (`"true"`, `"8080"`).
    fn rendered_scalar<'de, V: Visitor<'de>>(
        self,
        visitor: V,
        parse: fn(&str) -> Option<Raw>,
    ) -> Result<V::Value, ParamsError> {
        let node = self.settled();
        if let (Some(_), Raw::Str(text)) = (node.rendered_from, node.raw) {
            if let Some(value) = parse(text.trim()) {
                let converted = Node {
                    raw: &value,
                    path: node.path.clone(),
                    stage: node.stage,
                    rendered_from: node.rendered_from,
                };
                return converted.any(visitor);
            }
        }
        node.any(visitor)
    }
}

fn parse_bool(text: &str) -> Option<Raw> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(Raw::Bool(true)),
        "false" | "no" | "off" => Some(Raw::Bool(false)),
        _ => None,
    }
}

fn parse_number(text: &str) -> Option<Raw> {
    text.parse::<u64>()
        .map(Raw::UInt)
        .or_else(|_| text.parse::<i64>().map(Raw::Int))
        .or_else(|_| text.parse::<f64>().map(Raw::Float))
        .ok()
}

macro_rules! numbers {
    ($($method:ident => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
            if self.placeholder() {
                return visitor.$visit(Default::default()).map_err(|e| self.locate(e));
            }
            self.rendered_scalar(visitor, parse_number)
        }
    )*};
}

impl<'de> Deserializer<'de> for Node<'_> {
    type Error = ParamsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        self.any(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        if self.placeholder() {
            return visitor.visit_bool(false).map_err(|e| self.locate(e));
        }
        self.rendered_scalar(visitor, parse_bool)
    }

    numbers! {
        deserialize_u8 => visit_u8, deserialize_u16 => visit_u16, deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64, deserialize_i8 => visit_i8, deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32, deserialize_i64 => visit_i64, deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        let node = self.settled();
        match node.text() {
            Some(text) => visitor.visit_string(text).map_err(|e| node.locate(e)),
            None => match node.raw {
                Raw::Str(text) => visitor.visit_str(text).map_err(|e| node.locate(e)),
                _ => node.any(visitor),
            },
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        let node = self.settled();
        match node.raw {
            Raw::Null => visitor.visit_none().map_err(|e| node.locate(e)),
            _ => visitor.visit_some(node),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        if self.placeholder() {
            return visitor
                .visit_seq(SeqItems {
                    node: &self,
                    items: [].iter().enumerate(),
                })
                .map_err(|e| self.locate(e));
        }
        self.any(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        if self.placeholder() {
            return visitor
                .visit_map(MapItems {
                    node: &self,
                    entries: [].iter(),
                    value: None,
                })
                .map_err(|e| self.locate(e));
        }
        self.any(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ParamsError> {
        let node = self.settled();
        match node.raw {
            Raw::Str(text) if !node.placeholder() => {
                let words: de::value::StrDeserializer<'_, ParamsError> =
                    text.as_str().into_deserializer();
                visitor.visit_enum(words).map_err(|e| node.locate(e))
            }
            _ => node.any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ParamsError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ParamsError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct struct identifier
    }
}

struct SeqItems<'n, 'a> {
    node: &'n Node<'a>,
    items: std::iter::Enumerate<std::slice::Iter<'a, Raw>>,
}

impl<'de> SeqAccess<'de> for SeqItems<'_, '_> {
    type Error = ParamsError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ParamsError> {
        match self.items.next() {
            None => Ok(None),
            Some((index, item)) => seed
                .deserialize(self.node.child(item, Step::Index(index)))
                .map(Some),
        }
    }
}

struct MapItems<'n, 'a> {
    node: &'n Node<'a>,
    entries: std::slice::Iter<'a, (String, Raw)>,
    value: Option<&'a (String, Raw)>,
}

impl<'de> MapAccess<'de> for MapItems<'_, '_> {
    type Error = ParamsError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ParamsError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        let key: de::value::StrDeserializer<'_, ParamsError> = entry.0.as_str().into_deserializer();
        let mut path = self.node.path.clone();
        path.push(Step::KeyItself(entry.0.clone()));
        seed.deserialize(key).map(Some).map_err(|mut error| {
            error.at.get_or_insert(path);
            error
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ParamsError> {
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(self.node.child(value, Step::Key(key.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Params {
        name: String,
        #[serde(default)]
        enabled: Option<bool>,
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        groups: Vec<String>,
        #[serde(default)]
        state: Option<State>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum State {
        Present,
        Absent,
    }

    fn raw(yaml: &str) -> Raw {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn rendered(from: &str, value: Raw) -> Raw {
        Raw::Rendered {
            from: from.to_owned(),
            value: Box::new(value),
        }
    }

    #[test]
    fn templates_stand_in_for_any_type_at_load() {
        let params =
            raw("{ name: x, enabled: \"{{ e }}\", port: \"{{ p }}\", groups: \"{{ g }}\" }");
        let typed = Params::deserialize(params.deserializer(Stage::Load)).unwrap();
        assert_eq!(typed.enabled, Some(false));
        assert_eq!(typed.port, Some(0));
        assert!(typed.groups.is_empty());
    }

    #[test]
    fn a_choice_from_a_template_waits_for_its_value() {
        let params = raw("{ name: x, state: \"{{ s }}\" }");
        let error = Params::deserialize(params.deserializer(Stage::Load)).unwrap_err();
        assert!(error.deferred);
        assert_eq!(error.param(), Some("state"));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_found_at_load() {
        let params = raw("{ name: x, enabeld: true }");
        let error = Params::deserialize(params.deserializer(Stage::Load)).unwrap_err();
        assert_eq!(
            error.message,
            "unknown field `enabeld`, expected one of `name`, `enabled`, `port`, `groups`, `state`"
        );
        assert_eq!(error.at, Some(vec![Step::KeyItself("enabeld".into())]));
        let params = raw("{ name: x, groups: [a, [b]] }");
        let error = Params::deserialize(params.deserializer(Stage::Load)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid type: sequence, expected a string"
        );
        assert_eq!(
            error.at,
            Some(vec![Step::Key("groups".into()), Step::Index(1)])
        );
    }

    #[test]
    fn rendered_values_take_the_type_their_parameter_wants() {
        let params = Raw::Map(vec![
            ("name".into(), rendered("{{ n }}", Raw::UInt(7))),
            (
                "enabled".into(),
                rendered("{{ e }}", Raw::Str("yes".into())),
            ),
            ("port".into(), rendered("{{ p }}", Raw::Str("8080".into()))),
            (
                "groups".into(),
                rendered(
                    "{{ g }}",
                    Raw::Seq(vec![Raw::Str("a".into()), Raw::Str("b".into())]),
                ),
            ),
            (
                "state".into(),
                rendered("{{ s }}", Raw::Str("absent".into())),
            ),
        ]);
        let typed = Params::deserialize(params.deserializer(Stage::Rendered)).unwrap();
        assert_eq!(
            typed,
            Params {
                name: "7".into(),
                enabled: Some(true),
                port: Some(8080),
                groups: vec!["a".into(), "b".into()],
                state: Some(State::Absent),
            }
        );
    }

    #[test]
    fn a_rendered_bad_value_is_named_with_its_template() {
        let params = Raw::Map(vec![
            ("name".into(), Raw::Str("x".into())),
            ("port".into(), rendered("{{ p }}", Raw::Str("http".into()))),
        ]);
        let error = Params::deserialize(params.deserializer(Stage::Rendered)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid type: string \"http\", expected u16 (rendered from \"{{ p }}\")"
        );
        assert_eq!(error.at, Some(vec![Step::Key("port".into())]));
    }

    #[test]
    fn literal_strings_are_not_converted() {
        let error =
            Params::deserialize(raw("{ name: x, enabled: \"yes\" }").deserializer(Stage::Rendered))
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid type: string \"yes\", expected a boolean"
        );
    }

    #[test]
    fn a_key_is_given_once() {
        let error = serde_yaml::from_str::<Raw>("{ a: 1, a: 2 }").unwrap_err();
        assert!(
            error.to_string().starts_with("duplicate field `a`"),
            "{error}"
        );
    }
}
