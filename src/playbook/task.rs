//! A task as the playbook writes it: its module and raw parameters, where it is
//! written (to point errors at it), and the task-level keys; read strictly, with one
//! module key per task.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use converge_modules::{deserialize_params, secret_params, DynModule, MODULE_NAMES};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{ContentSource, ParamsError, Raw, Stage, Step};
use crate::yaml;

/// Which module a task uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleKind(&'static str);

impl ModuleKind {
    /// The module's name (`file`, `systemd_unit`, ...).
    pub fn kind(self) -> &'static str {
        self.0
    }
}

/// Where a playbook's value is written: its file, and the text to find it in again
/// (see [`yaml::locate`]), only when an error needs its line and column.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub(super) file: PathBuf,
    pub(super) text: Arc<str>,
    /// The path from the document's root to the task.
    pub(super) task: Vec<Step>,
}

/// A place in a playbook: `file:line:column`, or only the file when it is not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based; 0 when not known.
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl Origin {
    /// Where the task's module parameters at `within` are written (the task itself when
    /// `within` is `None`).
    pub fn locate(&self, module: &str, within: Option<&[Step]>) -> Location {
        let mut path = self.task.clone();
        if let Some(within) = within {
            path.push(Step::Key(module.to_owned()));
            path.extend_from_slice(within);
        }
        let (line, column) = yaml::locate(&self.text, &path).unwrap_or((0, 0));
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }
}

/// One task: a module with its parameters, plus the task-level keys.
#[derive(Debug)]
pub struct Task {
    pub name: Option<String>,
    pub module: ModuleKind,
    /// Parameters as written, without `src`/`template` (see `source`): rendered and
    /// typed for each host.
    pub params: Raw,
    /// Where the task is written.
    pub origin: Origin,
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
                .find_map(|key| match self.params.get(key) {
                    Some(Raw::Str(text)) => Some(text.clone()),
                    Some(list @ Raw::Seq(_)) => Some(list.to_json().to_string()),
                    _ => None,
                });
        match subject {
            Some(subject) => format!("{} {subject}", self.module.kind()),
            None => self.module.kind().to_owned(),
        }
    }

    /// Every template in the task: its parameters' and its `template` file's.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        let file = match &self.source {
            Some(ContentSource::Template { source, .. }) => Some(source.as_str()),
            _ => None,
        };
        self.params.templates().chain(file)
    }

    /// The task's module with `params` (rendered for a host, or as written at load).
    ///
    /// # Errors
    /// The parameters do not fit the module's types.
    pub fn typed(&self, params: &Raw, stage: Stage) -> Result<Box<dyn DynModule>, ParamsError> {
        deserialize_params(self.module.kind(), params.deserializer(stage)).unwrap_or_else(|| {
            Err(de::Error::custom(format_args!(
                "unknown module `{}`",
                self.module.kind()
            )))
        })
    }

    /// Whether the task runs under `--tags` and `--skip-tags` (see [`TagFilter`](super::TagFilter)).
    pub fn selected(&self, filter: &super::TagFilter) -> bool {
        filter.selects(&self.tags)
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
        let mut module: Option<(ModuleKind, Raw)> = None;
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
                    if let Some((first, _)) = &module {
                        return Err(de::Error::custom(format_args!(
                            "a task has exactly one module, but this one has `{}` and `{kind}`; split it into two tasks",
                            first.kind()
                        )));
                    }
                    module = Some((ModuleKind(kind), map.next_value()?));
                }
            }
        }
        let Some((module, params)) = module else {
            return Err(de::Error::custom(format_args!(
                "this task has no module; give it exactly one of: {}",
                MODULE_NAMES.join(", ")
            )));
        };
        // A secret parameter (a password hash) implies no_log: no `no_log: false` shows it.
        let secret = secret_params(module.kind())
            .iter()
            .any(|param| params.get(param).is_some());
        Ok(Task {
            name,
            module,
            params,
            origin: Origin::default(),
            source: None,
            notify: notify.map(|n| n.0).unwrap_or_default(),
            when,
            tags: tags.map(|t| t.0).unwrap_or_default(),
            become_user,
            no_log: no_log.unwrap_or(false) || secret,
        })
    }
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
