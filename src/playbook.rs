//! Playbooks: a YAML list of plays, each with hosts, variables, tasks and handlers.
//!
//! Parsing is strict and positional: an unknown key anywhere is an error naming the key,
//! the file, the line and column, and the keys allowed there. A task has exactly one
//! module key; its parameters are checked by that module's own typed parameters. Files
//! named by `src` and `template` are read at load time, so a missing one is reported
//! before any host is contacted.

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};

use converge_modules::{deserialize_params, DynModule, ParamError, MODULE_NAMES};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::inventory::Vars;
use crate::yaml::{self, YamlError};

/// A playbook that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read playbook {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Yaml(#[from] YamlError),
    #[error("{playbook}: task `{task}`: cannot read {param} file {file}: {reason}")]
    Source {
        playbook: PathBuf,
        task: String,
        param: &'static str,
        file: String,
        reason: String,
    },
    #[error("{playbook}: task `{task}` notifies `{handler}`, but play `{play}` has no handler of that name{known}")]
    UnknownHandler {
        playbook: PathBuf,
        task: String,
        handler: String,
        play: String,
        known: String,
    },
    #[error("{playbook}: task `{task}`: {message}")]
    Task {
        playbook: PathBuf,
        task: String,
        message: String,
    },
    #[error("{playbook}: play `{play}`: {message}")]
    Play {
        playbook: PathBuf,
        play: String,
        message: String,
    },
}

/// A loaded playbook.
#[derive(Debug)]
pub struct Playbook {
    pub path: PathBuf,
    /// Directory `src` and `template` files are looked up in.
    pub dir: PathBuf,
    pub plays: Vec<Play>,
}

/// One play: which hosts, as whom, with which variables, doing what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Play {
    #[serde(default)]
    pub name: Option<String>,
    /// Host pattern (`app`, `web*`, `app:!app3`).
    pub hosts: String,
    /// Run commands as root via `sudo -n` when the SSH user is not root.
    #[serde(default, rename = "become")]
    pub become_root: bool,
    /// Run commands as this user (through `sudo -n -u`); implies `become`.
    #[serde(default)]
    pub become_user: Option<String>,
    /// Hide every task's details (changes, diffs, errors, commands) from output and
    /// reports.
    #[serde(default)]
    pub no_log: bool,
    /// Work on this many hosts at a time (rolling change): a number, a percentage or
    /// a list of them (see `rollout`).
    #[serde(default)]
    pub serial: Option<crate::rollout::Serial>,
    /// With `serial`: the share of a batch's hosts (percent) that may fail before the
    /// following batches are called off. Default 0: any failure stops the rollout.
    #[serde(default)]
    pub max_fail_percentage: Option<u8>,
    /// A failure on any host stops the play everywhere: the other hosts of its batch
    /// start no further task, and no later batch runs.
    #[serde(default)]
    pub any_errors_fatal: bool,
    #[serde(default)]
    pub vars: Vars,
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub handlers: Vec<Task>,
}

impl Play {
    /// The name shown in output.
    pub fn title(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.hosts.clone())
    }
}

/// Where a task's file content comes from, read at load time.
#[derive(Debug, Clone)]
pub enum ContentSource {
    /// `src`: used as it is.
    File { content: String },
    /// `template`: rendered per host.
    Template { path: PathBuf, source: String },
}

/// One task: a module with its parameters, plus the task-level keys.
#[derive(Debug)]
pub struct Task {
    pub name: Option<String>,
    /// The module as parsed from the playbook (parameters still templates).
    pub module: Box<dyn DynModule>,
    /// Parameters as JSON, without `src`/`template` (see `source`).
    pub params: serde_json::Value,
    pub source: Option<ContentSource>,
    pub notify: Vec<String>,
    pub when: Option<String>,
    pub tags: Vec<String>,
    /// Run this task's changes as this user (through `sudo -n -u`).
    pub become_user: Option<String>,
    /// Hide this task's details from output and reports.
    pub no_log: bool,
}

impl Task {
    /// The name shown in output: the task's `name`, or the module and what it manages.
    pub fn title(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        if self.no_log {
            // What a task manages may be the secret itself (a command line, a path).
            return self.module.kind().to_owned();
        }
        let subject =
            ["name", "path", "user", "cmd"]
                .iter()
                .find_map(|key| match self.params.get(*key) {
                    Some(serde_json::Value::String(text)) => Some(text.clone()),
                    Some(other @ serde_json::Value::Array(_)) => Some(other.to_string()),
                    _ => None,
                });
        match subject {
            Some(subject) => format!("{} {subject}", self.module.kind()),
            None => self.module.kind().to_owned(),
        }
    }

    /// Whether the task runs under `--tags`: every task runs when no tags are given.
    pub fn selected(&self, tags: &[String]) -> bool {
        tags.is_empty()
            || self.tags.iter().any(|tag| tags.contains(tag))
            || self.tags.iter().any(|t| t == "always")
    }
}

impl Playbook {
    /// Reads and validates the playbook at `path`.
    pub fn load(path: &Path) -> Result<Playbook, PlaybookError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
            path: path.to_owned(),
            source,
        })?;
        Playbook::parse(&text, path)
    }

    /// Parses playbook text that was read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Playbook, PlaybookError> {
        let plays: Vec<Play> = if text.trim().is_empty() {
            Vec::new()
        } else {
            // A task is parsed before its play's `no_log` is known: when any play has
            // it, errors about a task's values name the parameter only.
            #[derive(Deserialize)]
            struct PlayFlags {
                #[serde(default)]
                no_log: bool,
            }
            let any_no_log = yaml::from_str::<Vec<PlayFlags>>(text, path)
                .map_or(true, |plays| plays.iter().any(|play| play.no_log));
            HIDE_VALUES.with(|hide| hide.set(any_no_log));
            let plays = yaml::from_str(text, path);
            HIDE_VALUES.with(|hide| hide.set(false));
            plays?
        };
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let mut playbook = Playbook {
            path: path.to_owned(),
            dir,
            plays,
        };
        for play in playbook.plays.iter_mut().filter(|play| play.no_log) {
            for task in play.tasks.iter_mut().chain(play.handlers.iter_mut()) {
                task.no_log = true;
            }
        }
        playbook.resolve_sources()?;
        playbook.check_handlers()?;
        Ok(playbook)
    }

    fn resolve_sources(&mut self) -> Result<(), PlaybookError> {
        let (playbook, dir) = (self.path.clone(), self.dir.clone());
        for play in &mut self.plays {
            for task in play.tasks.iter_mut().chain(play.handlers.iter_mut()) {
                let title = task.title();
                let Some(params) = task.params.as_object_mut() else {
                    continue;
                };
                let sources: Vec<&str> = ["content", "src", "template"]
                    .into_iter()
                    .filter(|key| params.contains_key(*key))
                    .collect();
                if sources.len() > 1 {
                    return Err(PlaybookError::Task {
                        playbook: playbook.clone(),
                        task: title,
                        message: format!(
                            "give only one of content, src and template (this task has {})",
                            sources.join(" and ")
                        ),
                    });
                }
                for (param, subdir) in [("src", "files"), ("template", "templates")] {
                    let Some(value) = params.remove(param) else {
                        continue;
                    };
                    let name = value.as_str().unwrap_or_default().to_owned();
                    let error = |reason: String| PlaybookError::Source {
                        playbook: playbook.clone(),
                        task: title.clone(),
                        param,
                        file: name.clone(),
                        reason,
                    };
                    let candidates = [dir.join(subdir).join(&name), dir.join(&name)];
                    let Some(found) = candidates.iter().find(|candidate| candidate.is_file())
                    else {
                        return Err(error(format!(
                            "not found (looked for {})",
                            candidates
                                .iter()
                                .map(|c| c.display().to_string())
                                .collect::<Vec<_>>()
                                .join(" and ")
                        )));
                    };
                    let bytes = std::fs::read(found).map_err(|e| error(e.to_string()))?;
                    let text = String::from_utf8(bytes)
                        .map_err(|_| error("it is not UTF-8 text".to_owned()))?;
                    task.source = Some(if param == "src" {
                        ContentSource::File { content: text }
                    } else {
                        ContentSource::Template {
                            path: found.clone(),
                            source: text,
                        }
                    });
                }
            }
        }
        Ok(())
    }

    fn check_handlers(&self) -> Result<(), PlaybookError> {
        for play in &self.plays {
            let handler_names: Vec<String> = play.handlers.iter().map(Task::title).collect();
            for task in play.tasks.iter().chain(play.handlers.iter()) {
                for handler in &task.notify {
                    if !handler_names.contains(handler) {
                        let known = if handler_names.is_empty() {
                            String::new()
                        } else {
                            format!(" (handlers: {})", handler_names.join(", "))
                        };
                        return Err(PlaybookError::UnknownHandler {
                            playbook: self.path.clone(),
                            task: task.title(),
                            handler: handler.clone(),
                            play: play.title(),
                            known,
                        });
                    }
                }
            }
            let users = play.become_user.iter().chain(
                play.tasks
                    .iter()
                    .chain(&play.handlers)
                    .filter_map(|t| t.become_user.as_ref()),
            );
            for user in users {
                converge_modules::names::user(user).map_err(|error| PlaybookError::Play {
                    playbook: self.path.clone(),
                    play: play.title(),
                    message: format!("become_user: {error}"),
                })?;
            }
            let problem = if let Some(problem) = play
                .serial
                .as_ref()
                .and_then(crate::rollout::Serial::problem)
            {
                Some(problem)
            } else if play.max_fail_percentage.is_some_and(|p| p > 100) {
                Some("max_fail_percentage must be between 0 and 100")
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(PlaybookError::Play {
                    playbook: self.path.clone(),
                    play: play.title(),
                    message: message.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// The keys a task may have besides its module.
const TASK_KEYS: &[&str] = &["name", "notify", "when", "tags", "become_user", "no_log"];

enum TaskKey {
    Name,
    Notify,
    When,
    Tags,
    BecomeUser,
    NoLog,
    Module(&'static str),
}

struct TaskKeySeed;

impl<'de> DeserializeSeed<'de> for TaskKeySeed {
    type Value = TaskKey;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<TaskKey, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TaskKeySeed {
    type Value = TaskKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<TaskKey, E> {
        Ok(match key {
            "name" => TaskKey::Name,
            "notify" => TaskKey::Notify,
            "when" => TaskKey::When,
            "tags" => TaskKey::Tags,
            "become_user" => TaskKey::BecomeUser,
            "no_log" => TaskKey::NoLog,
            _ => match MODULE_NAMES.iter().find(|module| **module == key) {
                Some(module) => TaskKey::Module(module),
                None => {
                    return Err(E::custom(format_args!(
                        "unknown field `{key}`, expected one of {}",
                        TASK_KEYS
                            .iter()
                            .chain(MODULE_NAMES)
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            },
        })
    }
}

struct ModuleSeed(&'static str);

impl<'de> DeserializeSeed<'de> for ModuleSeed {
    type Value = Box<dyn DynModule>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserialize_params(self.0, deserializer).unwrap_or_else(|| {
            Err(de::Error::custom(format_args!(
                "unknown module `{}`",
                self.0
            )))
        })
    }
}

/// A string or a list of strings (`notify`, `tags`).
struct StringOrList(Vec<String>);

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<StringOrList, E> {
                Ok(StringOrList(vec![value.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<StringOrList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(StringOrList(items))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

impl<'de> Deserialize<'de> for Task {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TaskVisitor)
    }
}

struct TaskVisitor;

impl<'de> Visitor<'de> for TaskVisitor {
    type Value = Task;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task (a mapping with one module key)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Task, A::Error> {
        fn once<T, E: de::Error>(slot: Option<&T>, key: &str) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::custom(format_args!("duplicate field `{key}`")));
            }
            Ok(())
        }
        let mut name = None;
        let mut notify: Option<StringOrList> = None;
        let mut when = None;
        let mut tags: Option<StringOrList> = None;
        let mut module: Option<Box<dyn DynModule>> = None;
        let mut become_user: Option<String> = None;
        let mut no_log: Option<bool> = None;
        while let Some(key) = map.next_key_seed(TaskKeySeed)? {
            match key {
                TaskKey::Name => {
                    once(name.as_ref(), "name")?;
                    name = Some(map.next_value::<String>()?);
                }
                TaskKey::Notify => {
                    once(notify.as_ref(), "notify")?;
                    notify = Some(map.next_value()?);
                }
                TaskKey::When => {
                    once(when.as_ref(), "when")?;
                    when = Some(map.next_value::<WhenValue>()?.0);
                }
                TaskKey::Tags => {
                    once(tags.as_ref(), "tags")?;
                    tags = Some(map.next_value()?);
                }
                TaskKey::BecomeUser => {
                    once(become_user.as_ref(), "become_user")?;
                    become_user = Some(map.next_value()?);
                }
                TaskKey::NoLog => {
                    once(no_log.as_ref(), "no_log")?;
                    no_log = Some(map.next_value()?);
                }
                TaskKey::Module(kind) => {
                    if let Some(first) = &module {
                        return Err(de::Error::custom(format_args!(
                            "a task has exactly one module, but this one has `{}` and `{kind}`; split it into two tasks",
                            first.kind()
                        )));
                    }
                    module = Some(map.next_value_seed(ModuleSeed(kind))?);
                }
            }
        }
        let Some(module) = module else {
            return Err(de::Error::custom(format_args!(
                "this task has no module; give it exactly one of: {}",
                MODULE_NAMES.join(", ")
            )));
        };
        let task = Task {
            name,
            params: module.to_json(),
            module,
            source: None,
            notify: notify.map(|n| n.0).unwrap_or_default(),
            when,
            tags: tags.map(|t| t.0).unwrap_or_default(),
            become_user,
            no_log: no_log.unwrap_or(false),
        };
        // A value written out in full is checked here, where the error can point at
        // the task; templated ones are checked once rendered for each host, and how
        // parameters combine once the task's files are read.
        if !holds_template(&task.params) {
            if let Err(error @ (ParamError::Invalid { .. } | ParamError::Name(_))) =
                task.module.validate()
            {
                let hide = task.no_log || HIDE_VALUES.with(Cell::get);
                let title = match (&task.name, hide) {
                    (Some(name), _) => name.clone(),
                    (None, true) => task.module.kind().to_owned(),
                    (None, false) => task.title(),
                };
                return Err(de::Error::custom(format_args!(
                    "task `{title}`: {}",
                    param_error_message(&error, &task.params, hide)
                )));
            }
        }
        Ok(task)
    }
}

thread_local! {
    /// Set while a playbook with a `no_log` play is parsed (see [`Playbook::parse`]).
    static HIDE_VALUES: Cell<bool> = const { Cell::new(false) };
}

/// Whether any string in `value` has template syntax.
fn holds_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => crate::template::is_template(text),
        serde_json::Value::Array(items) => items.iter().any(holds_template),
        serde_json::Value::Object(map) => map.values().any(holds_template),
        _ => false,
    }
}

/// What a parameter error of a task says: for a `no_log` task, the parameter and never
/// its value (messages that name parameters only are kept).
pub fn param_error_message(error: &ParamError, params: &serde_json::Value, no_log: bool) -> String {
    if !no_log {
        return error.to_string();
    }
    let param = match error {
        ParamError::Invalid { param, .. } => Some((*param).to_owned()),
        ParamError::Name(name) => param_holding(params, |value| value == name.value),
        ParamError::Required { .. } | ParamError::OneOf { .. } | ParamError::AtMostOne { .. } => {
            return error.to_string()
        }
    };
    match param {
        Some(param) => format!("`{param}` is invalid (details hidden: no_log)"),
        None => "a parameter is invalid (details hidden: no_log)".to_owned(),
    }
}

/// The top-level parameter with a string value (or a string in its list) for which
/// `matches` holds. `content` is free text that no check refuses, so it is never the
/// one (though it may hold the same value).
pub fn param_holding(params: &serde_json::Value, matches: impl Fn(&str) -> bool) -> Option<String> {
    let holds = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => !text.is_empty() && matches(text),
        serde_json::Value::Array(items) => items.iter().any(|item| {
            item.as_str()
                .is_some_and(|text| !text.is_empty() && matches(text))
        }),
        _ => false,
    };
    params
        .as_object()?
        .iter()
        .find(|(key, value)| *key != "content" && holds(value))
        .map(|(key, _)| key.clone())
}

/// `when:` takes an expression string or a plain boolean.
struct WhenValue(String);

impl<'de> Deserialize<'de> for WhenValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WhenVisitor;
        impl Visitor<'_> for WhenVisitor {
            type Value = WhenValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition (an expression or true/false)")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<WhenValue, E> {
                Ok(WhenValue(value.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<WhenValue, E> {
                Ok(WhenValue(value.to_string()))
            }
        }
        deserializer.deserialize_any(WhenVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Playbook, PlaybookError> {
        Playbook::parse(text, Path::new("site.yml"))
    }

    #[test]
    fn a_play_with_tasks_and_handlers_parses() {
        let playbook = parse(
            "- name: sidekiq\n  hosts: app\n  become: true\n  tasks:\n    - name: unit\n      service: { name: sidekiq, state: started }\n      notify: restart sidekiq\n  handlers:\n    - name: restart sidekiq\n      service: { name: sidekiq, state: restarted }\n",
        )
        .unwrap();
        let play = &playbook.plays[0];
        assert!(play.become_root);
        assert_eq!(play.tasks[0].module.kind(), "service");
        assert_eq!(play.tasks[0].notify, ["restart sidekiq"]);
        assert_eq!(play.handlers[0].title(), "restart sidekiq");
    }

    #[test]
    fn unknown_play_key_is_located_with_allowed_keys() {
        let error = parse("- hosts: app\n  tasx: []\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml:2:3: unknown key `tasx`\n  help: allowed keys here: name, hosts, become, become_user, no_log, serial, max_fail_percentage, any_errors_fatal, vars, tasks, handlers"
        );
    }

    #[test]
    fn unknown_task_key_lists_task_keys_and_modules() {
        let error = parse(
            "- hosts: app\n  tasks:\n    - name: x\n      notfy: y\n      file: { path: /x }\n",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "site.yml:4:7: unknown key `notfy`\n  help: allowed keys here: name, notify, when, tags, become_user, no_log, {}",
                MODULE_NAMES.join(", ")
            )
        );
    }

    #[test]
    fn unknown_module_parameter_is_located() {
        let error = parse(
            "- hosts: app\n  tasks:\n    - file:\n        path: /x\n        mdoe: \"0644\"\n",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml:5:9: unknown key `mdoe`\n  help: allowed keys here: path, content, src, template, owner, group, mode, state"
        );
    }

    #[test]
    fn two_modules_in_one_task_is_an_error() {
        let error = parse(
            "- hosts: app\n  tasks:\n    - file: { path: /x }\n      directory: { path: /y }\n",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("has `file` and `directory`; split it into two tasks"),
            "{error}"
        );
    }

    #[test]
    fn task_without_module_is_an_error() {
        let error = parse("- hosts: app\n  tasks:\n    - name: nothing\n").unwrap_err();
        assert!(
            error.to_string().contains("this task has no module"),
            "{error}"
        );
    }

    #[test]
    fn integer_mode_is_explained_and_leading_zero_mode_is_octal() {
        let error =
            parse("- hosts: app\n  tasks:\n    - file: { path: /x, mode: 644 }\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml:3:31: mode 644 is a number; write it as a quoted octal string, e.g. mode: \"0644\""
        );
        let playbook =
            parse("- hosts: app\n  tasks:\n    - file: { path: /x, mode: 0640 }\n").unwrap();
        assert_eq!(playbook.plays[0].tasks[0].params["mode"], "0640");
    }

    #[test]
    fn notify_must_name_a_handler() {
        let error =
            parse("- hosts: app\n  tasks:\n    - file: { path: /x }\n      notify: restart\n")
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml: task `file /x` notifies `restart`, but play `app` has no handler of that name"
        );
    }

    #[test]
    fn missing_src_file_is_reported_at_load() {
        let error = parse("- hosts: app\n  tasks:\n    - file: { path: /x, src: nope.conf }\n")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("site.yml: task `file /x`: cannot read src file nope.conf: not found"),
            "{error}"
        );
    }

    #[test]
    fn literal_values_are_checked_at_load_and_hidden_for_no_log() {
        let task = "    - user: { name: \"hunter2 s3cret\" }\n";
        let error = parse(&format!("- hosts: app\n  tasks:\n{task}")).unwrap_err();
        assert!(
            error.to_string().starts_with(
                "site.yml:3:7: task `user hunter2 s3cret`: invalid user name \"hunter2 s3cret\""
            ),
            "{error}"
        );
        for playbook in [
            format!("- hosts: app\n  tasks:\n{task}      no_log: true\n"),
            format!("- hosts: app\n  no_log: true\n  tasks:\n{task}"),
            format!("- hosts: app\n  tasks:\n{task}- hosts: app\n  no_log: true\n  tasks: []\n"),
        ] {
            let error = parse(&playbook).unwrap_err().to_string();
            assert!(
                error.contains("task `user`: `name` is invalid (details hidden: no_log)"),
                "{error}"
            );
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn two_content_sources_are_refused() {
        let error = parse("- hosts: app\n  tasks:\n    - file: { path: /x, content: a, src: b }\n")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml: task `file /x`: give only one of content, src and template (this task has content and src)"
        );
    }

    #[test]
    fn tags_select_tasks() {
        let playbook =
            parse("- hosts: app\n  tasks:\n    - file: { path: /x }\n      tags: [a]\n").unwrap();
        let task = &playbook.plays[0].tasks[0];
        assert!(task.selected(&[]));
        assert!(task.selected(&["a".into()]));
        assert!(!task.selected(&["b".into()]));
    }
}
