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
use crate::inventory::Vars;
use crate::yaml;

/// Which module a task uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleKind(&'static str);

impl ModuleKind {
    /// The module's name (`file`, `systemd_unit`, ...).
    pub fn kind(self) -> &'static str {
        self.0
    }

    /// Whether this is one of the engine's own actions ([`ACTIONS`]), which never
    /// touch a host, rather than a module.
    pub fn is_action(self) -> bool {
        ACTIONS.contains(&self.0)
    }
}

/// What a task may do instead of a module: the engine's own actions, on variables and
/// the run's flow (see `engine::actions`).
pub const ACTIONS: &[&str] = &[
    "set_fact",
    "debug",
    "assert",
    "fail",
    "meta",
    "flush_handlers",
];

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
    /// The handlers it notifies: by name as written, then, once the playbook is
    /// loaded, by [`Task::handler_id`] (see `Playbook::resolve_handlers`).
    pub notify: Vec<String>,
    pub when: Option<String>,
    pub tags: Vec<String>,
    /// Run this task's changes as this user (through `sudo -n -u`).
    pub become_user: Option<String>,
    /// Hide this task's details from output and reports.
    pub no_log: bool,
    /// Keep this task's result, per host, as a variable of that name.
    pub register: Option<String>,
    /// Conditions (all must hold) that decide whether the task counts as changed,
    /// evaluated with its registered result in scope.
    pub changed_when: Vec<String>,
    /// Conditions (all must hold) that decide whether the task counts as failed.
    pub failed_when: Vec<String>,
    /// A failure is reported as ignored and the host goes on.
    pub ignore_errors: bool,
    /// `until` with `retries` and `delay`: run the task again until its conditions hold.
    pub until: Option<Until>,
    /// `loop`: the items the task runs once for (a list, or a template rendering to
    /// one), rendered for each host.
    pub loop_over: Option<Raw>,
    /// The variable each item is (`loop_control.loop_var`; `item` by default).
    pub loop_var: String,
    /// How an item is shown (`loop_control.label`, a template).
    pub loop_label: Option<String>,
    /// `become` on the task (or the blocks around it): `Some(false)` turns off the
    /// play's.
    pub become_root: Option<bool>,
    /// The task's own `vars` and its blocks' (the innermost winning), rendered for each
    /// host over the play's variables.
    pub vars: Vars,
    /// Run on the first host of the play's batch only.
    pub run_once: bool,
    /// The role instance the task (or handler) comes from.
    pub role: Option<Arc<RoleRef>>,
    /// The loop variable of the `include_tasks` around it that loops over a template:
    /// the task is rendered for each item on the host, not checked before the run.
    pub include_loop: Option<String>,
}

/// Ansible's retry loop: the task runs again, `delay` seconds apart, until all of
/// `conditions` hold (with its registered result, and `attempts`, in scope), at most
/// `retries` more times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Until {
    pub conditions: Vec<String>,
    pub retries: u32,
    pub delay: u64,
}

impl Until {
    /// Ansible's defaults: three more runs, five seconds apart.
    pub const RETRIES: u32 = 3;
    pub const DELAY: u64 = 5;
}

/// One instance of a role in a play: its name (titles say `NAME : task`), which
/// instance it is (a handler is notified within its own instance first), where its
/// files are, and its `defaults` (below every other variable).
#[derive(Debug, Default)]
pub struct RoleRef {
    pub name: String,
    pub instance: usize,
    pub dir: PathBuf,
    pub defaults: Vars,
}

/// An entry of a play's `tasks`: a task, or a block of them.
#[derive(Debug)]
pub enum Entry {
    Task(Box<Task>),
    Block(Box<Block>),
    Import(Box<Import>),
}

/// `import_tasks`/`include_tasks` (a file of tasks) or `import_role`/`include_role`
/// (a role's tasks), with what its tasks inherit.
#[derive(Debug)]
pub struct Import {
    /// The key it was written with (`import_tasks`, `include_role`, ...).
    pub kind: &'static str,
    /// The file (for tasks) or the role's name.
    pub target: String,
    /// Its `name`, which `--list-tasks` shows for an include.
    pub name: Option<String>,
    /// `tasks_from` of a role: the tasks file instead of `main.yml`.
    pub tasks_from: Option<String>,
    pub when: Option<String>,
    pub tags: Vec<String>,
    pub vars: Vars,
    pub become_root: Option<bool>,
    pub become_user: Option<String>,
    pub no_log: Option<bool>,
    /// `include_tasks`' `loop`: the tasks once per item.
    pub loop_over: Option<Raw>,
    pub loop_var: String,
}

/// The keys that import tasks or roles, in place of a module.
pub const IMPORTS: &[&str] = &[
    "import_tasks",
    "include_tasks",
    "import_role",
    "include_role",
];

/// `block`, with its `rescue` and `always`, and what its tasks inherit.
#[derive(Debug, Default)]
pub struct Block {
    /// The tasks under `block:`.
    pub tasks: Vec<Entry>,
    pub rescue: Vec<Entry>,
    pub always: Vec<Entry>,
    pub when: Option<String>,
    pub tags: Vec<String>,
    pub become_root: Option<bool>,
    pub become_user: Option<String>,
    pub vars: Vars,
    pub no_log: Option<bool>,
}

impl Task {
    /// The name shown in output: the task's `name`, or the module and what it manages.
    pub fn title(&self) -> String {
        match &self.role {
            Some(role) => format!("{} : {}", role.name, self.own_title()),
            None => self.own_title(),
        }
    }

    /// What a handler is notified by: its title, and for a role's handler, which
    /// instance of the role it belongs to (two instances each restart their own).
    pub fn handler_id(&self) -> String {
        match &self.role {
            Some(role) => format!("{} (instance {})", self.title(), role.instance),
            None => self.title(),
        }
    }

    /// The title without the role's name.
    pub fn own_title(&self) -> String {
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

    /// Every template in the task: its parameters', its `template` file's, its `loop`'s
    /// and label's, and its `vars`'.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        let file = match &self.source {
            Some(ContentSource::Template { source, .. }) => Some(source.as_str()),
            _ => None,
        };
        let looped = self.loop_over.iter().flat_map(Raw::templates);
        let vars = self.vars.values().flat_map(json_strings);
        let defaults = self
            .role
            .iter()
            .flat_map(|role| role.defaults.values().flat_map(json_strings));
        self.params
            .templates()
            .chain(file)
            .chain(looped)
            .chain(self.loop_label.as_deref())
            .chain(vars)
            .chain(defaults)
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
const TASK_KEYS: &[&str] = &[
    "name",
    "notify",
    "when",
    "tags",
    "become_user",
    "no_log",
    "register",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "loop",
    "loop_control",
    "become",
    "vars",
    "block",
    "rescue",
    "always",
    "run_once",
    "tasks_from",
    "until",
    "retries",
    "delay",
];

enum TaskKey {
    Name,
    Notify,
    When,
    Tags,
    BecomeUser,
    NoLog,
    Register,
    ChangedWhen,
    FailedWhen,
    IgnoreErrors,
    Loop,
    LoopControl,
    Become,
    Vars,
    Block,
    Rescue,
    Always,
    RunOnce,
    TasksFrom,
    Until,
    Retries,
    Delay,
    Import(&'static str),
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
            "register" => TaskKey::Register,
            "changed_when" => TaskKey::ChangedWhen,
            "failed_when" => TaskKey::FailedWhen,
            "ignore_errors" => TaskKey::IgnoreErrors,
            "loop" => TaskKey::Loop,
            "loop_control" => TaskKey::LoopControl,
            "become" => TaskKey::Become,
            "vars" => TaskKey::Vars,
            "block" => TaskKey::Block,
            "rescue" => TaskKey::Rescue,
            "always" => TaskKey::Always,
            "run_once" => TaskKey::RunOnce,
            "tasks_from" => TaskKey::TasksFrom,
            "until" => TaskKey::Until,
            "retries" => TaskKey::Retries,
            "delay" => TaskKey::Delay,
            _ if IMPORTS.contains(&key) => {
                TaskKey::Import(IMPORTS.iter().find(|k| **k == key).expect("listed"))
            }
            _ => match MODULE_NAMES
                .iter()
                .chain(ACTIONS)
                .find(|module| **module == key)
            {
                Some(module) => TaskKey::Module(module),
                None => {
                    return Err(E::custom(format_args!(
                        "unknown field `{key}`, expected one of {}",
                        TASK_KEYS
                            .iter()
                            .chain(IMPORTS)
                            .chain(MODULE_NAMES)
                            .chain(ACTIONS)
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
pub(super) struct StringOrList(pub(super) Vec<String>);

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
        match deserializer.deserialize_map(TaskVisitor)? {
            Entry::Task(task) => Ok(*task),
            Entry::Block(_) | Entry::Import(_) => Err(de::Error::custom(
                "a block or import is not allowed here: handlers are single tasks",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TaskVisitor)
    }
}

struct TaskVisitor;

impl<'de> Visitor<'de> for TaskVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task (a mapping with one module key) or a block")
    }

    #[allow(clippy::too_many_lines)]
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
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
        let mut register: Option<String> = None;
        let mut changed_when: Option<Conditions> = None;
        let mut failed_when: Option<Conditions> = None;
        let mut ignore_errors: Option<bool> = None;
        let mut loop_over: Option<LoopValue> = None;
        let mut loop_control: Option<LoopControl> = None;
        let mut become_root: Option<bool> = None;
        let mut vars: Option<Vars> = None;
        let mut block: Option<Vec<Entry>> = None;
        let mut rescue: Option<Vec<Entry>> = None;
        let mut always: Option<Vec<Entry>> = None;
        let mut run_once: Option<bool> = None;
        let mut tasks_from: Option<String> = None;
        let mut until: Option<Conditions> = None;
        let mut retries: Option<u32> = None;
        let mut delay: Option<u64> = None;
        let mut import: Option<(&'static str, Raw)> = None;
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
                TaskKey::Register => {
                    once(register.as_ref(), "register")?;
                    register = Some(map.next_value::<VariableName>()?.0);
                }
                TaskKey::ChangedWhen => {
                    once(changed_when.as_ref(), "changed_when")?;
                    changed_when = Some(map.next_value()?);
                }
                TaskKey::FailedWhen => {
                    once(failed_when.as_ref(), "failed_when")?;
                    failed_when = Some(map.next_value()?);
                }
                TaskKey::IgnoreErrors => {
                    once(ignore_errors.as_ref(), "ignore_errors")?;
                    ignore_errors = Some(map.next_value()?);
                }
                TaskKey::Loop => {
                    once(loop_over.as_ref(), "loop")?;
                    loop_over = Some(map.next_value()?);
                }
                TaskKey::LoopControl => {
                    once(loop_control.as_ref(), "loop_control")?;
                    loop_control = Some(map.next_value()?);
                }
                TaskKey::Become => {
                    once(become_root.as_ref(), "become")?;
                    become_root = Some(map.next_value()?);
                }
                TaskKey::Vars => {
                    once(vars.as_ref(), "vars")?;
                    vars = Some(map.next_value()?);
                }
                TaskKey::Block => {
                    once(block.as_ref(), "block")?;
                    block = Some(map.next_value()?);
                }
                TaskKey::Rescue => {
                    once(rescue.as_ref(), "rescue")?;
                    rescue = Some(map.next_value()?);
                }
                TaskKey::RunOnce => {
                    once(run_once.as_ref(), "run_once")?;
                    run_once = Some(map.next_value()?);
                }
                TaskKey::TasksFrom => {
                    once(tasks_from.as_ref(), "tasks_from")?;
                    tasks_from = Some(map.next_value()?);
                }
                TaskKey::Until => {
                    once(until.as_ref(), "until")?;
                    until = Some(map.next_value()?);
                }
                TaskKey::Retries => {
                    once(retries.as_ref(), "retries")?;
                    retries = Some(map.next_value()?);
                }
                TaskKey::Delay => {
                    once(delay.as_ref(), "delay")?;
                    delay = Some(map.next_value()?);
                }
                TaskKey::Import(kind) => {
                    if let Some((first, _)) = &import {
                        return Err(de::Error::custom(format_args!(
                            "this task has `{first}` and `{kind}`; split it into two tasks"
                        )));
                    }
                    import = Some((kind, map.next_value()?));
                }
                TaskKey::Always => {
                    once(always.as_ref(), "always")?;
                    always = Some(map.next_value()?);
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
        if let Some((kind, value)) = import {
            return import_entry(
                kind,
                value,
                ImportKeys {
                    module: module.map(|(module, _)| module.kind()),
                    others: [
                        ("block", block.is_some()),
                        ("notify", notify.is_some()),
                        ("register", register.is_some()),
                        ("changed_when", changed_when.is_some()),
                        ("failed_when", failed_when.is_some()),
                        ("ignore_errors", ignore_errors.is_some()),
                        ("run_once", run_once.is_some()),
                        ("until", until.is_some()),
                        ("retries", retries.is_some()),
                        ("delay", delay.is_some()),
                    ],
                    name,
                    tasks_from,
                    when,
                    tags: tags.map(|t| t.0).unwrap_or_default(),
                    vars: vars.unwrap_or_default(),
                    become_root,
                    become_user,
                    no_log,
                    loop_over: loop_over.map(|l| l.0),
                    loop_var: loop_control
                        .as_ref()
                        .and_then(|c| c.loop_var.as_ref())
                        .map_or_else(|| "item".to_owned(), |v| v.0.clone()),
                },
            );
        }
        if tasks_from.is_some() {
            return Err(de::Error::custom(
                "`tasks_from` goes with `import_role` or `include_role`",
            ));
        }
        if let Some(block) = block {
            let task_only = [
                ("notify", notify.is_some()),
                ("register", register.is_some()),
                ("changed_when", changed_when.is_some()),
                ("failed_when", failed_when.is_some()),
                ("ignore_errors", ignore_errors.is_some()),
                ("loop", loop_over.is_some()),
                ("loop_control", loop_control.is_some()),
                ("run_once", run_once.is_some()),
                ("until", until.is_some()),
                ("retries", retries.is_some()),
                ("delay", delay.is_some()),
            ];
            if let Some((key, _)) = task_only.iter().find(|(_, given)| *given) {
                return Err(de::Error::custom(format_args!(
                    "`{key}` belongs on a task, not on a block: put it on the tasks inside the block"
                )));
            }
            if let Some((kind, _)) = module {
                return Err(de::Error::custom(format_args!(
                    "a block holds tasks, not a module: move `{}` into a task under `block`",
                    kind.kind()
                )));
            }
            // A block's name is for the reader: only tasks are reported.
            let _ = name;
            return Ok(Entry::Block(Box::new(Block {
                tasks: block,
                rescue: rescue.unwrap_or_default(),
                always: always.unwrap_or_default(),
                when,
                tags: tags.map(|t| t.0).unwrap_or_default(),
                become_root,
                become_user,
                vars: vars.unwrap_or_default(),
                no_log,
            })));
        }
        if rescue.is_some() || always.is_some() {
            return Err(de::Error::custom(
                "`rescue` and `always` go with `block`: put the tasks they guard under `block`",
            ));
        }
        let Some((module, params)) = module else {
            return Err(de::Error::custom(format_args!(
                "this task has no module; give it exactly one of: {}",
                MODULE_NAMES
                    .iter()
                    .chain(ACTIONS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let until = match until {
            Some(Conditions(conditions)) => Some(Until {
                conditions,
                retries: retries.unwrap_or(Until::RETRIES),
                delay: delay.unwrap_or(Until::DELAY),
            }),
            None if retries.is_some() || delay.is_some() => return Err(de::Error::custom(
                "`retries` and `delay` go with `until`: the condition the task is run again until",
            )),
            None => None,
        };
        // A secret parameter (a password hash) implies no_log: no `no_log: false` shows it.
        let secret = secret_params(module.kind())
            .iter()
            .any(|param| params.get(param).is_some());
        Ok(Entry::Task(Box::new(Task {
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
            register,
            changed_when: changed_when.map(|c| c.0).unwrap_or_default(),
            failed_when: failed_when.map(|c| c.0).unwrap_or_default(),
            ignore_errors: ignore_errors.unwrap_or(false),
            until,
            loop_over: loop_over.map(|l| l.0),
            loop_var: loop_control
                .as_ref()
                .and_then(|c| c.loop_var.as_ref())
                .map_or_else(|| "item".to_owned(), |v| v.0.clone()),
            loop_label: loop_control.and_then(|c| c.label),
            become_root,
            vars: vars.unwrap_or_default(),
            run_once: run_once.unwrap_or(false),
            role: None,
            include_loop: None,
        })))
    }
}

/// What an import task was written with besides its import key.
struct ImportKeys {
    module: Option<&'static str>,
    /// Task keys that make no sense on an import, and whether each was given.
    others: [(&'static str, bool); 10],
    name: Option<String>,
    tasks_from: Option<String>,
    when: Option<String>,
    tags: Vec<String>,
    vars: Vars,
    become_root: Option<bool>,
    become_user: Option<String>,
    no_log: Option<bool>,
    loop_over: Option<Raw>,
    loop_var: String,
}

/// An import task: `import_tasks: FILE`, or `import_role: {name: ROLE, tasks_from}`.
fn import_entry<E: de::Error>(
    kind: &'static str,
    value: Raw,
    keys: ImportKeys,
) -> Result<Entry, E> {
    if let Some(module) = keys.module {
        return Err(E::custom(format_args!(
            "this task has `{kind}` and `{module}`; split it into two tasks"
        )));
    }
    if let Some((key, _)) = keys.others.iter().find(|(_, given)| *given) {
        return Err(E::custom(format_args!(
            "`{key}` belongs on a task, not on `{kind}`: put it on the tasks it brings in"
        )));
    }
    if keys.loop_over.is_some() && kind != "include_tasks" {
        return Err(E::custom(format_args!(
            "`loop` is for `include_tasks`, which runs its tasks once per item; `{kind}` is not looped"
        )));
    }
    let role = kind.ends_with("_role");
    let mut tasks_from = keys.tasks_from;
    let target = match value {
        Raw::Str(target) if !role => target,
        Raw::Map(entries) if role => {
            let mut name = None;
            for (key, value) in entries {
                match (key.as_str(), value) {
                    ("name", Raw::Str(value)) => name = Some(value),
                    ("tasks_from", Raw::Str(value)) => tasks_from = Some(value),
                    (key, _) => {
                        return Err(E::custom(format_args!(
                            "`{kind}` takes `name` and `tasks_from` (strings); `{key}` is not one of them"
                        )))
                    }
                }
            }
            name.ok_or_else(|| E::custom(format_args!("`{kind}` needs `name`: the role")))?
        }
        _ if role => {
            return Err(E::custom(format_args!(
                "`{kind}` takes a mapping: {kind}: {{ name: ROLE }}"
            )))
        }
        _ => {
            return Err(E::custom(format_args!(
                "`{kind}` takes the file's path: {kind}: FILE.yml"
            )))
        }
    };
    Ok(Entry::Import(Box::new(Import {
        kind,
        target,
        name: keys.name,
        tasks_from,
        when: keys.when,
        tags: keys.tags,
        vars: keys.vars,
        become_root: keys.become_root,
        become_user: keys.become_user,
        no_log: keys.no_log,
        loop_over: keys.loop_over,
        loop_var: keys.loop_var,
    })))
}

/// `when:` takes an expression string or a plain boolean.
pub(super) struct WhenValue(pub(super) String);

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

/// Whether `name` can be a template variable: letters, digits and `_`, not starting
/// with a digit.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `loop:`: a list, or a template that renders to one.
struct LoopValue(Raw);

impl<'de> Deserialize<'de> for LoopValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LoopVisitor;
        impl<'de> Visitor<'de> for LoopVisitor {
            type Value = LoopValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list, or a template that renders to one (loop: \"{{ users }}\")")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<LoopValue, E> {
                if !crate::template::is_template(text) {
                    return Err(E::invalid_value(de::Unexpected::Str(text), &self));
                }
                Ok(LoopValue(Raw::Str(text.to_owned())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<LoopValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Raw>()? {
                    items.push(item);
                }
                Ok(LoopValue(Raw::Seq(items)))
            }
        }
        deserializer.deserialize_any(LoopVisitor)
    }
}

/// `loop_control:`: the item's variable and how it is shown.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoopControl {
    #[serde(default)]
    loop_var: Option<VariableName>,
    #[serde(default)]
    label: Option<String>,
}

/// `register:`'s and `loop_var:`'s value: a name templates can use.
struct VariableName(String);

impl<'de> Deserialize<'de> for VariableName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = VariableName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a variable name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<VariableName, E> {
                if !is_variable_name(name) {
                    return Err(E::custom(format_args!(
                        "`{name}` is not a variable name; use letters, digits and _, not starting with a digit"
                    )));
                }
                Ok(VariableName(name.to_owned()))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// `changed_when:` and `failed_when:` take a condition or a list of them (all must
/// hold), each an expression or a plain boolean.
struct Conditions(Vec<String>);

impl<'de> Deserialize<'de> for Conditions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionsVisitor;
        impl<'de> Visitor<'de> for ConditionsVisitor {
            type Value = Conditions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition (an expression or true/false) or a list of them")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Conditions, E> {
                Ok(Conditions(vec![value.to_owned()]))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Conditions, E> {
                Ok(Conditions(vec![value.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Conditions, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<WhenValue>()? {
                    items.push(item.0);
                }
                Ok(Conditions(items))
            }
        }
        deserializer.deserialize_any(ConditionsVisitor)
    }
}

/// Every string inside a JSON value.
fn json_strings(value: &serde_json::Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        serde_json::Value::String(text) => Box::new(std::iter::once(text.as_str())),
        serde_json::Value::Array(items) => Box::new(items.iter().flat_map(json_strings)),
        serde_json::Value::Object(map) => Box::new(map.values().flat_map(json_strings)),
        _ => Box::new(std::iter::empty()),
    }
}
