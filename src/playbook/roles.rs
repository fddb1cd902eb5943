//! Roles: `roles:` in a play, `import_role`/`include_role`, and a role's
//! `meta/main.yml` dependencies, loaded from Ansible's layout (`roles/NAME/tasks`,
//! `handlers`, `defaults`, `vars`, `meta`, `templates`, `files`) beside the playbook.
//!
//! Each instance of a role is its own variable scope: its `vars/main.yml`, its `vars`
//! and its parameters are given to its own tasks and handlers only (over the play's
//! variables, as a block's are), and its `defaults/main.yml` lie under every other
//! variable (see `engine::render::scope_vars`). A role with the same parameters is
//! loaded once per play, as Ansible does; with other parameters it is another instance.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::blocks::{inherit, joined, Inherited, Loader, Source, MAX_DEPTH};
use super::task::{is_variable_name, RoleRef, StringOrList, WhenValue};
use super::{Entry, Node, PlaybookError, Step, Task};
use crate::inventory::Vars;

/// A role as a play (or a role's dependencies, or an import) names it.
#[derive(Debug, Clone, Default)]
pub struct RoleCall {
    pub name: String,
    /// Its `vars` and parameters (`- {role: sidekiq, queue: mailers}`), the
    /// parameters winning.
    pub vars: Vars,
    pub when: Option<String>,
    pub tags: Vec<String>,
    /// `become` and `become_user` for the role's tasks and handlers, as a block's.
    pub become_root: Option<bool>,
    pub become_user: Option<String>,
}

impl<'de> Deserialize<'de> for RoleCall {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RoleCallVisitor)
    }
}

struct RoleCallVisitor;

impl<'de> Visitor<'de> for RoleCallVisitor {
    type Value = RoleCall;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a role's name, or a mapping with `role` and its parameters")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<RoleCall, E> {
        Ok(RoleCall {
            name: name.to_owned(),
            ..RoleCall::default()
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RoleCall, A::Error> {
        let mut call = RoleCall::default();
        // As Ansible: `role` names the role; `name` does when `role` is absent, and is
        // only a label beside it, whichever comes first.
        let (mut role, mut name) = (None, None);
        let mut params = Vars::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "role" => role = Some(map.next_value::<String>()?),
                "name" => name = Some(map.next_value::<String>()?),
                "vars" => call.vars.extend(map.next_value::<Vars>()?),
                "when" => call.when = Some(map.next_value::<WhenValue>()?.0),
                "tags" => call.tags = map.next_value::<StringOrList>()?.0,
                "become" => call.become_root = Some(map.next_value()?),
                "become_user" => call.become_user = Some(map.next_value()?),
                _ if is_variable_name(&key) => {
                    let value = map.next_value()?;
                    params.insert(key, value);
                }
                _ => {
                    return Err(de::Error::custom(format_args!(
                        "`{key}` is not a role parameter: a parameter is a variable name (letters, digits and _, not starting with a digit)"
                    )))
                }
            }
        }
        call.name = role.or(name).ok_or_else(|| {
            de::Error::custom(
                "a role entry needs `role`: the role's name (roles/NAME beside the playbook)",
            )
        })?;
        call.vars.extend(params);
        Ok(call)
    }
}

/// `meta/main.yml`: what Ansible keeps there, of which converge reads `dependencies`.
#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    dependencies: Vec<RoleCall>,
}

impl Loader<'_> {
    /// Loads the play's `roles:` (written at `roles` in `source`): their tasks into
    /// `self.tasks` (returning their tree) and their handlers into `self.handlers`.
    pub(super) fn roles(
        &mut self,
        calls: &[RoleCall],
        roles: &[Step],
        source: &Source,
    ) -> Result<Vec<Node>, PlaybookError> {
        let mut nodes = Vec::new();
        for (position, call) in calls.iter().enumerate() {
            let mut at = roles.to_vec();
            at.push(Step::Index(position));
            nodes.extend(self.role(call, None, true, source, &at, &Inherited::default())?);
        }
        Ok(nodes)
    }

    /// Loads one instance of the role `call` names (written at `at` in `source`),
    /// after its dependencies, unless `once` (`roles:` and dependencies, not imports) and
    /// one with the same parameters was loaded already; `tasks_from` picks another tasks
    /// file than `main.yml`.
    pub(super) fn role(
        &mut self,
        call: &RoleCall,
        tasks_from: Option<&str>,
        once: bool,
        source: &Source,
        at: &[Step],
        inherited: &Inherited,
    ) -> Result<Vec<Node>, PlaybookError> {
        let dir = self.role_dir(&call.name, source, at)?;
        let key = format!(
            "{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}",
            dir.display(),
            serde_json::to_string(&call.vars).unwrap_or_default(),
            call.when,
            call.tags,
            tasks_from,
            inherited.when,
        );
        if once && self.seen.contains(&key) {
            return Ok(Vec::new());
        }
        self.seen.push(key);
        if inherited.depth >= MAX_DEPTH {
            return Err(source.error(
                at,
                format!("roles depend on each other more than {MAX_DEPTH} deep"),
                Some("a role depends on itself, directly or through others".to_owned()),
            ));
        }
        let mut outer = inherited.within(
            call.when.clone(),
            call.tags.clone(),
            call.become_root,
            call.become_user.clone(),
            Vars::new(),
            None,
        );
        outer.depth += 1;
        // Dependencies run first, with the dependent's conditions and tags.
        let mut nodes = Vec::new();
        if let Some(meta) = Source::read(&dir.join("meta/main.yml"))? {
            let Meta { dependencies } = meta.parse()?;
            for (position, dependency) in dependencies.iter().enumerate() {
                let at = [Step::Key("dependencies".to_owned()), Step::Index(position)];
                let mut scope = outer.clone();
                scope.role = None;
                scope.vars = Vars::new();
                nodes.extend(self.role(dependency, None, true, &meta, &at, &scope)?);
            }
        }
        let defaults = self.defaults(&dir, 0)?;
        let mut scope = outer;
        scope.vars = read_vars(&dir.join("vars/main.yml"))?;
        scope.vars.extend(inherited.vars.clone());
        scope.vars.extend(call.vars.clone());
        scope.role = Some(Arc::new(RoleRef {
            name: call.name.clone(),
            instance: self.instances,
            dir: dir.clone(),
            defaults,
        }));
        self.instances += 1;
        let main = tasks_from.map_or_else(|| "main.yml".to_owned(), with_yml);
        let tasks_file = dir.join("tasks").join(&main);
        match Source::read(&tasks_file)? {
            Some(file) => {
                let entries: Vec<Entry> = file.parse()?;
                nodes.extend(self.entries(entries, &[], &file, &scope)?);
            }
            None if tasks_from.is_some() => {
                return Err(source.error(
                    at,
                    format!("role `{}` has no tasks file `{main}`", call.name),
                    Some(format!("looked for {}", tasks_file.display())),
                ));
            }
            None => {}
        }
        if let Some(file) = Source::read(&dir.join("handlers/main.yml"))? {
            let handlers: Vec<Task> = file.parse()?;
            for (position, mut handler) in handlers.into_iter().enumerate() {
                handler.origin = super::Origin {
                    file: file.file.clone(),
                    text: Arc::clone(&file.text),
                    task: vec![Step::Index(position)],
                };
                inherit(&mut handler, &scope);
                self.handlers.push(handler);
            }
        }
        Ok(nodes)
    }

    /// The role's `defaults/main.yml` over those of its dependencies (as Ansible
    /// shows a dependency's defaults to the role that needs it).
    fn defaults(&self, dir: &Path, depth: usize) -> Result<Vars, PlaybookError> {
        let mut defaults = Vars::new();
        if let Some(meta) = Source::read(&dir.join("meta/main.yml"))? {
            let Meta { dependencies } = meta.parse()?;
            for (position, dependency) in dependencies.iter().enumerate() {
                let at = [Step::Key("dependencies".to_owned()), Step::Index(position)];
                let found = self.role_dir(&dependency.name, &meta, &at)?;
                if depth >= MAX_DEPTH {
                    return Err(meta.error(
                        &at,
                        format!("roles depend on each other more than {MAX_DEPTH} deep"),
                        Some("a role depends on itself, directly or through others".to_owned()),
                    ));
                }
                defaults.extend(self.defaults(&found, depth + 1)?);
            }
        }
        defaults.extend(read_vars(&dir.join("defaults/main.yml"))?);
        Ok(defaults)
    }

    /// Where the role `name` (named at `at` in `source`) is: `roles/NAME` beside the
    /// playbook, then beside the file naming it (a role's dependencies), then the
    /// playbook's own directory.
    fn role_dir(&self, name: &str, source: &Source, at: &[Step]) -> Result<PathBuf, PlaybookError> {
        let mut candidates = vec![self.playbook_dir.join("roles").join(name)];
        // Named in roles/A/meta/main.yml or roles/A/tasks/*.yml: roles/NAME.
        let within_role = source
            .file
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|dir| dir == "meta" || dir == "tasks");
        if let Some(roles) = source.file.ancestors().nth(3).filter(|_| within_role) {
            candidates.push(roles.join(name));
        }
        candidates.push(self.playbook_dir.join(name));
        candidates.dedup();
        if name.is_empty() || name.contains("..") {
            candidates.clear();
        }
        candidates
            .iter()
            .find(|candidate| candidate.is_dir())
            .cloned()
            .ok_or_else(|| {
                source.error(
                    at,
                    format!("role `{name}` not found"),
                    Some(format!(
                        "looked for the directory {}; a role is roles/{name}/tasks/main.yml beside the playbook",
                        joined(&candidates)
                    )),
                )
            })
    }
}

/// `defaults/main.yml` or `vars/main.yml`: none when missing.
fn read_vars(file: &Path) -> Result<Vars, PlaybookError> {
    match Source::read(file)? {
        Some(file) => file.parse(),
        None => Ok(Vars::new()),
    }
}

/// A tasks file's name as `tasks_from` gives it, `.yml` added when it has none.
fn with_yml(name: &str) -> String {
    if Path::new(name).extension().is_some() {
        name.to_owned()
    } else {
        format!("{name}.yml")
    }
}
