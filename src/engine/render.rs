//! Templates and parameters for one host: the variables a host sees, each task's
//! parameters rendered and made typed (with errors that point at the playbook and hide
//! `no_log` values), and the up-front check of every task for every host.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use converge_modules::{DynModule, MachineInfo, ParamError, Sudo, SystemInfo};

use super::{HostRun, Options, TaskError};
use crate::inventory::Vars;
use crate::playbook::{
    self, read_vars_file, ContentSource, Location, Play, Playbook, Raw, Stage, Step, Task, VarsFile,
};
use crate::template::{Renderer, TemplateError};

/// A play's tasks (then its handlers, by slot) rendered for one host, with the
/// variables they were rendered with.
#[derive(Debug, Default)]
pub(super) struct Rendered {
    pub(super) vars: Vars,
    pub(super) modules: Vec<Option<Result<Arc<dyn DynModule>, RenderError>>>,
}

/// Why a task's parameters could not be made for a host (kept, and cloned, with the
/// task's other renderings: see `PlayRun::rendered`).
#[derive(Debug, Clone, thiserror::Error)]
pub(super) enum RenderError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{0}")]
    Params(ParamFailure),
}

impl From<RenderError> for TaskError {
    fn from(error: RenderError) -> Self {
        match error {
            RenderError::Template(error) => TaskError::Template(error),
            RenderError::Params(failure) => TaskError::Params(failure),
        }
    }
}

/// Rendered parameters that do not fit the module, with where they are written (not
/// for a `no_log` task, whose message is only about the parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParamFailure {
    at: Option<Location>,
    message: String,
}

impl std::fmt::Display for ParamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(at) = &self.at {
            write!(f, "{at}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// An input problem found before any host is contacted.
#[derive(Debug, thiserror::Error)]
#[error("play `{play}`, host {host}: {message}")]
pub struct InputError {
    pub play: String,
    pub host: String,
    pub message: String,
}

/// Variables for templates on one host: inventory vars, then play vars, then `-e`
/// vars, plus facts (`converge_*`, `inventory_hostname`).
pub(super) fn host_vars(
    host: &HostRun,
    play: &Play,
    options: &Options,
    renderer: &Renderer,
) -> Result<Vars, TemplateError> {
    let mut vars = host.vars.clone();
    let mut facts = Vars::new();
    facts.insert("inventory_hostname".to_owned(), host.name.clone().into());
    let system = host
        .facts
        .system()
        .ok()
        .cloned()
        .unwrap_or_else(|| SystemInfo {
            hostname: host.name.clone(),
            os: "unknown".to_owned(),
            ..SystemInfo::default()
        });
    let sudo = system.sudo.unwrap_or_else(|| Sudo {
        path: String::new(),
        flavour: "none".to_owned(),
        version: String::new(),
    });
    for (name, value) in [
        ("converge_hostname", system.hostname),
        ("converge_os", system.os),
        ("converge_os_version", system.os_version),
        ("converge_sudo_flavour", sudo.flavour),
        ("converge_sudo_version", sudo.version),
    ] {
        facts.insert(name.to_owned(), value.into());
    }
    facts.insert(
        "converge_systemd_version".to_owned(),
        system
            .systemd_version
            .map_or(serde_json::Value::Null, Into::into),
    );
    if play.gather_facts {
        insert_machine_facts(&mut facts, host);
    }
    // Inventory values tagged `!template` (their files' authors asked for it), play
    // vars and vars_files (written by the playbook's author) are templates, rendered
    // once every source is in, so one can use any other, whatever order they are
    // written in. Other inventory values and `-e` values are data.
    let mut from_inventory: Vec<String> = host
        .templates
        .keys()
        .filter(|name| !facts.contains_key(*name) && !options.extra_vars.contains_key(*name))
        .cloned()
        .collect();
    let mut templated = from_inventory.clone();
    vars.extend(facts);
    // Play vars, then vars_files, then `-e`.
    let mut add = |vars: &mut Vars, from: &Vars| {
        for (key, value) in from {
            if options.extra_vars.contains_key(key) {
                continue;
            }
            vars.insert(key.clone(), value.clone());
            from_inventory.retain(|name| name != key);
            if !templated.contains(key) {
                templated.push(key.clone());
            }
        }
    };
    add(&mut vars, &play.vars);
    for file in &play.vars_from_files {
        if let VarsFile::Read(from) = file {
            add(&mut vars, from);
        }
    }
    vars.extend(
        options
            .extra_vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    // A templated path is rendered with everything above, then its file is read, and
    // its variables join the others before any is rendered.
    for file in &play.vars_from_files {
        let VarsFile::Templated(name) = file else {
            continue;
        };
        // Only what the path uses is rendered here: the other variables may need
        // the files' own.
        let mut needed = std::collections::BTreeSet::new();
        renderer.variables_used(&serde_json::Value::String(name.clone()), &mut needed);
        let needed: Vec<String> = needed.into_iter().collect();
        let mut known = vars.clone();
        let origin = |key: &str| variable_origin(key, host, &from_inventory);
        renderer.resolve_needed(&mut known, &templated, &needed, &origin)?;
        let from_origin = format!("vars_files entry `{name}`");
        let rendered = renderer.render(name, &known, &from_origin)?;
        let from =
            read_vars_file(&play.dir.join(&rendered)).map_err(|error| TemplateError::Invalid {
                origin: from_origin,
                message: error.to_string(),
            })?;
        for (key, value) in from {
            if !options.extra_vars.contains_key(&key) {
                vars.insert(key.clone(), value);
                from_inventory.retain(|name| *name != key);
                if !templated.contains(&key) {
                    templated.push(key);
                }
            }
        }
    }
    let origin = |key: &str| variable_origin(key, host, &from_inventory);
    renderer.resolve(&mut vars, &templated, &origin)?;
    // What the host's tasks registered wins over play vars, and `-e` over it.
    for (name, value) in &host.registered {
        if !options.extra_vars.contains_key(name) {
            vars.insert(name.clone(), value.clone());
        }
    }
    Ok(vars)
}

/// How errors name the variable `key`: an inventory one (in `from_inventory`) by its
/// file, any other as a play variable.
fn variable_origin(key: &str, host: &HostRun, from_inventory: &[String]) -> String {
    match host.templates.get(key) {
        Some(file) if from_inventory.iter().any(|name| name == key) => {
            format!("inventory variable `{key}` ({})", file.display())
        }
        _ => format!("play variable `{key}`"),
    }
}

/// The facts of `gather_facts`; before the host is read (when every task is rendered
/// up front), stand-ins: `unknown`, none and empty.
fn insert_machine_facts(vars: &mut Vars, host: &HostRun) {
    let machine = host
        .facts
        .machine()
        .ok()
        .cloned()
        .unwrap_or_else(|| MachineInfo {
            architecture: "unknown".to_owned(),
            os_family: "unknown".to_owned(),
            ..MachineInfo::default()
        });
    let optional = |value: Option<String>| value.map_or(serde_json::Value::Null, Into::into);
    for (name, value) in [
        ("converge_architecture", machine.architecture.into()),
        (
            "converge_cpu_count",
            machine
                .cpu_count
                .map_or(serde_json::Value::Null, Into::into),
        ),
        (
            "converge_memory_mb",
            machine
                .memory_mb
                .map_or(serde_json::Value::Null, Into::into),
        ),
        ("converge_kernel", machine.kernel.into()),
        ("converge_os_family", machine.os_family.into()),
        ("converge_os_codename", machine.os_codename.into()),
        (
            "converge_default_interface",
            optional(machine.default_interface),
        ),
        ("converge_default_ipv4", optional(machine.default_ipv4)),
    ] {
        vars.insert(name.to_owned(), value);
    }
}

/// `vars` with the task's own `vars` (and its blocks' and role's) rendered over them, in
/// order, and its role's `defaults` under everything; the names `keep` holds stay as
/// they are (`-e` values, and registered ones, win).
pub(super) fn scope_vars<'v>(
    renderer: &Renderer,
    task: &Task,
    vars: &'v Vars,
    keep: impl Fn(&str) -> bool,
) -> Result<Cow<'v, Vars>, TemplateError> {
    // Defaults no other variable sets: they may use the role's parameters, and the
    // parameters them, so they are rendered before (where they can be) and after.
    let defaults: Vec<_> = task
        .role
        .iter()
        .flat_map(|role| &role.defaults)
        .filter(|(key, _)| !vars.contains_key(*key) && !task.vars.contains_key(*key))
        .collect();
    if task.vars.is_empty() && defaults.is_empty() {
        return Ok(Cow::Borrowed(vars));
    }
    let mut scoped = vars.clone();
    for (key, value) in &defaults {
        let origin = format!("default `{key}` of task `{}`", task.title());
        if let Ok(rendered) = renderer.value_json(value, &scoped, &origin) {
            scoped.insert((*key).clone(), rendered);
        }
    }
    for (key, value) in &task.vars {
        if keep(key) {
            continue;
        }
        let origin = format!("variable `{key}` of task `{}`", task.title());
        let rendered = renderer.value_json(value, &scoped, &origin)?;
        scoped.insert(key.clone(), rendered);
    }
    for (key, value) in &defaults {
        let origin = format!("default `{key}` of task `{}`", task.title());
        let rendered = renderer.value_json(value, &scoped, &origin)?;
        scoped.insert((*key).clone(), rendered);
    }
    Ok(Cow::Owned(scoped))
}

/// Renders a task's parameters for one host and makes them the module's typed ones.
/// For a `no_log` task the error names the task and the parameter, never a value (see
/// [`hidden`]).
pub(super) fn render_task(
    renderer: &Renderer,
    task: &Task,
    vars: &Vars,
) -> Result<Box<dyn DynModule>, RenderError> {
    let mut culprit = Culprit::default();
    let result = build_task(renderer, task, vars, &mut culprit);
    match result {
        Err(error) if task.no_log => Err(hidden(error, &culprit)),
        other => other,
    }
}

/// Which parameter an error was about, and whether its message may hold a value.
#[derive(Default)]
pub(super) struct Culprit {
    param: Option<String>,
    /// The message names parameters only (`give exactly one of ...`).
    value_free: bool,
}

pub(super) fn build_task(
    renderer: &Renderer,
    task: &Task,
    vars: &Vars,
    culprit: &mut Culprit,
) -> Result<Box<dyn DynModule>, RenderError> {
    let origin = format!("task `{}`", task.title());
    let mut params = match &task.params {
        Raw::Map(entries) => {
            let mut rendered = Vec::with_capacity(entries.len() + 1);
            for (key, value) in entries {
                culprit.param = Some(key.clone());
                rendered.push((key.clone(), value.render(renderer, vars, &origin)?));
            }
            culprit.param = None;
            Raw::Map(rendered)
        }
        other => other.render(renderer, vars, &origin)?,
    };
    if let Some(source) = &task.source {
        match source {
            ContentSource::File { content } => {
                params.insert("content", Raw::content(content.clone()));
            }
            ContentSource::Template { path, source } => {
                culprit.param = Some("template".to_owned());
                let content =
                    renderer.render(source, vars, &format!("template {}", path.display()))?;
                culprit.param = None;
                params.insert("content", Raw::Str(content));
            }
            ContentSource::Tree(tree) => params.insert("tree", Raw::tree(tree)),
        }
    }
    let kind = task.module.kind();
    let module = task.typed(&params, Stage::Rendered).map_err(|error| {
        culprit.param = error.param().map(str::to_owned);
        RenderError::Params(ParamFailure {
            at: Some(
                task.origin
                    .locate(kind, Some(error.at.as_deref().unwrap_or(&[]))),
            ),
            message: error.to_string(),
        })
    })?;
    module.validate().map_err(|error| {
        let json = params.to_json();
        match &error {
            ParamError::Invalid { param, .. } => culprit.param = Some((*param).to_owned()),
            ParamError::Name(name) => {
                culprit.param = playbook::param_holding(&json, |value| value == name.value);
            }
            ParamError::Required { .. }
            | ParamError::OneOf { .. }
            | ParamError::AtMostOne { .. } => {
                culprit.value_free = true;
            }
        }
        // Point at the parameter, and say what it was rendered from.
        let rendered = culprit
            .param
            .as_deref()
            .and_then(|param| match params.get(param) {
                Some(Raw::Rendered { from, .. }) => Some((param, from)),
                _ => None,
            });
        let (at, message) = match rendered {
            Some((param, from)) => (
                task.origin
                    .locate(kind, Some(&[Step::Key(param.to_owned())])),
                format!("{error} (rendered from {from:?})"),
            ),
            None => (task.origin.locate(kind, None), error.to_string()),
        };
        RenderError::Params(ParamFailure {
            at: Some(at),
            message,
        })
    })?;
    Ok(module)
}

/// What may be said about a `no_log` task's input error: the parameter, not the value
/// (nor where it is). An undefined variable is named (a name is not a value), and
/// messages that name parameters only are kept.
pub(super) fn hidden(error: RenderError, culprit: &Culprit) -> RenderError {
    let param = culprit
        .param
        .as_ref()
        .map_or_else(|| "a parameter".to_owned(), |param| format!("`{param}`"));
    let message = match error {
        RenderError::Template(TemplateError::Undefined { .. } | TemplateError::Cycle { .. }) => {
            return error
        }
        RenderError::Params(failure) if culprit.value_free => failure.message,
        RenderError::Template(_) => {
            format!("{param} has a template error (details hidden: no_log)")
        }
        RenderError::Params(_) => format!("{param} is invalid (details hidden: no_log)"),
    };
    RenderError::Params(ParamFailure { at: None, message })
}

/// A template error of a `no_log` play's variables, without the details.
pub(super) fn hidden_vars_error(error: &TemplateError) -> String {
    match error {
        TemplateError::Undefined { .. } | TemplateError::Cycle { .. } => error.to_string(),
        TemplateError::Invalid { origin, .. } => {
            format!("template error in {origin} (details hidden: no_log)")
        }
    }
}

/// Renders and validates every task of every play for every host, without contacting
/// any: template and parameter errors are input errors (exit 3), found up front.
pub fn check_inputs(
    playbook: &Playbook,
    plays: &[(usize, Vec<usize>)],
    hosts: &[HostRun],
    options: &Options,
) -> Result<(), InputError> {
    let renderer = Renderer::new();
    let registered = registered_names(playbook);
    for (play_index, members) in plays {
        let play = &playbook.plays[*play_index];
        for &member in members {
            let host = &hosts[member];
            let input_error = |message: String| InputError {
                play: play.title(),
                host: host.name.clone(),
                message,
            };
            let vars = host_vars(host, play, options, &renderer).map_err(|error| {
                input_error(if play.no_log {
                    hidden_vars_error(&error)
                } else {
                    error.to_string()
                })
            })?;
            let mut modules = Vec::with_capacity(play.tasks.len() + play.handlers.len());
            for task in play.tasks.iter().chain(&play.handlers) {
                // What a task reads of a registered result is known once it runs.
                if task.module.is_action()
                    || task.include_loop.is_some()
                    || reads_registered(&renderer, task, &registered)
                {
                    modules.push(None);
                    continue;
                }
                let vars = scope_vars(&renderer, task, &vars, |name| {
                    options.extra_vars.contains_key(name)
                })
                .map_err(|error| input_error(error.to_string()))?;
                let check_when = |vars: &Vars| -> Result<(), InputError> {
                    let Some(when) = &task.when else {
                        return Ok(());
                    };
                    let origin = format!("the `when` of task `{}`", task.title());
                    renderer
                        .condition(when, vars, &origin)
                        .map(|_| ())
                        .map_err(|error| {
                            input_error(if task.no_log {
                                hidden_vars_error(&error)
                            } else {
                                error.to_string()
                            })
                        })
                };
                if task.loop_over.is_some() {
                    // The play run renders each item; here each is only checked.
                    let items = super::loops::render_items(&renderer, task, &vars)
                        .map_err(|error| input_error(render_error_message(task, error)))?;
                    for item in items {
                        item.module
                            .map_err(|error| input_error(render_error_message(task, error)))?;
                        check_when(&super::loops::item_vars(task, &vars, &item.value))?;
                    }
                    modules.push(None);
                    continue;
                }
                let module = render_task(&renderer, task, &vars)
                    .map_err(|error| input_error(render_error_message(task, error)))?;
                modules.push(Some(Ok(Arc::from(module))));
                check_when(&vars)?;
            }
            host.keep_checked(play, Rendered { vars, modules });
        }
    }
    Ok(())
}

/// What the input check says of a task that cannot be rendered for a host.
fn render_error_message(task: &Task, error: RenderError) -> String {
    match error {
        RenderError::Params(ParamFailure { at, message }) => {
            let at = at.map(|at| format!("{at}: ")).unwrap_or_default();
            format!("{at}task `{}`: {message}", task.title())
        }
        RenderError::Template(error) => error.to_string(),
    }
}

/// Every name a task of the playbook registers its result as, or sets with
/// `set_fact`.
fn registered_names(playbook: &Playbook) -> BTreeSet<&str> {
    let mut names = BTreeSet::new();
    for task in playbook
        .plays
        .iter()
        .flat_map(|play| play.tasks.iter().chain(&play.handlers))
    {
        names.extend(task.register.as_deref());
        if let Ok(playbook::actions::Action::SetFact(facts)) = playbook::actions::action(task) {
            names.extend(facts.into_iter().map(|(name, _)| name));
        }
    }
    names
}

/// Whether a task's `when` or parameters read one of `names`.
fn reads_registered(renderer: &Renderer, task: &Task, names: &BTreeSet<&str>) -> bool {
    if names.is_empty() {
        return false;
    }
    let when = task.when.iter().map(|when| (when.as_str(), true));
    let templates = task.templates().map(|text| (text, false));
    when.chain(templates).any(|(text, expression)| {
        renderer
            .references(text, expression)
            .iter()
            .any(|reference| names.contains(reference.split('.').next().unwrap_or_default()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Connection, HostKeyChecking, Target};
    use serde_json::json;

    fn host(vars: Vars) -> HostRun {
        let target = Target {
            name: "app1".into(),
            address: "127.0.0.1".into(),
            port: 22,
            user: "root".into(),
            identity_file: None,
            connection: Connection::Ssh,
            host_key_checking: HostKeyChecking::Strict,
            ssh: crate::transport::SshOptions::default(),
        };
        HostRun::new("app1".into(), target, vars)
    }

    /// The first task of `tasks` rendered with `vars`, or its error as shown.
    fn rendered(tasks: &str, vars: &[(&str, serde_json::Value)]) -> Result<String, String> {
        let playbook = Playbook::parse(
            &format!("- hosts: app\n  tasks:\n{tasks}"),
            std::path::Path::new("site.yml"),
        )
        .map_err(|error| format!("load: {error}"))?;
        let vars: Vars = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        render_task(&Renderer::new(), &playbook.plays[0].tasks[0], &vars)
            .map(|module| format!("{module:?}"))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn templated_values_of_every_type_render_then_become_typed() {
        let module = rendered(
            "    - file: { path: /x, content: x, mode: \"{{ m }}\" }\n",
            &[("m", json!("0640"))],
        )
        .unwrap();
        assert!(module.contains("mode: Some(Mode(416))"), "{module}");
        let module = rendered(
            "    - systemd_unit: { name: a.service, content: x, enabled: \"{{ e }}\", settle: \"{{ s }}\" }\n",
            // `-e` gives strings; variables from YAML keep their type.
            &[("e", json!("false")), ("s", json!(5))],
        )
        .unwrap();
        assert!(
            module.contains("enabled: Some(false)") && module.contains("settle: Some(5)"),
            "{module}"
        );
        let module = rendered(
            "    - user: { name: \"{{ n }}\", groups: \"{{ g }}\" }\n",
            &[("n", json!(7)), ("g", json!(["adm", "wheel"]))],
        );
        assert!(module.is_err(), "a user name cannot start with a digit");
        let module = rendered(
            "    - user: { name: deploy, groups: [adm, \"{{ g }}\"] }\n",
            &[("g", json!("wheel"))],
        )
        .unwrap();
        assert!(
            module.contains(r#"groups: Some(["adm", "wheel"])"#),
            "{module}"
        );
    }

    #[test]
    fn a_rendered_value_that_does_not_fit_is_located_and_named() {
        assert_eq!(
            rendered(
                "    - file: { path: /x, content: x, mode: \"{{ m }}\" }\n",
                &[("m", json!("0999"))],
            )
            .unwrap_err(),
            "site.yml:3:43: invalid mode \"0999\": write 3 or 4 octal digits, e.g. \"0644\" (rendered from \"{{ m }}\")"
        );
        assert_eq!(
            rendered(
                "    - systemd_unit:\n        name: a.service\n        enabled: \"{{ e }}\"\n",
                &[("e", json!("maybe"))],
            )
            .unwrap_err(),
            "site.yml:5:18: invalid type: string \"maybe\", expected a boolean (rendered from \"{{ e }}\")"
        );
        assert_eq!(
            rendered(
                "    - user: { name: \"{{ n }}\" }\n",
                &[("n", json!("de.ploy"))],
            )
            .unwrap_err(),
            "site.yml:3:21: invalid user name \"de.ploy\": use a lowercase letter or _ first, then lowercase letters, digits, _ or -, at most 32 characters (rendered from \"{{ n }}\")"
        );
        // A `no_log` task's: the parameter only.
        assert_eq!(
            rendered(
                "    - file: { path: /x, content: x, mode: \"{{ m }}\" }\n      no_log: true\n",
                &[("m", json!("0999"))],
            )
            .unwrap_err(),
            "`mode` is invalid (details hidden: no_log)"
        );
    }

    #[test]
    fn what_needs_no_variable_is_checked_at_load() {
        assert_eq!(
            rendered(
                "    - file: { path: /x, mode: \"{{ m }}\", mdoe: \"0644\" }\n",
                &[],
            )
            .unwrap_err(),
            "load: site.yml:3:42: unknown key `mdoe`\n  help: allowed keys here: path, content, src, template, owner, group, mode, state"
        );
        assert_eq!(
            rendered(
                "    - systemd_unit: { name: \"{{ n }}\", enabled: 1 }\n",
                &[],
            )
            .unwrap_err(),
            "load: site.yml:3:49: invalid type: integer `1`, expected a boolean"
        );
        // A template whose type only its value decides is left out of the check, not
        // the keys after it.
        assert!(rendered(
            "    - directory: { path: /x, state: \"{{ s }}\", nope: 1 }\n",
            &[("s", json!("present"))]
        )
        .unwrap_err()
        .starts_with("load: site.yml:3:48: unknown key `nope`"));
        assert!(rendered(
            "    - directory: { path: /x, state: \"{{ s }}\" }\n",
            &[("s", json!("present"))]
        )
        .is_ok());
    }

    #[test]
    fn the_play_run_takes_over_what_the_input_check_rendered() {
        let playbook = Playbook::parse(
            "- hosts: app\n  tasks:\n    - file: { path: /a, content: \"{{ converge_os }}\" }\n    - file: { path: /b, content: \"{{ inventory_hostname }}\" }\n      tags: [b]\n    - file: { path: /c, content: x }\n",
            std::path::Path::new("site.yml"),
        )
        .unwrap();
        let mut hosts = vec![host(Vars::new())];
        let options = Options {
            tags: crate::playbook::TagFilter::only(vec!["always".into(), "b".into()]),
            ..Options::default()
        };
        check_inputs(&playbook, &[(0, vec![0])], &hosts, &options).unwrap();
        let play = &playbook.plays[0];
        let progress = crate::progress::Progress::default();
        let mut run = super::super::PlayRun::new(play, &mut hosts[0], &options, &progress);
        let checked = run.host.take_checked(play).unwrap();
        assert_eq!(checked.modules.len(), 3);
        run.rendered = checked.modules;
        // Once the host's facts are known, only the task that mentions one is forgotten.
        let mut now = checked.vars.clone();
        now.insert("converge_os".into(), json!("debian"));
        let forgotten: Vec<usize> = run
            .forget_changed(&checked.vars, &now)
            .into_iter()
            .map(|(slot, _)| slot)
            .collect();
        assert!(forgotten.is_empty(), "the first task is not selected");
        assert!(run.rendered[0].is_none());
        assert!(run.rendered[1].is_some() && run.rendered[2].is_some());
        assert!(run.host.take_checked(play).is_none(), "taken once");
    }

    #[test]
    fn play_variables_render_lazily_and_a_cycle_is_named() {
        let vars_of = |text: &str| {
            let playbook = Playbook::parse(text, std::path::Path::new("site.yml")).unwrap();
            host_vars(
                &host(Vars::new()),
                &playbook.plays[0],
                &Options::default(),
                &Renderer::new(),
            )
        };
        let vars = vars_of(
            "- hosts: app\n  vars:\n    url: \"http://{{ host }}:{{ port }}\"\n    host: \"{{ inventory_hostname }}\"\n    port: \"{{ base + 1 }}\"\n    base: 8000\n    all: \"{{ [host, port] }}\"\n  tasks: []\n",
        )
        .unwrap();
        assert_eq!(vars["url"], "http://app1:8001", "used before it is written");
        assert_eq!(vars["port"], 8001, "a whole expression keeps its type");
        assert_eq!(vars["all"], json!(["app1", 8001]));
        let error = vars_of(
            "- hosts: app\n  vars:\n    a: \"{{ b }}\"\n    b: \"x{{ c }}\"\n    c: \"{{ a | upper }}\"\n  tasks: []\n",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "play variable `a` is defined through itself: a -> b -> c -> a"
        );
        let error = vars_of("- hosts: app\n  vars:\n    path: \"{{ path }}/bin\"\n  tasks: []\n")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "play variable `path` is defined through itself: path -> path"
        );
    }

    #[test]
    fn vars_files_win_over_play_vars_and_may_be_chosen_per_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("vars")).unwrap();
        std::fs::write(
            dir.path().join("vars/common.yml"),
            "a: file\nb: \"{{ a }}-{{ c }}\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("vars/app1.yml"), "c: host\n").unwrap();
        let path = dir.path().join("site.yml");
        let playbook = Playbook::parse(
            "- hosts: app\n  vars:\n    a: play\n    c: play\n  vars_files:\n    - vars/common.yml\n    - \"vars/{{ inventory_hostname }}.yml\"\n  tasks: []\n",
            &path,
        )
        .unwrap();
        let vars = host_vars(
            &host(Vars::new()),
            &playbook.plays[0],
            &Options::default(),
            &Renderer::new(),
        )
        .unwrap();
        assert_eq!(vars["a"], "file");
        assert_eq!(vars["c"], "host");
        assert_eq!(vars["b"], "file-host", "rendered once every file is read");

        std::fs::write(dir.path().join("vars/common.yml"), "a: [1\n").unwrap();
        let error = Playbook::parse(
            "- hosts: app\n  vars_files: [vars/common.yml]\n  tasks: []\n",
            &path,
        )
        .unwrap_err()
        .to_string();
        let file = dir.path().join("vars/common.yml");
        assert!(
            error.starts_with(&format!(
                "{}: play `app`: vars_files: {}:2:1: ",
                path.display(),
                file.display()
            )),
            "{error}"
        );
    }

    #[test]
    fn the_input_check_renders_each_item_and_its_when_and_leaves_registered_values_out() {
        let check = |tasks: &str| {
            let playbook = Playbook::parse(
                &format!("- hosts: app\n  tasks:\n{tasks}"),
                std::path::Path::new("site.yml"),
            )
            .unwrap();
            check_inputs(
                &playbook,
                &[(0, vec![0])],
                &[host(Vars::new())],
                &Options::default(),
            )
            .map_err(|error| error.message)
        };
        assert_eq!(
            check("    - file: { path: \"/etc/{{ item }}\" }\n      loop: [a, b]\n      when: item == 'a' and flag\n"),
            Err("undefined variable `flag` in the `when` of task `file /etc/{{ item }}`".to_owned())
        );
        assert_eq!(
            check("    - file: { path: \"/etc/{{ item.name }}\" }\n      loop: [a]\n"),
            Err("template error in task `file /etc/{{ item.name }}`: undefined value".to_owned())
        );
        assert!(check("    - command: { cmd: date }\n      register: out\n    - file: { path: \"/etc/{{ out.stdout }}\" }\n      when: out.rc == 0\n").is_ok());
        assert!(
            check("    - set_fact: { name: x }\n    - file: { path: \"/etc/{{ name }}\" }\n")
                .is_ok()
        );
    }

    #[test]
    fn variable_precedence_is_inventory_then_play_then_extra_vars() {
        let playbook = Playbook::parse(
            "- hosts: app\n  vars:\n    a: play\n    b: play\n    c: \"{{ d | default('unset') }}-{{ b }}\"\n  tasks: []\n",
            std::path::Path::new("site.yml"),
        )
        .unwrap();
        let mut inventory_vars = Vars::new();
        inventory_vars.insert("a".into(), json!("inventory"));
        inventory_vars.insert("z".into(), json!("inventory"));
        let mut options = Options::default();
        options.extra_vars.insert("b".into(), json!("extra"));
        options.extra_vars.insert("d".into(), json!("extra"));
        let vars = host_vars(
            &host(inventory_vars),
            &playbook.plays[0],
            &options,
            &Renderer::new(),
        )
        .unwrap();
        assert_eq!(vars["a"], "play");
        assert_eq!(vars["b"], "extra");
        assert_eq!(
            vars["c"], "extra-extra",
            "play vars are rendered with -e values"
        );
        assert_eq!(vars["z"], "inventory");
        assert_eq!(vars["inventory_hostname"], "app1");
    }

    /// The variables of the play `play` on a host whose inventory variables are `vars`,
    /// `templates` of them tagged `!template` in `inv.yml`, with `-e` values `extra`.
    fn tagged_vars(
        play: &str,
        vars: serde_json::Value,
        templates: &[&str],
        extra: serde_json::Value,
    ) -> Result<Vars, TemplateError> {
        let playbook = Playbook::parse(play, std::path::Path::new("site.yml")).unwrap();
        let object = |value: serde_json::Value| -> Vars {
            value.as_object().unwrap().clone().into_iter().collect()
        };
        let templates = templates
            .iter()
            .map(|name| ((*name).to_owned(), std::path::PathBuf::from("inv.yml")))
            .collect();
        let options = Options {
            extra_vars: object(extra),
            ..Options::default()
        };
        host_vars(
            &host(object(vars)).with_templates(templates),
            &playbook.plays[0],
            &options,
            &Renderer::new(),
        )
    }

    #[test]
    fn tagged_inventory_variables_render_lazily_with_facts_and_others_stay_data() {
        let vars = tagged_vars(
            "- hosts: app\n  vars:\n    port: 8000\n  tasks: []\n",
            json!({
                "app_dir": "{{ base_dir }}/{{ inventory_hostname }}",
                "url": "http://{{ converge_hostname }}:{{ port }}",
                "base_dir": "/srv",
                "workers": "{{ converge_cpu_count | default(1) }}",
                "note": "{{ base_dir }}",
            }),
            &["app_dir", "url"],
            json!({}),
        )
        .unwrap();
        assert_eq!(vars["app_dir"], "/srv/app1", "built from data and a fact");
        assert_eq!(
            vars["url"], "http://app1:8000",
            "play variables are in scope"
        );
        assert_eq!(vars["note"], "{{ base_dir }}", "untagged: data");
        assert_eq!(vars["workers"], "{{ converge_cpu_count | default(1) }}");
    }

    #[test]
    fn a_play_variable_or_an_extra_var_over_a_tagged_one_decides_its_value() {
        let vars = tagged_vars(
            "- hosts: app\n  vars:\n    a: \"play {{ b }}\"\n  tasks: []\n",
            json!({"a": "{{ nope }}", "b": "{{ nope }}", "c": "{{ x }}", "x": "inventory"}),
            &["a", "b", "c"],
            json!({"b": "{{ extra }}"}),
        )
        .unwrap();
        assert_eq!(vars["a"], "play {{ extra }}", "-e values stay data");
        assert_eq!(vars["b"], "{{ extra }}");
        assert_eq!(vars["c"], "inventory");
    }

    #[test]
    fn a_tagged_variable_in_a_cycle_or_using_an_undefined_name_is_named_with_its_file() {
        let error = tagged_vars(
            "- hosts: app\n  tasks: []\n",
            json!({"a": "{{ b }}", "b": "{{ a }}/x"}),
            &["a", "b"],
            json!({}),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "inventory variable `a` (inv.yml) is defined through itself: a -> b -> a"
        );
        let error = tagged_vars(
            "- hosts: app\n  vars:\n    c: \"{{ a }}\"\n  tasks: []\n",
            json!({"a": "{{ base_dir }}/app"}),
            &["a"],
            json!({}),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "undefined variable `base_dir` in inventory variable `a` (inv.yml)"
        );
    }
}
