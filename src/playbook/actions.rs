//! The engine's own actions, written where a task's module goes: `set_fact`, `debug`,
//! `assert`, `fail`, and `meta: flush_handlers` (or `flush_handlers:`). They never touch
//! a host. Their parameters are checked here, at load; the engine carries them out.

use super::task::is_variable_name;
use super::{Raw, Task};

/// An action's parameters, checked at load.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<'t> {
    /// Variables to set on the host, as written (templates rendered when it runs).
    SetFact(Vec<(&'t str, &'t Raw)>),
    /// A message (a template), or a variable's value (an expression).
    Debug {
        msg: Option<&'t Raw>,
        var: Option<&'t str>,
    },
    Assert {
        that: Vec<String>,
        fail_msg: Option<&'t str>,
        success_msg: Option<&'t str>,
    },
    Fail {
        msg: Option<&'t str>,
    },
    FlushHandlers,
}

/// A string parameter of an action.
fn text<'t>(params: &'t Raw, key: &str) -> Result<Option<&'t str>, String> {
    match params.get(key) {
        None | Some(Raw::Null) => Ok(None),
        Some(Raw::Str(text)) => Ok(Some(text)),
        Some(_) => Err(format!("`{key}` takes a string")),
    }
}

/// The keys of a mapping of parameters, refusing any not in `allowed`.
fn only(params: &Raw, action: &str, allowed: &[&str]) -> Result<(), String> {
    let Raw::Map(entries) = params else {
        return Err(format!(
            "{action} takes a mapping with {}",
            allowed.join(", ")
        ));
    };
    if let Some((key, _)) = entries
        .iter()
        .find(|(key, _)| !allowed.contains(&key.as_str()))
    {
        return Err(format!(
            "unknown key `{key}` of {action}; allowed: {}",
            allowed.join(", ")
        ));
    }
    Ok(())
}

/// What the task's action is, with its parameters checked.
///
/// # Errors
/// The parameters do not fit the action, said with the fix.
pub fn action(task: &Task) -> Result<Action<'_>, String> {
    let params = &task.params;
    match task.module.kind() {
        "set_fact" => {
            let Raw::Map(entries) = params else {
                return Err("set_fact takes a mapping of variable names to values".to_owned());
            };
            if let Some((name, _)) = entries.iter().find(|(name, _)| !is_variable_name(name)) {
                return Err(format!(
                    "set_fact: `{name}` is not a variable name; use letters, digits and _, not starting with a digit"
                ));
            }
            Ok(Action::SetFact(
                entries
                    .iter()
                    .map(|(name, value)| (name.as_str(), value))
                    .collect(),
            ))
        }
        "debug" => {
            only(params, "debug", &["msg", "var"])?;
            let msg = params.get("msg");
            let var = text(params, "var")?;
            if msg.is_some() == var.is_some() {
                return Err("debug takes exactly one of `msg` and `var`".to_owned());
            }
            Ok(Action::Debug { msg, var })
        }
        "assert" => {
            only(
                params,
                "assert",
                &["that", "fail_msg", "msg", "success_msg"],
            )?;
            let that = match params.get("that") {
                Some(Raw::Str(condition)) => vec![condition.clone()],
                Some(Raw::Bool(value)) => vec![value.to_string()],
                Some(Raw::Seq(items)) => items
                    .iter()
                    .map(|item| match item {
                        Raw::Str(condition) => Ok(condition.clone()),
                        Raw::Bool(value) => Ok(value.to_string()),
                        _ => Err("assert: each of `that` is a condition".to_owned()),
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err("assert needs `that`: a condition or a list of them".to_owned()),
            };
            let fail_msg = match text(params, "fail_msg")? {
                Some(text) => Some(text),
                None => text(params, "msg")?,
            };
            Ok(Action::Assert {
                that,
                fail_msg,
                success_msg: text(params, "success_msg")?,
            })
        }
        "fail" => {
            if *params == Raw::Null {
                return Ok(Action::Fail { msg: None });
            }
            only(params, "fail", &["msg"])?;
            Ok(Action::Fail {
                msg: text(params, "msg")?,
            })
        }
        "meta" => match params {
            Raw::Str(what) if what == "flush_handlers" => Ok(Action::FlushHandlers),
            _ => Err("meta: only `meta: flush_handlers` is supported".to_owned()),
        },
        "flush_handlers" => match params {
            Raw::Null | Raw::Bool(true) => Ok(Action::FlushHandlers),
            Raw::Map(entries) if entries.is_empty() => Ok(Action::FlushHandlers),
            _ => Err("flush_handlers takes no parameters: write `flush_handlers: true`".to_owned()),
        },
        other => Err(format!("`{other}` is not an action")),
    }
}

/// Checks an action's parameters at load.
///
/// # Errors
/// What [`action`] says.
pub fn check(task: &Task) -> Result<(), String> {
    let kind = task.module.kind();
    if task.loop_over.is_some() && matches!(kind, "meta" | "flush_handlers") {
        return Err("flush_handlers cannot loop".to_owned());
    }
    action(task).map(|_| ())
}
