//! Blocks: `block` with `rescue` and `always`, flattened at load into the play's one
//! list of tasks (so that reads, renderings and reports keep addressing a task by its
//! index) plus the tree the engine walks for Ansible's flow.
//!
//! What a block gives its tasks is settled here: its `when` joins theirs (all must
//! hold, evaluated per task, as Ansible does), its `tags` add to theirs, its `become`,
//! `become_user` and `vars` are theirs unless a task (or an inner block) says
//! otherwise, and its `no_log` hides them. Imports (`import_tasks`, `include_tasks`,
//! `import_role`, `include_role`) are read here too and give their tasks the same.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;

use super::roles::RoleCall;
use super::task::{Block, Entry, Import, RoleRef};
use super::{Origin, PlaybookError, Raw, Step, Task};
use crate::inventory::Vars;
use crate::yaml::{self, YamlError};

/// A play's tasks as written: each a task (by index into the play's flat list) or a
/// block.
#[derive(Debug, Clone)]
pub enum Node {
    Task(usize),
    Block {
        block: Vec<Node>,
        rescue: Vec<Node>,
        always: Vec<Node>,
    },
    /// `include_tasks`/`include_role` with a `when`: decided once, before its tasks
    /// run, with the variables its first task sees (as Ansible decides an include).
    /// With `each`, an `include_tasks` looping over a template: its tasks once per
    /// item, the items rendered on the host when the include is reached.
    Include {
        when: Option<String>,
        each: Option<Each>,
        body: Vec<Node>,
    },
}

/// An `include_tasks` or `include_role`, as `--list-tasks` shows it: a line of its own
/// before the tasks it brings in, as Ansible lists an include.
#[derive(Debug, Clone, PartialEq)]
pub struct IncludeMark {
    /// The tasks it brings in, by index into the play's flat list.
    pub tasks: std::ops::Range<usize>,
    /// Its `name`, or `include_tasks: FILE` (`include_role: ROLE`), after `ROLE : ` when
    /// it is written in a role, as a task's title.
    pub title: String,
    pub kind: &'static str,
    /// Its own `when` (the blocks' around it are its tasks').
    pub when: Option<String>,
    /// Its `loop`, as written: a template, or the list as JSON.
    pub loop_over: Option<String>,
    /// Its tags and those it inherits.
    pub tags: Vec<String>,
}

/// The `loop` of an `include_tasks` that only the host can render.
#[derive(Debug, Clone)]
pub struct Each {
    pub over: Raw,
    pub var: String,
}

/// What the blocks, imports and roles around a task give it.
#[derive(Debug, Clone, Default)]
pub(super) struct Inherited {
    pub(super) when: Vec<String>,
    pub(super) tags: Vec<String>,
    pub(super) become_root: Option<bool>,
    pub(super) become_user: Option<String>,
    pub(super) vars: Vars,
    pub(super) no_log: bool,
    pub(super) role: Option<Arc<RoleRef>>,
    /// How many imports and role dependencies deep.
    pub(super) depth: usize,
    /// The loop variable of an `include_tasks` around, looping over a template.
    pub(super) include_loop: Option<String>,
}

/// How deep imports and role dependencies may nest (a file importing itself stops
/// here).
pub(super) const MAX_DEPTH: usize = 32;

/// A file being read: where it is and its text, to point errors into it.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) file: PathBuf,
    pub(super) text: Arc<str>,
}

impl Source {
    /// Reads `file`; `None` when it does not exist.
    pub(super) fn read(file: &Path) -> Result<Option<Source>, PlaybookError> {
        match std::fs::read_to_string(file) {
            Ok(text) => Ok(Some(Source {
                file: file.to_owned(),
                text: Arc::from(text),
            })),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PlaybookError::Read {
                path: file.to_owned(),
                source,
            }),
        }
    }

    /// The file's YAML document as a `T`; an empty file is `T`'s default.
    pub(super) fn parse<T: DeserializeOwned + Default>(&self) -> Result<T, PlaybookError> {
        if self.text.trim().is_empty() {
            return Ok(T::default());
        }
        Ok(yaml::from_str(&self.text, &self.file)?)
    }

    /// An error at `path` in this file, with the fix.
    pub(super) fn error(
        &self,
        path: &[Step],
        message: String,
        help: Option<String>,
    ) -> PlaybookError {
        let (line, column) = yaml::locate(&self.text, path).unwrap_or((0, 0));
        PlaybookError::Yaml(YamlError {
            file: self.file.clone(),
            line,
            column,
            message,
            help,
        })
    }
}

/// A play's tasks and handlers as they are loaded, its roles' and imports' included.
#[derive(Debug)]
pub(super) struct Loader<'l> {
    /// The playbook's directory: roles are looked up in `roles/` there.
    pub(super) playbook_dir: &'l Path,
    pub(super) tasks: Vec<Task>,
    pub(super) handlers: Vec<Task>,
    /// The dynamic includes among `tasks`, in the order written.
    pub(super) includes: Vec<IncludeMark>,
    /// The role instances loaded so far (a role with the same parameters runs once).
    pub(super) seen: Vec<String>,
    pub(super) instances: usize,
}

impl Loader<'_> {
    /// Flattens `entries` (written at `path` in `source`) into `self.tasks`; returns
    /// their tree.
    pub(super) fn entries(
        &mut self,
        entries: Vec<Entry>,
        path: &[Step],
        source: &Source,
        inherited: &Inherited,
    ) -> Result<Vec<Node>, PlaybookError> {
        let mut nodes = Vec::with_capacity(entries.len());
        for (position, entry) in entries.into_iter().enumerate() {
            let mut here = path.to_vec();
            here.push(Step::Index(position));
            match entry {
                Entry::Task(task) => {
                    let mut task = *task;
                    task.origin = Origin {
                        file: source.file.clone(),
                        text: Arc::clone(&source.text),
                        task: here,
                    };
                    inherit(&mut task, inherited);
                    nodes.push(Node::Task(self.tasks.len()));
                    self.tasks.push(task);
                }
                Entry::Block(block) => {
                    let Block {
                        tasks: block,
                        rescue,
                        always,
                        when,
                        tags,
                        become_root,
                        become_user,
                        vars,
                        no_log,
                    } = *block;
                    let inner =
                        inherited.within(when, tags, become_root, become_user, vars, no_log);
                    let mut part = |key: &str, entries: Vec<Entry>| {
                        let mut at = here.clone();
                        at.push(Step::Key(key.to_owned()));
                        self.entries(entries, &at, source, &inner)
                    };
                    let block = part("block", block)?;
                    let rescue = part("rescue", rescue)?;
                    let always = part("always", always)?;
                    nodes.push(Node::Block {
                        block,
                        rescue,
                        always,
                    });
                }
                Entry::Import(import) => {
                    nodes.extend(self.import(*import, &here, source, inherited)?);
                }
            }
        }
        Ok(nodes)
    }

    /// The tasks an `import_tasks`/`include_tasks` or `import_role`/`include_role`
    /// (written at `here` in `source`) brings in, each inheriting its keys; an include
    /// is also marked for `--list-tasks`.
    fn import(
        &mut self,
        import: Import,
        here: &[Step],
        source: &Source,
        inherited: &Inherited,
    ) -> Result<Vec<Node>, PlaybookError> {
        if !import.kind.starts_with("include_") {
            return self.import_tasks(import, here, source, inherited);
        }
        let start = self.tasks.len();
        let mark = self.includes.len();
        let what = if import.kind == "include_role" {
            match &import.tasks_from {
                Some(from) => format!("{} ({from})", import.target),
                None => import.target.clone(),
            }
        } else {
            import.target.clone()
        };
        let own = import
            .name
            .clone()
            .unwrap_or_else(|| format!("{}: {what}", import.kind));
        let mut tags = inherited.tags.clone();
        tags.extend(import.tags.iter().cloned());
        self.includes.push(IncludeMark {
            tasks: start..start,
            title: match &inherited.role {
                Some(role) => format!("{} : {own}", role.name),
                None => own,
            },
            kind: import.kind,
            when: import.when.clone(),
            loop_over: import.loop_over.as_ref().map(|over| match over.to_json() {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            }),
            tags,
        });
        let nodes = self.import_tasks(import, here, source, inherited)?;
        self.includes[mark].tasks.end = self.tasks.len();
        Ok(nodes)
    }

    fn import_tasks(
        &mut self,
        import: Import,
        here: &[Step],
        source: &Source,
        inherited: &Inherited,
    ) -> Result<Vec<Node>, PlaybookError> {
        let mut at_key = here.to_vec();
        at_key.push(Step::Key(import.kind.to_owned()));
        if inherited.depth >= MAX_DEPTH {
            return Err(source.error(
                &at_key,
                format!("imports nest more than {MAX_DEPTH} deep"),
                Some("a file imports itself, directly or through others".to_owned()),
            ));
        }
        // An import's `when` is each task's; an include's is decided once (see
        // `Node::Include`).
        let dynamic = import.kind.starts_with("include_");
        let (when, once) = if dynamic {
            (None, import.when)
        } else {
            (import.when, None)
        };
        let decided_once = |nodes: Vec<Node>| match &once {
            Some(when) if !nodes.is_empty() => vec![Node::Include {
                when: Some(when.clone()),
                each: None,
                body: nodes,
            }],
            _ => nodes,
        };
        let mut inner = inherited.within(
            when,
            import.tags,
            import.become_root,
            import.become_user,
            IndexMap::new(),
            import.no_log,
        );
        inner.depth += 1;
        if import.kind.ends_with("_role") {
            let call = RoleCall {
                name: import.target,
                vars: import.vars,
                ..RoleCall::default()
            };
            let nodes = self.role(
                &call,
                import.tasks_from.as_deref(),
                false,
                source,
                &at_key,
                &inner,
            )?;
            return Ok(decided_once(nodes));
        }
        inner.vars.extend(import.vars);
        let file = self.tasks_file(&import.target, source, inherited, &at_key)?;
        let items = match import.loop_over {
            None => vec![None],
            Some(Raw::Seq(items)) => items.iter().map(|item| Some(item.to_json())).collect(),
            Some(over) => {
                // Rendered on each host when the include is reached (see `Node::Include`).
                let mut scope = inner.clone();
                scope.include_loop = Some(import.loop_var.clone());
                let entries: Vec<Entry> = file.parse()?;
                let body = self.entries(entries, &[], &file, &scope)?;
                return Ok(vec![Node::Include {
                    when: once,
                    each: Some(Each {
                        over,
                        var: import.loop_var,
                    }),
                    body,
                }]);
            }
        };
        let mut nodes = Vec::new();
        for item in items {
            let mut scope = inner.clone();
            if let Some(item) = item {
                scope.vars.insert(import.loop_var.clone(), item);
            }
            let entries: Vec<Entry> = file.parse()?;
            nodes.extend(decided_once(self.entries(entries, &[], &file, &scope)?));
        }
        Ok(nodes)
    }

    /// The tasks file `name` names, imported at `at` in `source`: beside the importing
    /// file, then in its role's `tasks/`, then beside the playbook.
    fn tasks_file(
        &self,
        name: &str,
        source: &Source,
        inherited: &Inherited,
        at: &[Step],
    ) -> Result<Source, PlaybookError> {
        let mut candidates = Vec::new();
        if let Some(dir) = source.file.parent() {
            candidates.push(dir.join(name));
        }
        if let Some(role) = &inherited.role {
            candidates.push(role.dir.join("tasks").join(name));
        }
        candidates.push(self.playbook_dir.join(name));
        candidates.dedup();
        for candidate in candidates.iter().filter(|c| c.is_file()) {
            if let Some(file) = Source::read(candidate)? {
                return Ok(file);
            }
        }
        Err(source.error(
            at,
            format!("tasks file `{name}` not found"),
            Some(format!("looked for {}", joined(&candidates))),
        ))
    }
}

/// Paths, joined with "and" for a message.
pub(super) fn joined(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ")
}

impl Inherited {
    /// What the tasks inside a block, import or role with these keys inherit.
    pub(super) fn within(
        &self,
        when: Option<String>,
        tags: Vec<String>,
        become_root: Option<bool>,
        become_user: Option<String>,
        vars: Vars,
        no_log: Option<bool>,
    ) -> Inherited {
        let mut inner = self.clone();
        inner.when.extend(when);
        inner.tags.extend(tags);
        inner.become_root = become_root.or(inner.become_root);
        inner.become_user = become_user.or(inner.become_user);
        inner.vars.extend(vars);
        inner.no_log |= no_log.unwrap_or(false);
        inner
    }
}

/// Gives `task` what its blocks give it.
pub(super) fn inherit(task: &mut Task, inherited: &Inherited) {
    let conditions: Vec<&str> = inherited
        .when
        .iter()
        .chain(&task.when)
        .map(String::as_str)
        .collect();
    if conditions.len() > 1 {
        task.when = Some(
            conditions
                .iter()
                .map(|condition| format!("({})", bare(condition)))
                .collect::<Vec<_>>()
                .join(" and "),
        );
    } else if let [only] = conditions.as_slice() {
        task.when = Some((*only).to_owned());
    }
    let mut tags = inherited.tags.clone();
    tags.extend(std::mem::take(&mut task.tags));
    tags.dedup();
    task.tags = tags;
    task.become_root = task.become_root.or(inherited.become_root);
    if task.become_user.is_none() {
        task.become_user.clone_from(&inherited.become_user);
    }
    let mut vars = inherited.vars.clone();
    vars.extend(std::mem::take(&mut task.vars));
    task.vars = vars;
    task.no_log |= inherited.no_log;
    if task.role.is_none() {
        task.role.clone_from(&inherited.role);
    }
    if task.include_loop.is_none() {
        task.include_loop.clone_from(&inherited.include_loop);
    }
}

/// A condition without the `{{ }}` it may be written in.
fn bare(condition: &str) -> &str {
    let trimmed = condition.trim();
    trimmed
        .strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or(trimmed)
        .trim()
}
