//! The filters an Ansible user reaches for, with Ansible's documented results:
//! `to_json`, `to_nice_json`, `to_yaml`, `b64encode`/`b64decode`, `regex_replace`,
//! `regex_search`, `basename`/`dirname`, `hash`, `password_hash`, `quote`, `combine`,
//! `dict2items`/`items2dict`, `bool`, `int` and `ternary`.
//!
//! Every filter does work bounded by the size of its input: regular expressions are
//! compiled with size limits and match in linear time, `password_hash` refuses more
//! than [`MAX_ROUNDS`] rounds. The template engine's fuel still bounds how often a
//! filter is called.

// minijinja hands filters their keyword and rest arguments by value.
#![allow(clippy::needless_pass_by_value)]

use std::collections::BTreeMap;

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

/// The most `rounds=` a `password_hash` may ask for: a million SHA-512 rounds take
/// about a second.
pub const MAX_ROUNDS: u32 = 1_000_000;

/// The size a compiled regular expression may reach.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Adds the filters to `env`, replacing minijinja's own `bool` and `int` with Ansible's.
pub fn add_to(env: &mut Environment<'static>) {
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_yaml);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("hash", hash);
    env.add_filter("password_hash", password_hash);
    env.add_filter("quote", quote);
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("bool", to_bool);
    env.add_filter("int", to_int);
    env.add_filter("ternary", ternary);
}

fn failure(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn json(value: &Value) -> Result<Json, Error> {
    if holds_undefined(value, 0) {
        // A mapping or list built from an undefined variable would otherwise be
        // written with `null` in its place.
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "a value inside is undefined",
        ));
    }
    serde_json::to_value(value).map_err(|error| failure(format!("not data: {error}")))
}

/// Whether `value` is undefined or holds an undefined value; nesting deeper than the
/// template engine's recursion limit is not looked into.
fn holds_undefined(value: &Value, depth: usize) -> bool {
    use minijinja::value::ValueKind;
    if depth > super::RECURSION_LIMIT {
        return false;
    }
    match value.kind() {
        ValueKind::Undefined => true,
        ValueKind::Seq => value
            .try_iter()
            .is_ok_and(|mut items| items.any(|item| holds_undefined(&item, depth + 1))),
        ValueKind::Map => value.try_iter().is_ok_and(|mut keys| {
            keys.any(|key| {
                value
                    .get_item(&key)
                    .is_ok_and(|item| holds_undefined(&item, depth + 1))
            })
        }),
        _ => false,
    }
}

/// Python's `json.dumps` layout (`", "` and `": "` between items), as Ansible's
/// `to_json` writes it.
struct Spaced;

impl serde_json::ser::Formatter for Spaced {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        between_items(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        between_items(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

fn between_items<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

fn write_json(value: &Json, formatter: impl serde_json::ser::Formatter) -> Result<String, Error> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer)
        .map_err(|error| failure(format!("cannot write JSON: {error}")))?;
    String::from_utf8(out).map_err(|error| failure(error.to_string()))
}

/// A value as one line of JSON, laid out as Ansible's `to_json` does.
fn to_json(value: &Value) -> Result<String, Error> {
    write_json(&json(value)?, Spaced)
}

/// Keys sorted at every level, as `to_nice_json` and `to_yaml` write them.
fn sorted(value: Json) -> Json {
    match value {
        Json::Object(map) => {
            let ordered: BTreeMap<String, Json> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Json::Object(ordered.into_iter().collect())
        }
        Json::Array(items) => Json::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A value as indented JSON with sorted keys (`indent`, default 4).
fn to_nice_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let indent = " ".repeat(indent.unwrap_or(4).min(16));
    write_json(
        &sorted(json(value)?),
        serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes()),
    )
}

/// A value as a YAML document (block style, keys in their order).
fn to_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    // Ansible's layout options (indent, width, default_flow_style) are accepted and
    // the one block layout is written.
    for option in ["indent", "width", "default_flow_style", "sort_keys"] {
        let _: Option<Value> = kwargs.get(option)?;
    }
    kwargs.assert_all_used()?;
    crate::yaml::to_string(&json(value)?)
        .map_err(|error| failure(format!("cannot write YAML: {error}")))
}

fn b64encode(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

fn b64decode(value: &str) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|error| failure(format!("b64decode: not base64: {error}")))?;
    String::from_utf8(bytes).map_err(|_| failure("b64decode: the decoded bytes are not UTF-8 text"))
}

/// A regular expression with Python's flags, bounded in size.
fn regex(pattern: &str, kwargs: &Kwargs) -> Result<regex::Regex, Error> {
    let ignorecase: Option<bool> = kwargs.get("ignorecase")?;
    let multiline: Option<bool> = kwargs.get("multiline")?;
    regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase.unwrap_or(false))
        .multi_line(multiline.unwrap_or(false))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|error| failure(format!("bad regular expression `{pattern}`: {error}")))
}

/// Python's replacement syntax (`\1`, `\g<1>`, `\g<name>`) in the regex crate's
/// (`${1}`, `${name}`); a literal `$` is doubled.
fn replacement(python: &str) -> String {
    let mut out = String::with_capacity(python.len());
    let mut chars = python.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(digit) if digit.is_ascii_digit() => {
                    let mut group = String::new();
                    while let Some(digit) = chars.peek().copied().filter(char::is_ascii_digit) {
                        group.push(digit);
                        chars.next();
                    }
                    out.push_str("${");
                    out.push_str(&group);
                    out.push('}');
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str("${");
                        out.push_str(&name);
                        out.push('}');
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// `value | regex_replace(pattern, replacement, ignorecase=, multiline=, count=)`.
fn regex_replace(
    value: &str,
    pattern: &str,
    with: Option<&str>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let regex = regex(pattern, &kwargs)?;
    let count: Option<usize> = kwargs.get("count")?;
    kwargs.assert_all_used()?;
    let with = replacement(with.unwrap_or(""));
    Ok(regex
        .replacen(value, count.unwrap_or(0), with.as_str())
        .into_owned())
}

/// `value | regex_search(pattern, '\\1', '\\g<name>', ...)`: the first match, or with
/// group arguments the list of those groups; no match is `none`.
fn regex_search(
    value: &str,
    pattern: &str,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let regex = regex(pattern, &kwargs)?;
    kwargs.assert_all_used()?;
    let Some(captures) = regex.captures(value) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(captures.get(0).map_or("", |m| m.as_str())));
    }
    let mut found = Vec::with_capacity(groups.len());
    for group in groups.iter() {
        let matched = if let Some(name) = group
            .strip_prefix("\\g<")
            .and_then(|rest| rest.strip_suffix('>'))
        {
            captures.name(name)
        } else if let Some(number) = group
            .strip_prefix('\\')
            .and_then(|number| number.parse::<usize>().ok())
        {
            captures.get(number)
        } else {
            return Err(failure(format!(
                "regex_search: a group is written '\\\\1' or '\\\\g<name>', not `{group}`"
            )));
        };
        found.push(Value::from(matched.map(|m| m.as_str().to_owned())));
    }
    Ok(Value::from(found))
}

/// Python's `os.path.basename`: what follows the last `/`.
fn basename(path: &str) -> String {
    path.rsplit('/').next().unwrap_or("").to_owned()
}

/// Python's `os.path.dirname`: what precedes the last `/`, without trailing slashes
/// unless it is all slashes.
fn dirname(path: &str) -> String {
    let Some(index) = path.rfind('/') else {
        return String::new();
    };
    let head = &path[..=index];
    let trimmed = head.trim_end_matches('/');
    if trimmed.is_empty() {
        head.to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// `value | hash('sha256')`: the hex digest; `sha1` by default, as in Ansible.
fn hash(value: &str, algorithm: Option<&str>) -> Result<String, Error> {
    use sha2::Digest as _;
    let data = value.as_bytes();
    Ok(match algorithm.unwrap_or("sha1") {
        "sha1" => hex(&sha1::Sha1::digest(data)),
        "sha224" => hex(&sha2::Sha224::digest(data)),
        "sha256" => hex(&sha2::Sha256::digest(data)),
        "sha384" => hex(&sha2::Sha384::digest(data)),
        "sha512" => hex(&sha2::Sha512::digest(data)),
        "md5" => hex(&md5::Md5::digest(data)),
        other => {
            return Err(failure(format!(
            "hash: unknown algorithm `{other}` (known: sha1, sha224, sha256, sha384, sha512, md5)"
        )))
        }
    })
}

/// The byte order in which SHA-512-crypt encodes its digest (from the crypt spec).
const SHA512_CRYPT_ORDER: [usize; 64] = [
    42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28, 29, 8,
    50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57, 36, 15, 16, 58,
    37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62, 63,
];

/// `password | password_hash('sha512', salt, rounds=5000)`: a `$6$` crypt(3) hash, as
/// `/etc/shadow` holds. The salt is required: a random one would make every run a
/// change.
fn password_hash(
    password: &str,
    scheme: Option<&str>,
    salt: Option<&str>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let rounds: Option<u32> = kwargs.get("rounds")?;
    kwargs.assert_all_used()?;
    let scheme = scheme.unwrap_or("sha512");
    if scheme != "sha512" {
        return Err(failure(format!(
            "password_hash: only `sha512` ($6$, what /etc/shadow uses) is supported, not `{scheme}`"
        )));
    }
    let Some(salt) = salt else {
        return Err(failure(
            "password_hash: give a salt, as in password_hash('sha512', 'mysalt'): a random salt would change the hash on every run",
        ));
    };
    if salt.is_empty()
        || !salt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    {
        return Err(failure(format!(
            "password_hash: the salt `{salt}` must be made of letters, digits, `.` and `/`"
        )));
    }
    // crypt(3) uses the first 16 characters of the salt.
    let salt = &salt[..salt.len().min(16)];
    let rounds = rounds.unwrap_or(sha_crypt::Params::RECOMMENDED_ROUNDS);
    if rounds > MAX_ROUNDS {
        return Err(failure(format!(
            "password_hash: at most {MAX_ROUNDS} rounds, not {rounds}"
        )));
    }
    let params = sha_crypt::Params::new(rounds)
        .map_err(|error| failure(format!("password_hash: rounds {rounds}: {error}")))?;
    let digest = sha_crypt::sha512_crypt(password.as_bytes(), salt.as_bytes(), params);
    let ordered: Vec<u8> = SHA512_CRYPT_ORDER.iter().map(|&i| digest[i]).collect();
    let encoded = <base64ct::Base64ShaCrypt as base64ct::Encoding>::encode_string(&ordered);
    let rounds_field = if rounds == sha_crypt::Params::RECOMMENDED_ROUNDS {
        String::new()
    } else {
        format!("rounds={rounds}$")
    };
    Ok(format!("$6${rounds_field}{salt}${encoded}"))
}

/// One POSIX shell word, as `shlex.quote` (converge's own quoting).
fn quote(value: &Value) -> String {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    converge_modules::shell::quote(&text).into_owned()
}

/// Merges `from` into `into`; with `recursive`, mappings found under the same key in
/// both are merged too, anything else is replaced.
fn merge(
    into: &mut serde_json::Map<String, Json>,
    from: serde_json::Map<String, Json>,
    deep: bool,
) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Json::Object(existing)), Json::Object(incoming)) if deep => {
                merge(existing, incoming, deep);
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn mapping(value: &Value, filter: &str) -> Result<serde_json::Map<String, Json>, Error> {
    match json(value)? {
        Json::Object(map) => Ok(map),
        other => Err(failure(format!(
            "{filter}: expects a mapping, got {}",
            kind(&other)
        ))),
    }
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "none",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a mapping",
    }
}

/// `a | combine(b, c, recursive=true)`: later mappings win.
fn combine(value: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive: Option<bool> = kwargs.get("recursive")?;
    let list_merge: Option<String> = kwargs.get("list_merge")?;
    kwargs.assert_all_used()?;
    if list_merge.as_deref().is_some_and(|mode| mode != "replace") {
        return Err(failure(
            "combine: only list_merge='replace' (the default) is supported",
        ));
    }
    let mut merged = mapping(value, "combine")?;
    for other in others.iter() {
        // A list of mappings is combined one by one, as Ansible does.
        let items = match json(other)? {
            Json::Array(items) => items,
            single => vec![single],
        };
        for item in items {
            let Json::Object(map) = item else {
                return Err(failure(format!(
                    "combine: expects mappings, got {}",
                    kind(&item)
                )));
            };
            merge(&mut merged, map, recursive.unwrap_or(false));
        }
    }
    Ok(Value::from_serialize(Json::Object(merged)))
}

fn names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    let key: Option<String> = kwargs.get("key_name")?;
    let value: Option<String> = kwargs.get("value_name")?;
    kwargs.assert_all_used()?;
    Ok((
        key.unwrap_or_else(|| "key".to_owned()),
        value.unwrap_or_else(|| "value".to_owned()),
    ))
}

/// `{a: 1} | dict2items` is `[{key: a, value: 1}]`.
fn dict2items(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = names(&kwargs)?;
    let items: Vec<Json> = mapping(value, "dict2items")?
        .into_iter()
        .map(|(key, value)| {
            let mut item = serde_json::Map::new();
            item.insert(key_name.clone(), Json::String(key));
            item.insert(value_name.clone(), value);
            Json::Object(item)
        })
        .collect();
    Ok(Value::from_serialize(&items))
}

/// `[{key: a, value: 1}] | items2dict` is `{a: 1}`.
fn items2dict(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = names(&kwargs)?;
    let Json::Array(items) = json(value)? else {
        return Err(failure("items2dict: expects a list of mappings"));
    };
    let mut out = serde_json::Map::new();
    for item in items {
        let (Some(key), Some(value)) = (item.get(&key_name), item.get(&value_name)) else {
            return Err(failure(format!(
                "items2dict: every item needs `{key_name}` and `{value_name}`"
            )));
        };
        let key = match key {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        };
        out.insert(key, value.clone());
    }
    Ok(Value::from_serialize(Json::Object(out)))
}

/// Ansible's `bool`: `true`, `yes`, `on`, `1` (any case) and the number 1 are true,
/// everything else false.
fn to_bool(value: &Value) -> bool {
    if let Some(text) = value.as_str() {
        return matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "1" | "y" | "t"
        );
    }
    match json(value) {
        Ok(Json::Bool(flag)) => flag,
        Ok(Json::Number(number)) => number.as_f64() == Some(1.0),
        _ => false,
    }
}

/// Jinja's `int(default=0, base=10)`: a number's integer part, a string parsed in
/// `base` (or as a decimal number), `default` when it is neither.
fn to_int(value: &Value, default: Option<i64>, kwargs: Kwargs) -> Result<i64, Error> {
    let default = match default {
        Some(default) => default,
        None => kwargs.get::<Option<i64>>("default")?.unwrap_or(0),
    };
    let base: Option<u32> = kwargs.get("base")?;
    kwargs.assert_all_used()?;
    let base = base.unwrap_or(10);
    if !(2..=36).contains(&base) {
        return Err(failure(format!("int: base {base} is not between 2 and 36")));
    }
    #[allow(clippy::cast_possible_truncation)]
    let from_float = |number: f64| {
        if number.is_finite() && number.abs() < 9.2e18 {
            number.trunc() as i64
        } else {
            default
        }
    };
    if let Some(text) = value.as_str() {
        let text = text.trim().replace('_', "");
        let digits = match base {
            16 => text
                .strip_prefix("0x")
                .or_else(|| text.strip_prefix("0X"))
                .unwrap_or(&text),
            8 => text
                .strip_prefix("0o")
                .or_else(|| text.strip_prefix("0O"))
                .unwrap_or(&text),
            2 => text
                .strip_prefix("0b")
                .or_else(|| text.strip_prefix("0B"))
                .unwrap_or(&text),
            _ => &text,
        };
        if let Ok(number) = i64::from_str_radix(digits, base) {
            return Ok(number);
        }
        return Ok(text.parse::<f64>().map_or(default, from_float));
    }
    Ok(match json(value) {
        Ok(Json::Bool(flag)) => i64::from(flag),
        Ok(Json::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().map(from_float))
            .unwrap_or(default),
        _ => default,
    })
}

/// `condition | ternary(if_true, if_false, if_none)`.
fn ternary(value: &Value, if_true: Value, if_false: Value, if_none: Option<Value>) -> Value {
    match if_none {
        Some(if_none) if value.is_none() => if_none,
        _ if value.is_true() => if_true,
        _ => if_false,
    }
}

#[cfg(test)]
mod tests {
    use crate::inventory::Vars;
    use crate::template::Renderer;
    use serde_json::json;

    fn vars() -> Vars {
        let mut vars = Vars::new();
        vars.insert("data".into(), json!({"b": [1, 2], "a": "x"}));
        vars.insert("path".into(), json!("/etc/asdf/foo.txt"));
        vars.insert(
            "default".into(),
            json!({"a": {"x": "default", "y": "default"}, "b": "default", "c": "default"}),
        );
        vars.insert(
            "patch".into(),
            json!({"a": {"y": "patch", "z": "patch"}, "b": "patch"}),
        );
        vars
    }

    fn render(source: &str) -> String {
        Renderer::new().render(source, &vars(), "t").unwrap()
    }

    fn value(source: &str) -> serde_json::Value {
        Renderer::new().value(source, &vars(), "t").unwrap()
    }

    fn error(source: &str) -> String {
        Renderer::new()
            .render(source, &vars(), "t")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn to_json_is_laid_out_as_python_writes_it() {
        // minijinja keeps a mapping's keys sorted.
        assert_eq!(render("{{ data | to_json }}"), r#"{"a": "x", "b": [1, 2]}"#);
        assert_eq!(render("{{ 'é' | to_json }}"), "\"é\"");
    }

    #[test]
    fn an_undefined_variable_inside_a_value_is_an_error_not_null() {
        assert_eq!(
            error("{{ {'a': [nope]} | to_json }}"),
            "undefined variable `nope` in t"
        );
        assert_eq!(render("{{ {'a': [none]} | to_json }}"), r#"{"a": [null]}"#);
    }

    #[test]
    fn to_nice_json_sorts_keys_and_indents_four() {
        assert_eq!(
            render("{{ data | to_nice_json }}"),
            "{\n    \"a\": \"x\",\n    \"b\": [\n        1,\n        2\n    ]\n}"
        );
        assert_eq!(
            render("{{ {'k': 1} | to_nice_json(indent=2) }}"),
            "{\n  \"k\": 1\n}"
        );
    }

    #[test]
    fn to_yaml_writes_a_document() {
        assert_eq!(render("{{ data | to_yaml }}"), "a: x\nb:\n- 1\n- 2\n");
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(
            render("{{ 'Hello, world' | b64encode }}"),
            "SGVsbG8sIHdvcmxk"
        );
        assert_eq!(
            render("{{ 'SGVsbG8sIHdvcmxk' | b64decode }}"),
            "Hello, world"
        );
        assert!(error("{{ '%%%' | b64decode }}").contains("b64decode: not base64"));
    }

    #[test]
    fn regex_replace_takes_python_replacements() {
        // Ansible's documented examples.
        assert_eq!(
            render(r"{{ 'ansible' | regex_replace('^a.*i(.*)$', 'a\\1') }}"),
            "able"
        );
        assert_eq!(
            render(r"{{ 'foobar' | regex_replace('^f.*o(.*)$', '\\1') }}"),
            "bar"
        );
        assert_eq!(
            render(
                r"{{ 'localhost:80' | regex_replace('^(?P<host>.+):(?P<port>\\d+)$', '\\g<host>, \\g<port>') }}"
            ),
            "localhost, 80"
        );
        assert_eq!(
            render("{{ 'localhost:80' | regex_replace(':80') }}"),
            "localhost"
        );
        assert_eq!(
            render(
                r"{{ 'CAR\nfar' | regex_replace('^(.)a', '$\\1', multiline=true, ignorecase=true) }}"
            ),
            "$CR\n$fr"
        );
        assert_eq!(
            render("{{ 'aaa' | regex_replace('a', 'b', count=2) }}"),
            "bba"
        );
        assert!(error("{{ 'x' | regex_replace('(') }}").contains("bad regular expression `(`"));
    }

    #[test]
    fn regex_search_returns_the_match_groups_or_none() {
        assert_eq!(
            render("{{ 'server1/database42' | regex_search('database[0-9]+') }}"),
            "database42"
        );
        assert_eq!(
            value("{{ 'foo' | regex_search('bar') }}"),
            serde_json::Value::Null
        );
        assert_eq!(
            value(
                r"{{ 'server1/database42' | regex_search('server([0-9]+)/database([0-9]+)', '\\1', '\\2') }}"
            ),
            json!(["1", "42"])
        );
        assert_eq!(
            value(r"{{ 'ab' | regex_search('(?P<first>a)', '\\g<first>') }}"),
            json!(["a"])
        );
        assert!(Renderer::new()
            .condition(
                "'HELLO' | regex_search('hel', ignorecase=true)",
                &vars(),
                "t"
            )
            .unwrap());
    }

    #[test]
    fn basename_and_dirname_are_pythons() {
        assert_eq!(render("{{ path | basename }}"), "foo.txt");
        assert_eq!(render("{{ path | dirname }}"), "/etc/asdf");
        assert_eq!(render("{{ '/etc/' | basename }}"), "");
        assert_eq!(render("{{ 'file' | dirname }}"), "");
        assert_eq!(render("{{ '/file' | dirname }}"), "/");
        assert_eq!(render("{{ 'a//b' | dirname }}"), "a");
    }

    #[test]
    fn hash_digests_in_hex() {
        assert_eq!(
            render("{{ 'test1' | hash('sha1') }}"),
            "b444ac06613fc8d63795be9ad0beaf55011936ac"
        );
        assert_eq!(
            render("{{ 'test1' | hash }}"),
            render("{{ 'test1' | hash('sha1') }}")
        );
        assert_eq!(
            render("{{ 'test1' | hash('md5') }}"),
            "5a105e8b9d40e1329780d62ea2265d8a"
        );
        assert_eq!(
            render("{{ 'abc' | hash('sha256') }}"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(error("{{ 'x' | hash('blake') }}").contains("unknown algorithm `blake`"));
    }

    #[test]
    fn password_hash_is_crypt_sha512() {
        // The same as `openssl passwd -6 -salt mysalt secret` and glibc's crypt(3).
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512', 'mysalt') }}"),
            "$6$mysalt$UX6P1VKOf6dr0s2pg4pLNvIUB6hLXvP6M5f/Yj9hJgMPdAJ4oArvk5YUD9/XWtk1JOpVwt/JTsczMJr8sFVML1"
        );
        // The glibc test vector with rounds (from the SHA-crypt specification).
        assert_eq!(
            render("{{ 'Hello world!' | password_hash('sha512', 'saltstringsaltstring', rounds=10000) }}"),
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        );
        assert!(error("{{ 'x' | password_hash('sha512') }}").contains("give a salt"));
        assert!(error("{{ 'x' | password_hash('md5', 'a') }}").contains("only `sha512`"));
        assert!(error("{{ 'x' | password_hash('sha512', 'a$b') }}").contains("must be made of"));
        assert!(
            error("{{ 'x' | password_hash('sha512', 'ab', rounds=2000000) }}")
                .contains("at most 1000000 rounds")
        );
    }

    #[test]
    fn quote_makes_one_shell_word() {
        assert_eq!(render("{{ 'plain' | quote }}"), "plain");
        assert_eq!(render("{{ 'a b' | quote }}"), "'a b'");
        assert_eq!(render("{{ \"it's\" | quote }}"), r"'it'\''s'");
        assert_eq!(render("{{ '' | quote }}"), "''");
    }

    #[test]
    fn combine_merges_shallow_or_deep() {
        assert_eq!(
            value("{{ default | combine(patch) }}"),
            json!({"a": {"y": "patch", "z": "patch"}, "b": "patch", "c": "default"})
        );
        assert_eq!(
            value("{{ default | combine(patch, recursive=true) }}"),
            json!({"a": {"x": "default", "y": "patch", "z": "patch"}, "b": "patch", "c": "default"})
        );
        assert_eq!(
            value("{{ {'a': 1} | combine({'b': 2}, {'a': 3}) }}"),
            json!({"a": 3, "b": 2})
        );
        assert_eq!(
            value("{{ {'a': 1} | combine([{'b': 2}, {'c': 3}]) }}"),
            json!({"a": 1, "b": 2, "c": 3})
        );
        assert!(
            error("{{ 'x' | combine({}) }}").contains("combine: expects a mapping, got a string")
        );
    }

    #[test]
    fn dict2items_and_items2dict_are_inverse() {
        assert_eq!(
            value("{{ {'a': 1, 'b': 2} | dict2items }}"),
            json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
        );
        assert_eq!(
            value("{{ {'Application': 'payment'} | dict2items(key_name='k', value_name='v') }}"),
            json!([{"k": "Application", "v": "payment"}])
        );
        assert_eq!(
            value("{{ [{'key': 'a', 'value': 1}] | items2dict }}"),
            json!({"a": 1})
        );
        assert_eq!(
            value("{{ [{'n': 'a', 'v': 1}] | items2dict(key_name='n', value_name='v') }}"),
            json!({"a": 1})
        );
        assert!(error("{{ [{'x': 1}] | items2dict }}").contains("needs `key` and `value`"));
    }

    #[test]
    fn bool_is_ansibles() {
        for (source, expected) in [
            ("'yes'", true),
            ("'True'", true),
            ("'on'", true),
            ("'1'", true),
            ("1", true),
            ("true", true),
            ("'no'", false),
            ("'false'", false),
            ("'off'", false),
            ("'0'", false),
            ("0", false),
            ("none", false),
            ("'anything'", false),
        ] {
            assert_eq!(
                value(&format!("{{{{ {source} | bool }}}}")),
                json!(expected),
                "{source}"
            );
        }
    }

    #[test]
    fn int_is_jinjas() {
        for (source, expected) in [
            ("'42' | int", 42),
            ("'3.7' | int", 3),
            ("4.9 | int", 4),
            ("'x' | int", 0),
            ("'x' | int(7)", 7),
            ("'x' | int(default=5)", 5),
            ("'0x1f' | int(base=16)", 31),
            ("'755' | int(base=8)", 493),
            ("true | int", 1),
        ] {
            assert_eq!(
                value(&format!("{{{{ {source} }}}}")),
                json!(expected),
                "{source}"
            );
        }
    }

    #[test]
    fn ternary_chooses() {
        assert_eq!(render("{{ true | ternary('a', 'b') }}"), "a");
        assert_eq!(render("{{ false | ternary('a', 'b') }}"), "b");
        assert_eq!(render("{{ none | ternary('a', 'b', 'n') }}"), "n");
    }

    #[test]
    fn python_methods_work_on_values() {
        assert_eq!(
            render("{% for k, v in data.items() %}{{ k }}={{ v }};{% endfor %}"),
            "a=x;b=[1, 2];"
        );
        assert!(Renderer::new()
            .condition("'abc'.startswith('a')", &vars(), "t")
            .unwrap());
    }
}
