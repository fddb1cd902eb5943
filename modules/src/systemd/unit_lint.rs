//! Unit files checked before they replace the current one, and compared as systemd
//! reads them.
//!
//! Three kinds of checks, all made before anything is written, in `--check` too:
//! - converge's own lints for the traps of this job ([`lint`]), pure: a user unit
//!   wanted by a target only the system manager has, `User=`/`Group=` in a user unit,
//!   `StandardOutput=syslog`, `enabled: true` without an `[Install]` section;
//! - the programs the unit starts ([`programs`]), read as `Path` facts with the rest of
//!   the batch (so a program an earlier task of the same run installs counts, in check
//!   mode too);
//! - `systemd-analyze verify` on the candidate, in the manager's own view (`--user` for
//!   a user unit), read as the [`Candidate`] fact: the probe writes the candidate into a
//!   fresh private directory (`mktemp -d` under `/run`, root's), verifies it, and removes
//!   the directory, all within the one batched read. When the file on the host already
//!   holds the candidate, the probe says so and verifies nothing, so a run with nothing
//!   to change costs no `systemd-analyze` at all.
//!
//! [`normalized`] is the unit as systemd sees it (no comments, blank lines or line
//! continuations, keys in a canonical order), so a change that only touches those
//! rewrites the file without restarting the unit.

use std::fmt;

use serde::Serialize;

use crate::fact::Manager;
use crate::shell::quote;
use crate::Scope;

/// A unit file's settings as systemd reads them: `(section, key, value)`, sections and
/// keys sorted, repeated keys in their order (which systemd does see).
pub fn normalized(content: &[u8]) -> Vec<(String, String, String)> {
    let text = String::from_utf8_lossy(content);
    let mut entries = Vec::new();
    let mut section = String::new();
    let mut pending: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_none() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if pending.is_some() && (line.starts_with('#') || line.starts_with(';')) {
            // A comment inside a continued line is skipped by systemd as well.
            continue;
        }
        let mut logical = match pending.take() {
            Some(mut so_far) => {
                so_far.push(' ');
                so_far.push_str(line);
                so_far
            }
            None => line.to_owned(),
        };
        if let Some(continued) = logical.strip_suffix('\\') {
            pending = Some(continued.trim_end().to_owned());
            continue;
        }
        logical = logical.trim().to_owned();
        if logical.starts_with('[') && logical.ends_with(']') {
            logical[1..logical.len() - 1].clone_into(&mut section);
            continue;
        }
        let (key, value) = logical.split_once('=').unwrap_or((logical.as_str(), ""));
        entries.push((
            section.clone(),
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    if let Some(last) = pending {
        let (key, value) = last.split_once('=').unwrap_or((last.as_str(), ""));
        entries.push((section, key.trim().to_owned(), value.trim().to_owned()));
    }
    // Stable: values of one key keep their order.
    entries.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    entries
}

/// Whether two unit files differ in anything systemd sees.
pub fn effectively_differ(old: &[u8], new: &[u8]) -> bool {
    normalized(old) != normalized(new)
}

/// What converge's own lints found. An error names the task parameter it is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    pub errors: Vec<crate::ParamError>,
    pub warnings: Vec<String>,
}

fn error(param: &'static str, reason: String) -> crate::ParamError {
    crate::ParamError::Invalid { param, reason }
}

/// Targets only the system manager has.
const SYSTEM_ONLY_TARGETS: &[&str] = &["multi-user.target", "graphical.target"];

/// converge's own lints of a unit's text for `scope`, with `enabled` as the task asks.
pub fn lint(content: &str, scope: Scope, enabled: Option<bool>) -> Findings {
    let entries = normalized(content.as_bytes());
    let mut findings = Findings::default();
    let start_target = match scope {
        Scope::System => "multi-user.target",
        Scope::User => "default.target",
    };
    let installable = entries.iter().any(|(section, key, _)| {
        section == "Install"
            && matches!(
                key.as_str(),
                "WantedBy" | "RequiredBy" | "UpheldBy" | "Alias" | "Also"
            )
    });
    if enabled == Some(true) && !installable {
        findings.errors.push(error("enabled", format!("is true, but the unit has no [Install] section with WantedBy= (or RequiredBy=, Alias=), so systemctl cannot enable it; add e.g. WantedBy={start_target}")));
    }
    for (section, key, value) in &entries {
        match (section.as_str(), key.as_str()) {
            ("Install", "WantedBy" | "RequiredBy" | "UpheldBy") if scope == Scope::User => {
                if let Some(target) = value
                    .split_whitespace()
                    .find(|target| SYSTEM_ONLY_TARGETS.contains(target))
                {
                    findings.errors.push(error("scope", format!("is user, but the unit's [Install] section names {target}, which only the system manager has: the user's manager would never start the unit; use WantedBy={start_target}")));
                }
            }
            ("Service", "User" | "Group") if scope == Scope::User => {
                findings.errors.push(error("scope", format!("is user, but the unit sets {key}={value}: a user's manager runs services only as its own user, and fails the start with status 216/GROUP; remove {key}=")));
            }
            ("Service", "StandardOutput" | "StandardError")
                if value.starts_with("syslog") || value.starts_with("kmsg") =>
            {
                findings.warnings.push(format!("{key}={value} is deprecated (systemd logs to the journal and forwards to syslog from there); remove it, or write {key}=journal"));
            }
            _ => {}
        }
    }
    findings
}

/// The absolute programs the unit's `ExecStart=`, `ExecStartPre=` and `ExecStartPost=`
/// lines run and need to exist: not those prefixed with `-` (failure ignored), nor
/// those with specifiers or variables (only the manager can expand them), nor bare
/// names (systemd searches its own path; `systemd-analyze verify` checks them).
pub fn programs(content: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (section, key, value) in normalized(content.as_bytes()) {
        if section != "Service"
            || !matches!(key.as_str(), "ExecStart" | "ExecStartPre" | "ExecStartPost")
        {
            continue;
        }
        let Some(word) = value.split_whitespace().next() else {
            continue;
        };
        let prefixes: String = word.chars().take_while(|c| "@-:+!|".contains(*c)).collect();
        let program = &word[prefixes.len()..];
        if prefixes.contains('-')
            || prefixes.contains('|')
            || !program.starts_with('/')
            || program.contains(['%', '$'])
        {
            continue;
        }
        if !found.iter().any(|known: &String| known == program) {
            found.push(program.to_owned());
        }
    }
    found
}

/// A unit file about to be installed, as the key of the fact that verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Candidate {
    pub manager: Manager,
    /// Where it will be installed.
    pub path: String,
    pub content: String,
}

impl Candidate {
    fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "systemd-analyze verify of the new {}", self.path)
    }
}

/// What `systemd-analyze verify` said about a [`Candidate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The file on the host already holds the candidate: nothing was verified.
    Installed,
    /// `systemd-analyze` is missing on the host, or no private directory could be made.
    Unavailable,
    Checked {
        errors: Vec<String>,
        warnings: Vec<String>,
    },
}

/// The probe of a [`Candidate`] (see the module documentation). It runs in a subshell
/// of the batch, so its `cd` stays there.
pub fn probe(candidate: &Candidate) -> String {
    let (dir, name) = crate::safe_path::split(&candidate.path);
    let user = if matches!(candidate.manager, Manager::User(_)) {
        // Root's own user manager view needs a runtime directory: the private one.
        "XDG_RUNTIME_DIR=\"$t\" systemd-analyze --user"
    } else {
        "systemd-analyze"
    };
    format!(
        concat!(
            "if {installed} && [ \"$({read}; echo .)\" = {c} ]; then echo installed; ",
            "elif ! command -v systemd-analyze >/dev/null 2>&1; then echo unavailable; ",
            "elif ! t=$(umask 077; mktemp -d /run/converge-verify.XXXXXX 2>/dev/null || mktemp -d); then echo unavailable; ",
            "else printf %s {content} > \"$t\"/{name}; ",
            "out=$({analyze} verify -- \"$t\"/{name} 2>&1); rc=$?; rm -rf -- \"$t\"; ",
            "printf 'checked %s %s\\n%s\\n' \"$rc\" \"$t\" \"$out\"; fi"
        ),
        installed = crate::safe_path::regular_file_in(&dir, &name),
        // One byte past the candidate is enough to tell a longer file from it.
        read = crate::safe_path::read_nofollow(&name, candidate.content.len() + 1),
        c = quote(&format!("{}.", candidate.content)),
        content = quote(&candidate.content),
        name = quote(&name),
        analyze = user,
    )
}

/// What `systemd-analyze verify` says only as advice.
const ADVICE: &[&str] = &[
    "obsolete",
    "deprecated",
    "not safe",
    "unsafe",
    "Special user",
    "Please update",
    // A dependency an earlier task of the run may install (a package's unit): if it is
    // still missing when the unit starts, the start fails and says so.
    "not found",
];

/// Parses a [`probe`]'s output; `None` when it is not one.
pub fn parse(candidate: &Candidate, output: &str) -> Option<Verdict> {
    let (first, rest) = output.split_once('\n').unwrap_or((output, ""));
    match first {
        "installed" => return Some(Verdict::Installed),
        "unavailable" => return Some(Verdict::Unavailable),
        _ => {}
    }
    let mut words = first.strip_prefix("checked ")?.splitn(2, ' ');
    let status: i32 = words.next()?.parse().ok()?;
    let dir = words.next()?;
    let name = candidate.name();
    let temporary = format!("{dir}/{name}");
    let shown = format!("{} (new)", candidate.path);
    let own_programs = programs(&candidate.content);
    let (mut errors, mut warnings, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for line in rest.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let line = line.replace(&temporary, &shown);
        // converge checks these programs itself, against what the run will have
        // installed by then; and its own lint speaks of syslog.
        if own_programs
            .iter()
            .any(|program| line.contains(&format!("Command {program} is not executable")))
            || line.contains("type syslog is obsolete")
        {
            continue;
        }
        let ours = line.starts_with(&format!("{shown}:"))
            || line.starts_with(&format!("{name}:"))
            || line.starts_with(&format!("Unit {name} "));
        if !ours {
            other.push(line);
        } else if ADVICE.iter().any(|word| line.contains(word)) {
            warnings.push(line);
        } else {
            errors.push(line);
        }
    }
    if status != 0 && errors.is_empty() && !other.is_empty() {
        errors.push(format!(
            "systemd-analyze verify failed (exit status {status}): {}",
            other.join("; ")
        ));
    }
    Some(Verdict::Checked { errors, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_key_order_are_not_effective() {
        let old = "[Unit]\nDescription=w\n[Service]\nExecStart=/bin/w\nRestart=on-failure\n";
        let new = "# managed\n[Unit]\nDescription=w\n\n[Service]\n; why\nRestart=on-failure\nExecStart=/bin/w  \n";
        assert!(!effectively_differ(old.as_bytes(), new.as_bytes()));
        let continued =
            "[Unit]\nDescription=w\n[Service]\nExecStart=/bin/w \\\n  \nRestart=on-failure\n";
        assert!(!effectively_differ(old.as_bytes(), continued.as_bytes()));
        let changed = old.replace("on-failure", "always");
        assert!(effectively_differ(old.as_bytes(), changed.as_bytes()));
        // The order of one key's values is what systemd runs.
        let pre = "[Service]\nExecStartPre=/bin/a\nExecStartPre=/bin/b\n";
        let swapped = "[Service]\nExecStartPre=/bin/b\nExecStartPre=/bin/a\n";
        assert!(effectively_differ(pre.as_bytes(), swapped.as_bytes()));
        // A key moved to another section is another setting.
        let moved = "[Unit]\nDescription=w\nRestart=on-failure\n[Service]\nExecStart=/bin/w\n";
        assert!(effectively_differ(old.as_bytes(), moved.as_bytes()));
    }

    #[test]
    fn user_unit_traps_are_errors_and_syslog_a_warning() {
        let unit = "[Service]\nExecStart=/bin/w\nUser=deploy\nStandardOutput=syslog\n[Install]\nWantedBy=multi-user.target\n";
        let findings = lint(unit, Scope::User, Some(true));
        assert_eq!(findings.errors.len(), 2, "{findings:?}");
        assert!(findings.errors[0]
            .to_string()
            .contains("names multi-user.target"));
        assert!(findings.errors[1]
            .to_string()
            .starts_with("`scope` is user, but the unit sets User=deploy"));
        assert_eq!(findings.warnings.len(), 1);
        assert!(findings.warnings[0].starts_with("StandardOutput=syslog is deprecated"));
        let system = lint(unit, Scope::System, Some(true));
        assert!(system.errors.is_empty(), "{system:?}");
    }

    #[test]
    fn enabled_without_install_is_an_error() {
        let findings = lint("[Service]\nExecStart=/bin/w\n", Scope::System, Some(true));
        assert_eq!(findings.errors.len(), 1);
        assert!(findings.errors[0]
            .to_string()
            .starts_with("`enabled` is true, but the unit has no [Install]"));
        assert!(lint("[Service]\nExecStart=/bin/w\n", Scope::System, None)
            .errors
            .is_empty());
    }

    #[test]
    fn programs_skip_ignored_failures_specifiers_and_bare_names() {
        let unit = "[Service]\nExecStartPre=-/opt/maybe\nExecStartPre=+/usr/bin/install -d /run/w\nExecStart=@/opt/app/bin/w w --flag\nExecStartPost=%h/bin/x\nExecStop=/bin/stop\nExecReload=kill -HUP $MAINPID\n";
        assert_eq!(programs(unit), ["/opt/app/bin/w", "/usr/bin/install"]);
    }

    fn candidate() -> Candidate {
        Candidate {
            manager: Manager::System,
            path: "/etc/systemd/system/w.service".into(),
            content: "[Service]\nExecStrat=/bin/w\nExecStart=/opt/w\n".into(),
        }
    }

    #[test]
    fn verify_output_is_judged_line_by_line_about_the_candidate_only() {
        let output = "checked 1 /run/converge-verify.Ab12Cd\n\
/run/converge-verify.Ab12Cd/w.service:2: Unknown key 'ExecStrat' in section [Service], ignoring.\n\
/run/converge-verify.Ab12Cd/w.service:4: Special user nobody configured, this is not safe!\n\
w.service: Command /opt/w is not executable: No such file or directory\n\
/lib/systemd/system/other.service:3: something about another unit\n";
        assert_eq!(
            parse(&candidate(), output),
            Some(Verdict::Checked {
                errors: vec!["/etc/systemd/system/w.service (new):2: Unknown key 'ExecStrat' in section [Service], ignoring.".into()],
                warnings: vec!["/etc/systemd/system/w.service (new):4: Special user nobody configured, this is not safe!".into()],
            })
        );
        // A dependency another task may install is advice, not a refusal.
        let missing = "checked 1 /run/x\nw.service: Failed to create w.service/start: Unit redis.service not found.\n";
        assert_eq!(
            parse(&candidate(), missing),
            Some(Verdict::Checked {
                errors: vec![],
                warnings: vec![
                    "w.service: Failed to create w.service/start: Unit redis.service not found."
                        .into()
                ],
            })
        );
        assert_eq!(parse(&candidate(), "installed\n"), Some(Verdict::Installed));
        assert_eq!(
            parse(&candidate(), "unavailable\n"),
            Some(Verdict::Unavailable)
        );
        assert_eq!(parse(&candidate(), "garbage\n"), None);
        // A failure converge cannot place is still a failure.
        assert_eq!(
            parse(&candidate(), "checked 1 /run/x\nFailed to initialize manager: No such device\n"),
            Some(Verdict::Checked {
                errors: vec!["systemd-analyze verify failed (exit status 1): Failed to initialize manager: No such device".into()],
                warnings: vec![],
            })
        );
    }

    /// The probe on this machine: a private directory that is gone afterwards, and
    /// "installed" when the file already holds the candidate.
    #[test]
    fn the_probe_leaves_nothing_behind() {
        let dir = std::env::temp_dir().join(format!("converge-lint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let mut candidate = candidate();
        candidate.path = format!("{}/w.service", dir.display());
        let run = |candidate: &Candidate| {
            let output = std::process::Command::new("sh")
                .args(["-c", &probe(candidate)])
                .env("TMPDIR", &dir)
                .output()
                .unwrap();
            parse(candidate, &String::from_utf8_lossy(&output.stdout)).unwrap()
        };
        let verdict = run(&candidate);
        if verdict != Verdict::Unavailable {
            let Verdict::Checked { errors, .. } = verdict else {
                panic!("{verdict:?}")
            };
            assert!(errors.iter().any(|e| e.contains("ExecStrat")), "{errors:?}");
        }
        std::fs::write(&candidate.path, &candidate.content).unwrap();
        assert_eq!(run(&candidate), Verdict::Installed);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
