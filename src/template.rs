//! Template rendering: `{{ var }}` in playbook strings, `template:` files, and `when:`
//! expressions, with minijinja (Jinja syntax, as Ansible users know it), Python's
//! methods on values, and the filters Ansible adds (see [`filters`]).
//!
//! Undefined variables are errors, never empty strings: a typo in a variable name must
//! not silently write a unit file with a blank `ExecStart=`. The error names the
//! variable.
//!
//! Template work is bounded: every render or evaluation gets [`FUEL`] instructions and
//! at most [`RECURSION_LIMIT`] levels of nesting, so hostile input (nested loops over
//! large ranges, runaway recursion) is refused in a fraction of a second, not run.

use std::collections::{BTreeSet, HashSet};

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

use crate::inventory::Vars;

mod filters;

/// Instructions one render (or one `when:` evaluation) may execute. A unit file looping
/// over a thousand items uses a few tens of thousands.
pub const FUEL: u64 = 1_000_000;

/// Nesting levels (loops, conditions, macro calls) one render may reach.
pub const RECURSION_LIMIT: usize = 100;

/// A template that could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("undefined variable `{name}` in {origin}")]
    Undefined { name: String, origin: String },
    #[error("template error in {origin}: {message}")]
    Invalid { origin: String, message: String },
    /// Variables that need themselves to be rendered: `chain` is `a -> b -> a`.
    #[error("{origin} is defined through itself: {chain}")]
    Cycle { origin: String, chain: String },
}

/// Renders strings and expressions against a set of variables.
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `text` contains template syntax at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

impl Renderer {
    /// A renderer with strict undefined handling and no autoescaping.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        // `dict.items()`, `text.startswith(..)` and the other Python methods templates
        // written for Ansible call.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        filters::add_to(&mut env);
        Renderer { env }
    }

    /// Renders `source` with `vars`; `origin` says where it came from, for errors.
    pub fn render(&self, source: &str, vars: &Vars, origin: &str) -> Result<String, TemplateError> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        let template = self
            .env
            .template_from_str(source)
            .map_err(|error| invalid(origin, &error))?;
        template
            .render(Value::from_serialize(vars))
            .map_err(|error| {
                explain(
                    &error,
                    || template.undeclared_variables(false),
                    vars,
                    origin,
                )
            })
    }

    /// Renders every string inside a JSON value as [`Renderer::value`] does, so a
    /// string that is one whole `{{ expression }}` keeps the expression's type.
    pub fn value_json(
        &self,
        value: &serde_json::Value,
        vars: &Vars,
        origin: &str,
    ) -> Result<serde_json::Value, TemplateError> {
        Ok(match value {
            serde_json::Value::String(text) => self.value(text, vars, origin)?,
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items
                    .iter()
                    .map(|item| self.value_json(item, vars, origin))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(key, item)| Ok((key.clone(), self.value_json(item, vars, origin)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Renders the variables `names` of `vars` in place, lazily: a variable another
    /// one uses is rendered first, whatever order they were written in, and each once.
    /// Variables not in `names` are data, never rendered. A variable that needs itself,
    /// directly or through others, is an error naming the chain; so is a chain deeper
    /// than [`RECURSION_LIMIT`]. `origin` names a variable in errors.
    pub fn resolve(
        &self,
        vars: &mut Vars,
        names: &[String],
        origin: &dyn Fn(&str) -> String,
    ) -> Result<(), TemplateError> {
        self.resolve_needed(vars, names, names, origin)
    }

    /// As [`Renderer::resolve`], but renders only the variables of `names` that
    /// `needed` names or that they use.
    pub fn resolve_needed(
        &self,
        vars: &mut Vars,
        names: &[String],
        needed: &[String],
        origin: &dyn Fn(&str) -> String,
    ) -> Result<(), TemplateError> {
        let mut resolution = Resolution {
            pending: names
                .iter()
                .filter(|name| vars.get(*name).is_some_and(holds_template))
                .cloned()
                .collect(),
            stack: Vec::new(),
            origin,
        };
        for name in needed {
            self.resolve_one(name, vars, &mut resolution)?;
        }
        Ok(())
    }

    fn resolve_one(
        &self,
        name: &str,
        vars: &mut Vars,
        resolution: &mut Resolution<'_>,
    ) -> Result<(), TemplateError> {
        if !resolution.pending.contains(name) {
            return Ok(());
        }
        if let Some(start) = resolution.stack.iter().position(|seen| seen == name) {
            let mut chain = resolution.stack[start..].to_vec();
            chain.push(name.to_owned());
            return Err(TemplateError::Cycle {
                origin: (resolution.origin)(name),
                chain: chain.join(" -> "),
            });
        }
        if resolution.stack.len() >= RECURSION_LIMIT {
            return Err(TemplateError::Invalid {
                origin: (resolution.origin)(name),
                message: format!("variables built from variables more than {RECURSION_LIMIT} deep"),
            });
        }
        resolution.stack.push(name.to_owned());
        let value = vars.get(name).cloned().unwrap_or_default();
        let mut used = BTreeSet::new();
        self.variables_used(&value, &mut used);
        for other in &used {
            self.resolve_one(other, vars, resolution)?;
        }
        let rendered = self.value_json(&value, vars, &(resolution.origin)(name))?;
        vars.insert(name.to_owned(), rendered);
        resolution.stack.pop();
        resolution.pending.remove(name);
        Ok(())
    }

    /// The variables (top-level names) the templates inside `value` use.
    pub fn variables_used(&self, value: &serde_json::Value, used: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::String(text) if is_template(text) => {
                // A template that does not compile is reported when it is rendered.
                if let Ok(template) = self.env.template_from_str(text) {
                    used.extend(template.undeclared_variables(false));
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.variables_used(item, used);
                }
            }
            serde_json::Value::Object(map) => {
                for item in map.values() {
                    self.variables_used(item, used);
                }
            }
            _ => {}
        }
    }

    /// Renders a parameter value: a string that is one whole `{{ expression }}` becomes
    /// the expression's own value (a boolean, a number, a list, a map), as in Ansible;
    /// any other string renders to a string.
    pub fn value(
        &self,
        source: &str,
        vars: &Vars,
        origin: &str,
    ) -> Result<serde_json::Value, TemplateError> {
        let Some(expression) = whole_expression(source) else {
            return self
                .render(source, vars, origin)
                .map(serde_json::Value::String);
        };
        let value = self.evaluate(expression, vars, origin)?;
        serde_json::to_value(&value).map_err(|error| TemplateError::Invalid {
            origin: origin.to_owned(),
            message: format!("its value cannot be a parameter: {error}"),
        })
    }

    /// Evaluates a `when:` condition: a bare expression, or one wrapped in `{{ }}`.
    pub fn condition(
        &self,
        expression: &str,
        vars: &Vars,
        origin: &str,
    ) -> Result<bool, TemplateError> {
        let trimmed = expression.trim();
        let bare = trimmed
            .strip_prefix("{{")
            .and_then(|rest| rest.strip_suffix("}}"))
            .unwrap_or(trimmed)
            .trim();
        let value = self.evaluate(bare, vars, origin)?;
        // YAML-ish strings from inventories and -e ("false", "no") mean false.
        if let Some(text) = value.as_str() {
            return Ok(!matches!(
                text.trim().to_ascii_lowercase().as_str(),
                "" | "false" | "no" | "0" | "off"
            ));
        }
        Ok(value.is_true())
    }

    /// What a template (or, with `expression`, a `when:`-style condition) reads: each
    /// variable, with the attributes looked up on it (`out.rc`), as far as the text
    /// shows. A subscript (`out['rc']`) or a filter on the variable reads all of it.
    pub fn references(&self, text: &str, expression: bool) -> HashSet<String> {
        if expression {
            let trimmed = text.trim();
            let bare = trimmed
                .strip_prefix("{{")
                .and_then(|rest| rest.strip_suffix("}}"))
                .unwrap_or(trimmed);
            return self
                .env
                .compile_expression(bare.trim())
                .map(|compiled| compiled.undeclared_variables(true))
                .unwrap_or_default();
        }
        if !is_template(text) {
            return HashSet::new();
        }
        self.env
            .template_from_str(text)
            .map(|template| template.undeclared_variables(true))
            .unwrap_or_default()
    }

    /// The value of one expression; an undefined one is an error naming the variable.
    fn evaluate(&self, bare: &str, vars: &Vars, origin: &str) -> Result<Value, TemplateError> {
        let compiled = self
            .env
            .compile_expression(bare)
            .map_err(|error| invalid(origin, &error))?;
        let value = compiled
            .eval(Value::from_serialize(vars))
            .map_err(|error| {
                explain(
                    &error,
                    || compiled.undeclared_variables(false),
                    vars,
                    origin,
                )
            })?;
        if value.is_undefined() {
            let missing = compiled
                .undeclared_variables(false)
                .into_iter()
                .filter(|name| !vars.contains_key(name))
                .collect::<BTreeSet<_>>();
            return Err(TemplateError::Undefined {
                name: missing
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| bare.to_owned()),
                origin: origin.to_owned(),
            });
        }
        Ok(value)
    }
}

/// The state of one [`Renderer::resolve`].
struct Resolution<'a> {
    /// Templated variables not rendered yet.
    pending: HashSet<String>,
    /// The variables being rendered, each needing the next.
    stack: Vec<String>,
    origin: &'a dyn Fn(&str) -> String,
}

/// Whether any string inside `value` is a template.
pub fn holds_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => is_template(text),
        serde_json::Value::Array(items) => items.iter().any(holds_template),
        serde_json::Value::Object(map) => map.values().any(holds_template),
        _ => false,
    }
}

/// The expression of a string that is one whole `{{ expression }}`, if it is.
fn whole_expression(source: &str) -> Option<&str> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?;
    let single = !["{{", "}}", "{%", "{#"]
        .iter()
        .any(|mark| inner.contains(mark));
    single.then(|| inner.trim())
}

/// Names the undefined variable when that is what went wrong. Only consulted after a
/// failure, so `x | default(..)` and `x is defined` keep working for undefined `x`.
fn explain(
    error: &minijinja::Error,
    referenced: impl FnOnce() -> HashSet<String>,
    vars: &Vars,
    origin: &str,
) -> TemplateError {
    if error.kind() == ErrorKind::UndefinedError {
        let missing: BTreeSet<String> = referenced()
            .into_iter()
            .filter(|name| !vars.contains_key(name))
            .collect();
        if let Some(name) = missing.into_iter().next() {
            return TemplateError::Undefined {
                name,
                origin: origin.to_owned(),
            };
        }
    }
    invalid(origin, error)
}

fn invalid(origin: &str, error: &minijinja::Error) -> TemplateError {
    if error.kind() == ErrorKind::OutOfFuel {
        return TemplateError::Invalid {
            origin: origin.to_owned(),
            message: format!(
                "the template does more than {FUEL} steps of work (nested loops over large ranges?); converge stops templates there"
            ),
        };
    }
    let mut message = error.kind().to_string();
    if let Some(detail) = error.detail() {
        message = format!("{message}: {detail}");
    }
    TemplateError::Invalid {
        origin: origin.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example Sidekiq units: `Type=notify` with a watchdog for Sidekiq's own
    /// command, `Type=simple` for another command, and `sidekiq_notify` decides.
    #[test]
    fn the_sidekiq_units_notify_unless_the_command_is_another() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in ["sidekiq.service.j2", "sidekiq-user.service.j2"] {
            let source =
                std::fs::read_to_string(root.join("playbooks/templates").join(name)).unwrap();
            let render = |extra: &[(&str, serde_json::Value)]| {
                let mut vars = vars();
                for (key, value) in extra {
                    vars.insert((*key).to_owned(), value.clone());
                }
                Renderer::new().render(&source, &vars, name).unwrap()
            };
            let own = render(&[]);
            assert!(
                own.contains("[Service]\n# Sidekiq 6.4")
                    && own.contains(
                        "\nType=notify\nNotifyAccess=all\nWatchdogSec=10\nWorkingDirectory="
                    ),
                "{own}"
            );
            let other = render(&[("sidekiq_exec", json!("/bin/sleep infinity"))]);
            assert!(
                other.contains("\nType=simple\nWorkingDirectory=")
                    && !other.contains("WatchdogSec=10"),
                "{other}"
            );
            let chosen = render(&[
                ("sidekiq_exec", json!("/opt/bin/sidekiq")),
                ("sidekiq_notify", json!(true)),
            ]);
            assert!(chosen.contains("\nType=notify\n"), "{chosen}");
        }
    }

    fn vars() -> Vars {
        let mut vars = Vars::new();
        vars.insert("app_root".into(), json!("/opt/app/current"));
        vars.insert("workers".into(), json!(2));
        vars.insert("enable_sidekiq".into(), json!(true));
        vars.insert("disabled".into(), json!("false"));
        vars
    }

    #[test]
    fn strings_render_and_plain_ones_pass_through() {
        let renderer = Renderer::new();
        assert_eq!(
            renderer
                .render("WorkingDirectory={{ app_root }}\n", &vars(), "t")
                .unwrap(),
            "WorkingDirectory=/opt/app/current\n"
        );
        assert_eq!(renderer.render("50%", &vars(), "t").unwrap(), "50%");
    }

    #[test]
    fn undefined_variable_is_named() {
        let error = Renderer::new()
            .render("{{ app_rot }}", &vars(), "task `sidekiq unit`")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "undefined variable `app_rot` in task `sidekiq unit`"
        );
    }

    #[test]
    fn default_filter_covers_undefined_variables() {
        assert_eq!(
            Renderer::new()
                .render("{{ missing | default('x') }}", &vars(), "t")
                .unwrap(),
            "x"
        );
        assert!(!Renderer::new()
            .condition("missing is defined", &vars(), "t")
            .unwrap());
    }

    #[test]
    fn syntax_error_is_reported() {
        let error = Renderer::new()
            .render("{{ app_root ", &vars(), "t")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("template error in t: syntax error"),
            "{error}"
        );
    }

    #[test]
    fn json_values_render_deeply() {
        let value = json!({"path": "{{ app_root }}/x", "list": ["{{ workers }}"], "n": 1});
        assert_eq!(
            Renderer::new().value_json(&value, &vars(), "t").unwrap(),
            json!({"path": "/opt/app/current/x", "list": [2], "n": 1})
        );
    }

    #[test]
    fn a_whole_expression_keeps_its_type_and_anything_else_is_a_string() {
        let renderer = Renderer::new();
        let mut vars = vars();
        vars.insert("groups".into(), json!(["wheel", "adm"]));
        vars.insert("env".into(), json!({"A": "1"}));
        for (source, expected) in [
            ("{{ workers }}", json!(2)),
            ("{{ enable_sidekiq }}", json!(true)),
            ("{{ groups }}", json!(["wheel", "adm"])),
            ("{{ env }}", json!({"A": "1"})),
            ("{{ workers + 1 }}", json!(3)),
            ("{{ workers }} workers", json!("2 workers")),
            ("{{ workers }}{{ workers }}", json!("22")),
            ("plain", json!("plain")),
        ] {
            assert_eq!(
                renderer.value(source, &vars, "t").unwrap(),
                expected,
                "{source}"
            );
        }
        assert_eq!(
            renderer
                .value("{{ nope }}", &vars, "t")
                .unwrap_err()
                .to_string(),
            "undefined variable `nope` in t"
        );
    }

    #[test]
    fn conditions() {
        let renderer = Renderer::new();
        assert!(renderer
            .condition("{{ enable_sidekiq }}", &vars(), "t")
            .unwrap());
        assert!(renderer.condition("workers > 1", &vars(), "t").unwrap());
        assert!(!renderer.condition("disabled", &vars(), "t").unwrap());
        assert!(renderer.condition("nope", &vars(), "t").is_err());
    }
}
