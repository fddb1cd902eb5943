//! Playbooks: a YAML list of plays, each with hosts, variables, tasks and handlers.
//!
//! Parsing is strict and positional: an unknown key anywhere is an error naming the key,
//! the file, the line and column, and the keys allowed there. A task has exactly one
//! module key; its parameters are kept as written ([`Raw`], templates anywhere) and
//! checked at load against that module's typed parameters as far as they can be without
//! variables (see `params`). Files named by `src` and `template` are read at load time,
//! so a missing one is reported before any host is contacted.

pub mod actions;
mod blocks;
pub mod params;
mod roles;
mod selection;
mod task;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use converge_modules::ParamError;
use serde::Deserialize;

use crate::inventory::Vars;
use crate::yaml::{self, YamlError};
pub use blocks::{Each, IncludeMark, Node};
pub use params::{ParamsError, Raw, Stage, Step};
pub use roles::RoleCall;
pub use selection::{NoSuchTask, TagFilter};
pub use task::{Entry, Location, Origin, Task, Until};

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
    #[error("{playbook}: task `{task}`: cannot read {param} file {file}: {source}")]
    Source {
        playbook: PathBuf,
        task: String,
        param: &'static str,
        file: String,
        source: SourceError,
    },
    #[error("{playbook}: task `{task}` notifies `{handler}`, but play `{play}` has no handler of that name{known}")]
    UnknownHandler {
        playbook: PathBuf,
        task: String,
        handler: String,
        play: String,
        known: String,
    },
    #[error("{playbook}: task `{task}`: {problem}")]
    CopySource {
        playbook: PathBuf,
        task: String,
        problem: &'static str,
    },
    #[error("{playbook}: task `{task}`: give only one of content, src and template (this task has {given})")]
    ContentSources {
        playbook: PathBuf,
        task: String,
        /// The ones the task has, joined with "and".
        given: String,
    },
    #[error("{playbook}: play `{play}`: become_user: {source}")]
    BecomeUser {
        playbook: PathBuf,
        play: String,
        source: converge_modules::names::InvalidName,
    },
    #[error("{playbook}: import_playbook: {problem}")]
    Import { playbook: PathBuf, problem: String },
    #[error("{playbook}: import_playbook: playbooks import each other: {chain}")]
    ImportCycle { playbook: PathBuf, chain: String },
    #[error("{playbook}: play `{play}`: vars_files: {source}")]
    VarsFile {
        playbook: PathBuf,
        play: String,
        source: Box<VarsFileError>,
    },
    #[error("{playbook}: play `{play}`: {problem}")]
    Rollout {
        playbook: PathBuf,
        play: String,
        problem: &'static str,
    },
}

/// Why a `src` or `template` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("not found (looked for {})", .candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(" and "))]
    NotFound { candidates: Vec<PathBuf> },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is not UTF-8 text (only file and copy take any bytes)")]
    NotText,
    #[error("{} is a symbolic link or special file; copy ships directories and regular files only", .0.display())]
    NotRegular(Box<PathBuf>),
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
    /// Read the host's hardware and network facts (`converge_architecture`, ...) in
    /// the batched read; `false` leaves them undefined.
    #[serde(default = "gather_facts_default")]
    pub gather_facts: bool,
    #[serde(default)]
    pub vars: Vars,
    /// YAML files of variables, relative to the playbook; later files win, and all win
    /// over `vars`. A path may be a template, read for each host.
    #[serde(default)]
    pub vars_files: Vec<String>,
    /// `vars_files`, read at load when the path is not a template.
    #[serde(skip)]
    pub vars_from_files: Vec<VarsFile>,
    /// The playbook file this play is written in (an imported one for the plays of
    /// `import_playbook`), named in errors.
    #[serde(skip)]
    pub file: PathBuf,
    /// The directory of that file: `vars_files`, `src` and `template` are found from
    /// here.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Roles, whose tasks run before the play's own (see `roles`).
    #[serde(default)]
    pub roles: Vec<RoleCall>,
    /// The tasks as written: tasks and blocks (see `body` and `tasks`).
    #[serde(default, rename = "tasks")]
    entries: Vec<Entry>,
    /// Every task, blocks' included, in the order written: what reads, renderings and
    /// reports address by index.
    #[serde(skip)]
    pub tasks: Vec<Task>,
    /// The tasks' tree (blocks with their rescue and always), over `tasks`.
    #[serde(skip)]
    pub body: Vec<Node>,
    /// The `include_tasks` and `include_role` among `tasks`, for `--list-tasks`.
    #[serde(skip)]
    pub includes: Vec<IncludeMark>,
    #[serde(default)]
    pub handlers: Vec<Task>,
}

fn gather_facts_default() -> bool {
    true
}

/// One `vars_files` entry.
#[derive(Debug, Clone)]
pub enum VarsFile {
    /// Read when the playbook was loaded.
    Read(Vars),
    /// A templated path, rendered and read for each host.
    Templated(String),
}

/// A file of variables (`vars_files`, `-e @FILE`) that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VarsFileError {
    #[error("cannot read variables file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Yaml(#[from] YamlError),
}

/// Reads a YAML mapping of variables; an empty file has none. A bad one is an error
/// at its line and column.
pub fn read_vars_file(path: &Path) -> Result<Vars, VarsFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| VarsFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_vars(&text, path).map_err(VarsFileError::Yaml)
}

/// Parses YAML (or JSON) text read from `origin` as a mapping of variables.
pub fn parse_vars(text: &str, origin: &Path) -> Result<Vars, YamlError> {
    if text.trim().is_empty() {
        return Ok(Vars::new());
    }
    yaml::from_str(text, origin)
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
    /// `src`: used as it is (any bytes for `file`, UTF-8 text for the others).
    File { content: Vec<u8> },
    /// `copy`'s `src`: a directory tree.
    Tree(SourceTree),
    /// `template`: rendered per host.
    Template { path: PathBuf, source: String },
}

/// A directory tree read from beside the playbook for `copy`.
#[derive(Debug, Clone, Default)]
pub struct SourceTree {
    /// Relative names, each after its parent.
    pub directories: Vec<String>,
    pub files: Vec<SourceFile>,
}

/// One regular file of a [`SourceTree`].
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Relative to the tree's root, `/`-separated.
    pub path: String,
    pub content: Vec<u8>,
    pub executable: bool,
}

impl SourceTree {
    /// Reads the tree at `root`, in name order, refusing links and special files (a
    /// link would ship what it points to, which the playbook's author may not mean).
    fn read(root: &Path) -> Result<SourceTree, SourceError> {
        let mut tree = SourceTree::default();
        tree.read_below(root, "")?;
        Ok(tree)
    }

    fn read_below(&mut self, dir: &Path, prefix: &str) -> Result<(), SourceError> {
        use std::os::unix::fs::PermissionsExt as _;
        let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(SourceError::NotRegular(Box::new(path)));
            };
            let relative = format!("{prefix}{name}");
            let kind = entry.file_type()?;
            if kind.is_dir() {
                self.directories.push(relative.clone());
                self.read_below(&path, &format!("{relative}/"))?;
            } else if kind.is_file() {
                let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
                self.files.push(SourceFile {
                    path: relative,
                    content: std::fs::read(&path)?,
                    executable,
                });
            } else {
                return Err(SourceError::NotRegular(Box::new(path)));
            }
        }
        Ok(())
    }
}

/// The directory a playbook file's relative names are found from.
fn directory_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned()
}

/// How deep `import_playbook` may nest.
const MAX_IMPORT_DEPTH: usize = 32;

/// One entry of a playbook's list: a play, or `import_playbook: FILE`.
enum PlaybookEntry {
    Play(Box<Play>),
    Import(String),
}

impl<'de> Deserialize<'de> for PlaybookEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> serde::de::Visitor<'de> for EntryVisitor {
    type Value = PlaybookEntry;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a play (a mapping with `hosts`) or `import_playbook: FILE`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<PlaybookEntry, A::Error> {
        use serde::de::Error as _;
        let Some(first) = map.next_key::<String>()? else {
            return Err(A::Error::missing_field("hosts"));
        };
        if first == "import_playbook" {
            let name: String = map.next_value()?;
            if let Some(other) = map.next_key::<String>()? {
                return Err(A::Error::custom(format!(
                    "unknown key `{other}` beside import_playbook: an import has no other keys"
                )));
            }
            return Ok(PlaybookEntry::Import(name));
        }
        let rest = FirstKeyThen {
            first: Some(first),
            map,
        };
        Play::deserialize(serde::de::value::MapAccessDeserializer::new(rest))
            .map(|play| PlaybookEntry::Play(Box::new(play)))
    }
}

/// A map whose first key was already read: yields it again, then the rest.
struct FirstKeyThen<A> {
    first: Option<String>,
    map: A,
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::MapAccess<'de> for FirstKeyThen<A> {
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(first) => seed
                .deserialize(serde::de::IntoDeserializer::into_deserializer(first))
                .map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// The plays of playbook text read from `path`, with those of the playbooks it
/// imports in their place. `chain` holds the files being read, outermost first.
fn parse_plays(
    text: &str,
    path: &Path,
    chain: &mut Vec<PathBuf>,
) -> Result<Vec<Play>, PlaybookError> {
    let entries: Vec<PlaybookEntry> = if text.trim().is_empty() {
        Vec::new()
    } else {
        yaml::from_str(text, path)?
    };
    let dir = directory_of(path);
    let source = blocks::Source {
        file: path.to_owned(),
        text: Arc::from(text),
    };
    let mut plays = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let mut play = match entry {
            PlaybookEntry::Play(play) => *play,
            PlaybookEntry::Import(name) => {
                plays.extend(import(path, &dir, &name, chain)?);
                continue;
            }
        };
        path.clone_into(&mut play.file);
        play.dir.clone_from(&dir);
        // Roles are found from the play's own file, as its `src` and `template` files.
        let mut loader = blocks::Loader {
            playbook_dir: &dir,
            tasks: Vec::new(),
            handlers: Vec::new(),
            includes: Vec::new(),
            seen: Vec::new(),
            instances: 0,
        };
        let at = [Step::Index(index), Step::Key("roles".to_owned())];
        let mut body = loader.roles(&play.roles, &at, &source)?;
        let entries = std::mem::take(&mut play.entries);
        let at = [Step::Index(index), Step::Key("tasks".to_owned())];
        body.extend(loader.entries(entries, &at, &source, &blocks::Inherited::default())?);
        play.body = body;
        play.tasks = loader.tasks;
        play.includes = loader.includes;
        for (position, handler) in play.handlers.iter_mut().enumerate() {
            handler.origin = Origin {
                file: path.to_owned(),
                text: Arc::clone(&source.text),
                task: vec![
                    Step::Index(index),
                    Step::Key("handlers".to_owned()),
                    Step::Index(position),
                ],
            };
        }
        // A role's handlers come first, as Ansible lists them.
        let own = std::mem::take(&mut play.handlers);
        play.handlers = loader.handlers;
        play.handlers.extend(own);
        for task in play.tasks.iter_mut().chain(&mut play.handlers) {
            task.no_log |= play.no_log;
        }
        plays.push(play);
    }
    Ok(plays)
}

/// The plays of the playbook `name`, imported by `path` (whose directory is `dir`).
fn import(
    path: &Path,
    dir: &Path,
    name: &str,
    chain: &mut Vec<PathBuf>,
) -> Result<Vec<Play>, PlaybookError> {
    let problem = |problem: String| PlaybookError::Import {
        playbook: path.to_owned(),
        problem,
    };
    if crate::template::is_template(name) {
        return Err(problem(format!(
            "`{name}`: the name of an imported playbook cannot be a template"
        )));
    }
    let target = dir.join(name);
    let text = std::fs::read_to_string(&target)
        .map_err(|error| problem(format!("cannot read {}: {error}", target.display())))?;
    let canonical = target.canonicalize().unwrap_or_else(|_| target.clone());
    if let Some(start) = chain.iter().position(|seen| *seen == canonical) {
        let names: Vec<String> = chain[start..]
            .iter()
            .chain([&canonical])
            .map(|file| file.display().to_string())
            .collect();
        return Err(PlaybookError::ImportCycle {
            playbook: path.to_owned(),
            chain: names.join(" -> "),
        });
    }
    if chain.len() >= MAX_IMPORT_DEPTH {
        return Err(problem(format!(
            "playbooks import each other more than {MAX_IMPORT_DEPTH} deep"
        )));
    }
    chain.push(canonical);
    let plays = parse_plays(&text, &target, chain)?;
    chain.pop();
    Ok(plays)
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
        let mut chain = vec![path.canonicalize().unwrap_or_else(|_| path.to_owned())];
        let plays = parse_plays(text, path, &mut chain)?;
        let mut playbook = Playbook {
            path: path.to_owned(),
            dir: directory_of(path),
            plays,
        };
        playbook.read_vars_files()?;
        playbook.check_params()?;
        playbook.resolve_sources()?;
        playbook.resolve_handlers()?;
        playbook.check_handlers()?;
        Ok(playbook)
    }

    /// Reads every play's `vars_files` whose path is not a template.
    fn read_vars_files(&mut self) -> Result<(), PlaybookError> {
        for play in &mut self.plays {
            let mut read = Vec::with_capacity(play.vars_files.len());
            for name in &play.vars_files {
                if crate::template::is_template(name) {
                    read.push(VarsFile::Templated(name.clone()));
                    continue;
                }
                let vars = read_vars_file(&play.dir.join(name)).map_err(|source| {
                    PlaybookError::VarsFile {
                        playbook: play.file.clone(),
                        play: play.title(),
                        source: Box::new(source),
                    }
                })?;
                read.push(VarsFile::Read(vars));
            }
            play.vars_from_files = read;
        }
        Ok(())
    }

    /// Checks every task's parameters as far as they can be without variables: keys and
    /// types, then (when nothing is templated) names, paths and values. Values are
    /// named in errors unless a play has `no_log` (any play: the check once ran before
    /// the plays' flags were known, and what it hides stays hidden).
    fn check_params(&self) -> Result<(), PlaybookError> {
        let hide_values = self.plays.iter().any(|play| play.no_log);
        for task in self
            .plays
            .iter()
            .flat_map(|play| play.tasks.iter().chain(&play.handlers))
        {
            let kind = task.module.kind();
            if task.module.is_action() {
                if let Err(message) = actions::check(task) {
                    let at = task.origin.locate(kind, Some(&[]));
                    return Err(PlaybookError::Yaml(YamlError {
                        file: at.file,
                        line: at.line,
                        column: at.column,
                        message,
                        help: None,
                    }));
                }
                continue;
            }
            let checked =
                params::check_at_load(&task.params, |params| task.typed(params, Stage::Load));
            let module = match checked {
                Ok(Some(module)) => module,
                // The rest is checked once the templates are rendered.
                Ok(None) => continue,
                Err(error) => {
                    let at = task
                        .origin
                        .locate(kind, Some(error.at.as_deref().unwrap_or(&[])));
                    let (message, help) = yaml::rephrase(&error.to_string());
                    return Err(PlaybookError::Yaml(YamlError {
                        file: at.file,
                        line: at.line,
                        column: at.column,
                        message,
                        help,
                    }));
                }
            };
            // A value written out in full is checked here, where the error can point
            // at the task; templated ones are checked once rendered for each host, and
            // how parameters combine once the task's files are read.
            if task.params.has_template() {
                continue;
            }
            if let Err(error @ (ParamError::Invalid { .. } | ParamError::Name(_))) =
                module.validate()
            {
                let hide = task.no_log || hide_values;
                let title = match (&task.name, hide) {
                    (Some(name), _) => name.clone(),
                    (None, true) => kind.to_owned(),
                    (None, false) => task.title(),
                };
                let at = task.origin.locate(kind, None);
                return Err(PlaybookError::Yaml(YamlError {
                    file: at.file,
                    line: at.line,
                    column: at.column,
                    message: format!(
                        "task `{title}`: {}",
                        param_error_message(&error, &task.params.to_json(), hide)
                    ),
                    help: None,
                }));
            }
        }
        Ok(())
    }

    fn resolve_sources(&mut self) -> Result<(), PlaybookError> {
        for play in &mut self.plays {
            let (playbook, dir) = (play.file.clone(), play.dir.clone());
            for task in play.tasks.iter_mut().chain(play.handlers.iter_mut()) {
                if task.module.is_action() {
                    continue;
                }
                let title = task.title();
                let params = &mut task.params;
                let sources: Vec<&str> = ["content", "src", "template"]
                    .into_iter()
                    .filter(|key| params.get(key).is_some_and(|v| *v != Raw::Null))
                    .collect();
                if sources.len() > 1 {
                    return Err(PlaybookError::ContentSources {
                        playbook: playbook.clone(),
                        task: title,
                        given: sources.join(" and "),
                    });
                }
                if task.module.kind() == "copy" {
                    // `tree` is what the engine reads from `src`, never written by hand.
                    let problem = if params.get("tree").is_some() {
                        Some("`tree` is not a parameter: name the directory to copy in `src`")
                    } else if params.get("src").is_none_or(|src| *src == Raw::Null) {
                        Some("`src` is required: the directory beside the playbook to copy")
                    } else {
                        None
                    };
                    if let Some(problem) = problem {
                        return Err(PlaybookError::CopySource {
                            playbook: playbook.clone(),
                            task: title,
                            problem,
                        });
                    }
                }
                for (param, subdir) in [("src", "files"), ("template", "templates")] {
                    let Some(value) = params.remove(param) else {
                        continue;
                    };
                    let name = match value {
                        Raw::Str(name) => name,
                        _ => String::new(),
                    };
                    let error = |source: SourceError| PlaybookError::Source {
                        playbook: playbook.clone(),
                        task: title.clone(),
                        param,
                        file: name.clone(),
                        source,
                    };
                    let kind = task.module.kind();
                    let tree = kind == "copy";
                    // A role's task finds its files in the role first.
                    let mut candidates = Vec::new();
                    if let Some(role) = &task.role {
                        candidates.push(role.dir.join(subdir).join(&name));
                        candidates.push(role.dir.join(&name));
                    }
                    candidates.extend([dir.join(subdir).join(&name), dir.join(&name)]);
                    let Some(found) = candidates
                        .iter()
                        .find(|candidate| {
                            if tree {
                                candidate.is_dir()
                            } else {
                                candidate.is_file()
                            }
                        })
                        .cloned()
                    else {
                        return Err(error(SourceError::NotFound { candidates }));
                    };
                    if tree {
                        task.source = Some(ContentSource::Tree(
                            SourceTree::read(&found).map_err(error)?,
                        ));
                        continue;
                    }
                    let bytes = std::fs::read(&found).map_err(|e| error(e.into()))?;
                    task.source = Some(if param == "src" && kind == "file" {
                        ContentSource::File { content: bytes }
                    } else {
                        let text =
                            String::from_utf8(bytes).map_err(|_| error(SourceError::NotText))?;
                        if param == "src" {
                            ContentSource::File {
                                content: text.into_bytes(),
                            }
                        } else {
                            ContentSource::Template {
                                path: found,
                                source: text,
                            }
                        }
                    });
                }
            }
        }
        Ok(())
    }

    /// Resolves each `notify` to the handlers it names (see [`notified`]), refusing a
    /// name no handler has.
    fn resolve_handlers(&mut self) -> Result<(), PlaybookError> {
        for play in &mut self.plays {
            let mut resolved = Vec::new();
            for task in play.tasks.iter().chain(play.handlers.iter()) {
                let mut ids = Vec::new();
                for name in &task.notify {
                    let found = notified(task, name, &play.handlers);
                    if found.is_empty() {
                        let handler_names: Vec<String> =
                            play.handlers.iter().map(Task::title).collect();
                        let known = if handler_names.is_empty() {
                            String::new()
                        } else {
                            format!(" (handlers: {})", handler_names.join(", "))
                        };
                        return Err(PlaybookError::UnknownHandler {
                            playbook: play.file.clone(),
                            task: task.title(),
                            handler: name.clone(),
                            play: play.title(),
                            known,
                        });
                    }
                    ids.extend(
                        found
                            .into_iter()
                            .filter(|id| !ids.contains(id))
                            .collect::<Vec<_>>(),
                    );
                }
                resolved.push(ids);
            }
            for (task, ids) in play
                .tasks
                .iter_mut()
                .chain(&mut play.handlers)
                .zip(resolved)
            {
                task.notify = ids;
            }
        }
        Ok(())
    }

    fn check_handlers(&self) -> Result<(), PlaybookError> {
        for play in &self.plays {
            let users = play.become_user.iter().chain(
                play.tasks
                    .iter()
                    .chain(&play.handlers)
                    .filter_map(|t| t.become_user.as_ref()),
            );
            for user in users {
                converge_modules::names::user(user).map_err(|source| {
                    PlaybookError::BecomeUser {
                        playbook: play.file.clone(),
                        play: play.title(),
                        source,
                    }
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
            if let Some(problem) = problem {
                return Err(PlaybookError::Rollout {
                    playbook: play.file.clone(),
                    play: play.title(),
                    problem,
                });
            }
        }
        Ok(())
    }
}

/// The handlers (by [`Task::handler_id`]) that `task` notifies with `name`: its own role
/// instance's handler of that name first (two instances of a role each restart their
/// own), else every handler titled so, with or without its role's name (`restart
/// sidekiq` or `sidekiq : restart sidekiq`).
fn notified(task: &Task, name: &str, handlers: &[Task]) -> Vec<String> {
    let instance = |t: &Task| t.role.as_ref().map(|role| role.instance);
    let named = |handler: &&Task| handler.own_title() == name || handler.title() == name;
    let own: Vec<String> = handlers
        .iter()
        .filter(|handler| instance(task).is_some() && instance(handler) == instance(task))
        .filter(named)
        .map(Task::handler_id)
        .collect();
    if !own.is_empty() {
        return own;
    }
    let exact: Vec<String> = handlers
        .iter()
        .filter(|handler| handler.title() == name)
        .map(Task::handler_id)
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    handlers
        .iter()
        .filter(named)
        .map(Task::handler_id)
        .collect()
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
    fn a_password_makes_its_task_no_log_whatever_the_task_says() {
        let playbook = parse(
            "- hosts: app\n  tasks:\n    - user: { name: deploy, password: \"$y$j9T$x$y\" }\n      no_log: false\n    - user: { name: deploy, shell: /bin/bash }\n",
        )
        .unwrap();
        let tasks = &playbook.plays[0].tasks;
        assert!(tasks[0].no_log);
        assert_eq!(tasks[0].title(), "user");
        assert!(!tasks[1].no_log);
    }

    #[test]
    fn an_imported_playbook_brings_its_plays_and_finds_files_from_its_own_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir_all(sub.join("templates")).unwrap();
        std::fs::create_dir_all(sub.join("vars")).unwrap();
        std::fs::write(sub.join("templates/app.conf.j2"), "port={{ port }}\n").unwrap();
        std::fs::write(sub.join("vars/app.yml"), "port: 80\n").unwrap();
        std::fs::write(
            sub.join("app.yml"),
            "- hosts: app\n  vars_files: [vars/app.yml]\n  tasks:\n    - file: { path: /etc/app.conf, template: app.conf.j2 }\n",
        )
        .unwrap();
        let site = dir.path().join("site.yml");
        let playbook = Playbook::parse(
            "- hosts: db\n  tasks: []\n- import_playbook: sub/app.yml\n- hosts: web\n  tasks: []\n",
            &site,
        )
        .unwrap();
        let hosts: Vec<&str> = playbook.plays.iter().map(|p| p.hosts.as_str()).collect();
        assert_eq!(hosts, ["db", "app", "web"]);
        let imported = &playbook.plays[1];
        assert_eq!(imported.file, sub.join("app.yml"));
        assert!(matches!(
            &imported.tasks[0].source,
            Some(ContentSource::Template { path, .. }) if *path == sub.join("templates/app.conf.j2")
        ));
        assert_eq!(imported.tasks[0].origin.file, sub.join("app.yml"));

        // A bad task in the imported file is located in that file.
        std::fs::write(
            sub.join("app.yml"),
            "- hosts: app\n  tasks:\n    - file: { path: /x, nope: 1 }\n",
        )
        .unwrap();
        let error = Playbook::parse("- import_playbook: sub/app.yml\n", &site)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!("{}:3:", sub.join("app.yml").display())),
            "{error}"
        );
    }

    #[test]
    fn playbooks_importing_each_other_are_an_error_naming_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yml"), dir.path().join("b.yml"));
        std::fs::write(&a, "- import_playbook: b.yml\n").unwrap();
        std::fs::write(&b, "- hosts: x\n  tasks: []\n- import_playbook: a.yml\n").unwrap();
        let error = Playbook::load(&a).unwrap_err().to_string();
        let (a, b) = (a.canonicalize().unwrap(), b.canonicalize().unwrap());
        assert_eq!(
            error,
            format!(
                "{}: import_playbook: playbooks import each other: {} -> {} -> {}",
                dir.path().join("b.yml").display(),
                a.display(),
                b.display(),
                a.display()
            )
        );
        std::fs::write(&b, "- import_playbook: missing.yml\n").unwrap();
        let error = Playbook::load(&dir.path().join("b.yml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("import_playbook: cannot read "), "{error}");
        let error = parse("- import_playbook: x.yml\n  hosts: app\n").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("site.yml:1:3: unknown key `hosts` beside import_playbook"),
            "{error}"
        );
    }

    #[test]
    fn unknown_play_key_is_located_with_allowed_keys() {
        let error = parse("- hosts: app\n  tasx: []\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml:2:3: unknown key `tasx`\n  help: allowed keys here: name, hosts, become, become_user, no_log, serial, max_fail_percentage, any_errors_fatal, gather_facts, vars, vars_files, roles, tasks, handlers"
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
                "site.yml:4:7: unknown key `notfy`\n  help: allowed keys here: name, notify, when, tags, become_user, no_log, register, changed_when, failed_when, ignore_errors, loop, loop_control, become, vars, block, rescue, always, run_once, tasks_from, until, retries, delay, import_tasks, include_tasks, import_role, include_role, {}, set_fact, debug, assert, fail, meta, flush_handlers",
                converge_modules::MODULE_NAMES.join(", ")
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
    fn a_register_name_that_is_no_variable_is_located_with_the_fix() {
        let error = parse(
            "- hosts: app\n  tasks:\n    - command: { cmd: date }\n      register: the-date\n",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "site.yml:4:17: `the-date` is not a variable name; use letters, digits and _, not starting with a digit"
        );
    }

    #[test]
    fn changed_when_and_failed_when_take_a_condition_or_a_list() {
        let playbook = parse(
            "- hosts: app\n  tasks:\n    - command: { cmd: date }\n      register: out\n      changed_when: false\n      failed_when: [out.rc != 0, \"'x' in out.stdout\"]\n      ignore_errors: true\n",
        )
        .unwrap();
        let task = &playbook.plays[0].tasks[0];
        assert_eq!(task.register.as_deref(), Some("out"));
        assert_eq!(task.changed_when, ["false"]);
        assert_eq!(task.failed_when, ["out.rc != 0", "'x' in out.stdout"]);
        assert!(task.ignore_errors);
        let error = parse(
            "- hosts: app\n  tasks:\n    - command: { cmd: date }\n      changed_when: { a: 1 }\n",
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with("site.yml:4:21: invalid type: map, expected a condition (an expression or true/false) or a list of them"),
            "{error}"
        );
    }

    #[test]
    fn a_loop_is_a_list_or_a_template_with_a_located_error_otherwise() {
        let playbook = parse(
            "- hosts: app\n  tasks:\n    - file: { path: \"/etc/{{ f }}\" }\n      loop: [a, b]\n      loop_control: { loop_var: f, label: \"{{ f }}\" }\n",
        )
        .unwrap();
        let task = &playbook.plays[0].tasks[0];
        assert_eq!(task.loop_var, "f");
        assert_eq!(task.loop_label.as_deref(), Some("{{ f }}"));
        assert!(task.loop_over.is_some());
        for (playbook, expected) in [
            (
                "- hosts: app\n  tasks:\n    - file: { path: /x }\n      loop: 5\n",
                "site.yml:4:13: invalid type: integer `5`, expected a list, or a template that renders to one (loop: \"{{ users }}\")",
            ),
            (
                "- hosts: app\n  tasks:\n    - file: { path: /x }\n      loop: [a]\n      loop_control: { loop_var: 2x }\n",
                "site.yml:5:33: `2x` is not a variable name; use letters, digits and _, not starting with a digit",
            ),
        ] {
            assert_eq!(parse(playbook).unwrap_err().to_string(), expected);
        }
        let error = parse(
            "- hosts: app\n  tasks:\n    - file: { path: /x }\n      loop: [a]\n      loop_control: { index_var: i }\n",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("site.yml:5:23: unknown key `index_var`"),
            "{error}"
        );
    }

    #[test]
    fn a_blocks_tasks_inherit_its_when_tags_become_and_vars() {
        let playbook = parse(
            "- hosts: app\n  tasks:\n    - block:\n        - file: { path: /a }\n          when: \"{{ b }}\"\n          vars: { x: task }\n        - block:\n            - file: { path: /b }\n          become: false\n          tags: [inner]\n      rescue:\n        - file: { path: /c }\n      always:\n        - file: { path: /d }\n          become_user: app\n      when: a\n      tags: outer\n      become: true\n      vars: { x: block, y: block }\n    - file: { path: /e }\n",
        )
        .unwrap();
        let play = &playbook.plays[0];
        let paths: Vec<String> = play.tasks.iter().map(Task::title).collect();
        assert_eq!(
            paths,
            ["file /a", "file /b", "file /c", "file /d", "file /e"]
        );
        let [first, inner, rescue, always, after] = &play.tasks[..] else {
            panic!("five tasks")
        };
        assert_eq!(first.when.as_deref(), Some("(a) and (b)"));
        assert_eq!(inner.when.as_deref(), Some("a"));
        assert_eq!(after.when, None);
        assert_eq!(first.tags, ["outer"]);
        assert_eq!(inner.tags, ["outer", "inner"]);
        assert_eq!(
            (first.become_root, inner.become_root),
            (Some(true), Some(false))
        );
        assert_eq!(always.become_user.as_deref(), Some("app"));
        assert_eq!(first.vars["x"], "task");
        assert_eq!(rescue.vars["x"], "block");
        assert!(after.vars.is_empty());
        assert!(
            matches!(&play.body[..], [Node::Block { block, rescue, always }, Node::Task(4)]
            if block.len() == 2 && rescue.len() == 1 && always.len() == 1)
        );
        // Errors point into the block.
        let error =
            parse("- hosts: app\n  tasks:\n    - block:\n        - file: { path: /a, mdoe: x }\n")
                .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("site.yml:4:29: unknown key `mdoe`"),
            "{error}"
        );
    }

    #[test]
    fn what_belongs_on_a_task_is_refused_on_a_block_with_the_fix() {
        for (playbook, expected) in [
            (
                "- hosts: app\n  tasks:\n    - block: []\n      register: r\n",
                "site.yml:3:7: `register` belongs on a task, not on a block: put it on the tasks inside the block",
            ),
            (
                "- hosts: app\n  tasks:\n    - block: []\n      file: { path: /x }\n",
                "site.yml:3:7: a block holds tasks, not a module: move `file` into a task under `block`",
            ),
            (
                "- hosts: app\n  tasks:\n    - file: { path: /x }\n      rescue: []\n",
                "site.yml:3:7: `rescue` and `always` go with `block`: put the tasks they guard under `block`",
            ),
        ] {
            assert_eq!(parse(playbook).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn actions_are_checked_at_load_with_the_fix() {
        for (task, expected) in [
            (
                "debug: { msg: a, var: b }",
                "site.yml:3:14: debug takes exactly one of `msg` and `var`",
            ),
            (
                "assert: { fail_msg: x }",
                "site.yml:3:15: assert needs `that`: a condition or a list of them",
            ),
            (
                "set_fact: { 2x: 1 }",
                "site.yml:3:17: set_fact: `2x` is not a variable name; use letters, digits and _, not starting with a digit",
            ),
            (
                "meta: refresh_inventory",
                "site.yml:3:13: meta: only `meta: flush_handlers` is supported",
            ),
            (
                "fail: { message: x }",
                "site.yml:3:13: unknown key `message` of fail; allowed: msg",
            ),
        ] {
            let error = parse(&format!("- hosts: app\n  tasks:\n    - {task}\n")).unwrap_err();
            assert_eq!(error.to_string(), expected, "{task}");
        }
        assert!(parse("- hosts: app\n  tasks:\n    - fail:\n    - flush_handlers: true\n").is_ok());
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
        assert_eq!(
            playbook.plays[0].tasks[0].params.get("mode"),
            Some(&Raw::Str("0640".into()))
        );
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
        assert!(task.selected(&TagFilter::default()));
        assert!(task.selected(&TagFilter::only(vec!["a".into()])));
        assert!(!task.selected(&TagFilter::only(vec!["b".into()])));
    }
}
