//! A scripted host for the engine's unit tests: a [`Transport`] that never leaves the
//! process.
//!
//! A [`FakeHost`] is a small model of a machine (files, directories, users, groups,
//! system units, lingering, probe results, its lock) that answers what the engine
//! sends the way a real host would. It understands requests instead of matching
//! strings: a fact read is cut into its fact keys (each section of the batch script is
//! recognised by rebuilding the probe of a candidate key and comparing it byte for
//! byte), and each key is answered from the model in the format the real probe prints,
//! so the engine's own parsers read it. A change is recognised the same way, by
//! rebuilding the [`Change`] it came from, and applied to the model. Anything the model
//! does not know is answered with success and left alone, and every command is
//! recorded, so a test can count round trips and see what was applied.
//!
//! Hosts are handed to the engine through [`connect`]: [`FakeHost::target`] gives a
//! target that `transport::connect` resolves to the fake instead of dialling it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use converge_modules::accounts::AccountKey;
use converge_modules::change::{Attributes, FileWrite};
use converge_modules::commands::CommandKey;
use converge_modules::fact::{FactKey, Manager, PathKind, UnitRef};
use converge_modules::packages::PackageKey;
use converge_modules::paths::{PathChange, PathKey};
use converge_modules::systemd::SystemdKey;
use converge_modules::{safe_path, Change};

use super::{Connection, HostKeyChecking, Output, SshOptions, Target, Transport, TransportError};

/// What a fake host was sent: one entry per remote command (one round trip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A fact read: the keys it asked for, and whether it was sent to take the host's
    /// lock (see [`Model::locked_by`] for when it could not).
    Read { keys: Vec<FactKey>, locked: bool },
    /// Changes: each command's argv, in the order they ran (one entry per command of a
    /// sequence), whom sudo ran them as (`None`: the login user), and the keys of the
    /// fact read that ran at the sequence's end, if one did.
    Apply {
        commands: Vec<Vec<String>>,
        sudo: Option<String>,
        read: Option<Vec<FactKey>>,
    },
}

/// A file on a fake host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub content: Vec<u8>,
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

/// A system unit on a fake host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub active: bool,
    pub enabled: bool,
}

/// A user account on a fake host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub home: String,
    pub shell: String,
    pub groups: Vec<String>,
}

/// The state of a fake host, and what it was sent.
#[derive(Debug, Default)]
pub struct Model {
    pub files: BTreeMap<String, File>,
    /// Directories besides `/` and the ancestors of every file and directory.
    pub dirs: BTreeMap<String, (String, String, u32)>,
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, u32>,
    pub units: BTreeMap<String, Unit>,
    pub lingering: BTreeSet<String>,
    /// Packages apt's cache offers, by name: their candidate version. None is
    /// installed (check mode is all the fake host models of packages).
    pub packages: BTreeMap<String, String>,
    /// Exit status of `command`'s `unless` probes (and any `FactKey::Commands(CommandKey::Probe)`); 1 when
    /// not listed.
    pub probes: BTreeMap<String, i32>,
    /// Commands (argv words joined by spaces) containing one of these fail with
    /// status 1; `converge-facts` makes a read at a script's end fail.
    pub failing: Vec<String>,
    /// Commands (argv words joined by spaces) containing a key print its value on
    /// stdout.
    pub printing: BTreeMap<String, String>,
    /// Commands containing one of these succeed and change nothing.
    pub ignoring: Vec<String>,
    /// Another run holds the host's lock: taking it fails, naming this holder.
    pub locked_by: Option<String>,
    /// The connection cannot be opened.
    pub unreachable: bool,
    /// Who logs in (`root` when empty).
    pub login: String,
    /// This run holds the lock (taken with a read, not given back yet).
    pub lock_held: bool,
    /// Every command, in order.
    pub sent: Vec<Sent>,
}

/// A handle on one fake host, shared by the test and the transport the engine uses.
#[derive(Debug, Clone, Default)]
pub struct FakeHost(Arc<Mutex<Model>>);

/// The fake hosts the engine may connect to, by port (see [`FakeHost::target`]).
static FLEET: Mutex<Option<HashMap<u16, FakeHost>>> = Mutex::new(None);

/// Ports for fake targets; never dialled (see [`connect`]).
static NEXT_PORT: AtomicU16 = AtomicU16::new(1);

impl FakeHost {
    /// A host with root and the usual directories, nothing else.
    pub fn new() -> Self {
        let host = FakeHost::default();
        host.model().users.insert(
            "root".to_owned(),
            User {
                uid: 0,
                home: "/root".to_owned(),
                shell: "/bin/bash".to_owned(),
                groups: Vec::new(),
            },
        );
        host.model().groups.insert("root".to_owned(), 0);
        for dir in [
            "/etc",
            "/etc/systemd",
            "/etc/systemd/system",
            "/home",
            "/opt",
            "/root",
        ] {
            host.model().dirs.insert(
                dir.to_owned(),
                ("root".to_owned(), "root".to_owned(), 0o755),
            );
        }
        host
    }

    /// The model, to set up or inspect.
    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A target named `name` that `transport::connect` resolves to this host.
    pub fn target(&self, name: &str) -> Target {
        let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        FLEET
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(HashMap::new)
            .insert(port, self.clone());
        Target {
            name: name.to_owned(),
            // Never dialled: `connect` claims the port first.
            address: "127.0.0.1".to_owned(),
            port,
            user: match self.model().login.as_str() {
                "" => "root".to_owned(),
                login => login.to_owned(),
            },
            identity_file: None,
            connection: Connection::Ssh,
            host_key_checking: HostKeyChecking::Strict,
            ssh: SshOptions::default(),
        }
    }

    /// Adds a file owned by root.
    pub fn with_file(self, path: &str, content: &str, mode: u32) -> Self {
        self.model().files.insert(
            path.to_owned(),
            File {
                content: content.as_bytes().to_vec(),
                owner: "root".to_owned(),
                group: "root".to_owned(),
                mode,
            },
        );
        self
    }

    /// Adds a system unit.
    pub fn with_unit(self, name: &str, active: bool, enabled: bool) -> Self {
        self.model()
            .units
            .insert(name.to_owned(), Unit { active, enabled });
        self
    }

    /// Puts `name` at `version` in apt's cache, not installed.
    pub fn with_package_available(self, name: &str, version: &str) -> Self {
        self.model()
            .packages
            .insert(name.to_owned(), version.to_owned());
        self
    }

    /// Makes every command containing `pattern` print `stdout`.
    pub fn printing(self, pattern: &str, stdout: &str) -> Self {
        self.model()
            .printing
            .insert(pattern.to_owned(), stdout.to_owned());
        self
    }

    /// Makes every command containing `pattern` fail.
    pub fn failing_on(self, pattern: &str) -> Self {
        self.model().failing.push(pattern.to_owned());
        self
    }

    /// Makes every command containing `pattern` succeed without changing anything.
    pub fn ignoring(self, pattern: &str) -> Self {
        self.model().ignoring.push(pattern.to_owned());
        self
    }

    /// Every command sent so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.model().sent.clone()
    }

    /// The argv of every change command applied so far (a read at a script's end is
    /// none).
    pub fn applied(&self) -> Vec<Vec<String>> {
        self.sent()
            .into_iter()
            .flat_map(|sent| match sent {
                Sent::Apply { commands, .. } => commands,
                Sent::Read { .. } => Vec::new(),
            })
            .collect()
    }

    /// The fact reads made so far: those sent alone, and those at a script's end.
    pub fn reads(&self) -> Vec<Vec<FactKey>> {
        self.sent()
            .into_iter()
            .filter_map(|sent| match sent {
                Sent::Read { keys, .. } => Some(keys),
                Sent::Apply { read, .. } => read,
            })
            .collect()
    }
}

/// The fake host behind `target`, if it is one: `Some(Err)` when it is unreachable.
pub fn connect(target: &Target) -> Option<Result<Box<dyn Transport>, TransportError>> {
    let host = FLEET
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()?
        .get(&target.port)?
        .clone();
    if host.model().unreachable {
        return Some(Err(TransportError::Connect {
            address: target.address.clone(),
            port: target.port,
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        }));
    }
    Some(Ok(Box::new(FakeTransport(host))))
}

/// The transport the engine gets for a [`FakeHost`].
struct FakeTransport(FakeHost);

impl Transport for FakeTransport {
    fn run(&mut self, command_line: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        let mut model = self.0.model();
        Ok(if command_line.contains("converge-facts") {
            let script = String::from_utf8_lossy(stdin);
            let (keys, output) = model.answer(&script);
            model.sent.push(Sent::Read {
                keys,
                locked: false,
            });
            output
        } else {
            model.apply_line(command_line, stdin)
        })
    }

    fn hold(
        &mut self,
        command_line: &str,
        stdin: &[u8],
        // What the lock script prints once it holds the lock: never part of the output.
        _ready: &[u8],
    ) -> Result<(Output, bool), TransportError> {
        let mut model = self.0.model();
        assert!(
            command_line.contains("converge-lock"),
            "the fake host holds only the lock: {command_line}"
        );
        let script = String::from_utf8_lossy(stdin);
        let (keys, output) = model.answer(&script);
        model.sent.push(Sent::Read { keys, locked: true });
        if let Some(holder) = &model.locked_by {
            return Ok((
                Output {
                    status: crate::lock::LOCKED_EXIT,
                    stdout: Vec::new(),
                    stderr: format!(
                        "another converge run holds this host's lock (/run/converge.lock): {holder}\n"
                    )
                    .into_bytes(),
                },
                false,
            ));
        }
        model.lock_held = true;
        Ok((output, true))
    }

    fn release(&mut self) {
        self.0.model().lock_held = false;
    }
}

impl Model {
    /// Answers the batch script of a fact read (also when it is the body of the lock
    /// script): the keys it asks for, and what the host prints.
    fn answer(&self, script: &str) -> (Vec<FactKey>, Output) {
        let start = script
            .find("::converge:")
            .expect("a fact read carries delimiters");
        let nonce: String = script[start + "::converge:".len()..]
            .chars()
            .take_while(|c| *c != ':')
            .collect();
        let echo = format!("echo '::converge:{nonce}:");
        let mut keys = Vec::new();
        let mut stdout = String::new();
        // Each delimiter's echo is followed by its section, up to the next echo.
        for piece in script.split(&echo).skip(1) {
            let (label, section) = piece.split_once("::'\n").expect("a delimiter line");
            let _ = writeln!(stdout, "::converge:{nonce}:{label}::");
            if label == "end" {
                break;
            }
            let section = section.trim_end_matches('\n');
            let key = fact_key(section);
            stdout.push_str(&self.fact(&key));
            keys.push(key);
        }
        (
            keys,
            Output {
                status: 0,
                stdout: stdout.into_bytes(),
                stderr: Vec::new(),
            },
        )
    }

    /// What the probe of `key` prints on this host.
    fn fact(&self, key: &FactKey) -> String {
        match key {
            FactKey::System => "fake\ndebian\n13\nsystemd=257\nsystemctl=/usr/bin/systemctl\n".to_owned(),
            FactKey::Machine => "arch=x86_64\nkernel=6.1.0\ncpus=2\nmemory_kb=2097152\nfamily=debian\ncodename=trixie\n".to_owned(),
            FactKey::Paths(PathKey::Path(path)) => {
                let mut lines = String::new();
                for step in safe_path::ancestors(path).iter().chain([path]) {
                    lines.push_str(&self.stat(step));
                    lines.push('\n');
                }
                lines
            }
            FactKey::Paths(PathKey::Content(path)) => match self.files.get(path) {
                Some(file) => format!(
                    "present\n{}\n",
                    base64::engine::general_purpose::STANDARD.encode(&file.content)
                ),
                None => "absent\n".to_owned(),
            },
            FactKey::Accounts(AccountKey::User(name)) => match self.users.get(name) {
                Some(user) => {
                    let mut groups = vec![name.clone()];
                    groups.extend(user.groups.iter().cloned());
                    format!(
                        "{name}:x:{uid}:{uid}::{home}:{shell}\n{}\n",
                        groups.join(" "),
                        uid = user.uid,
                        home = user.home,
                        shell = user.shell
                    )
                }
                None => "\n\n".to_owned(),
            },
            FactKey::Accounts(AccountKey::Group(name)) => self
                .groups
                .get(name)
                .map(|gid| format!("{name}:x:{gid}:\n"))
                .unwrap_or_default(),
            FactKey::Systemd(SystemdKey::Unit(UnitRef {
                manager: Manager::System,
                name,
            })) => match self.units.get(name) {
                Some(unit) => format!(
                    "LoadState=loaded\nActiveState={}\nUnitFileState={}\nNeedDaemonReload=no\n",
                    if unit.active { "active" } else { "inactive" },
                    if unit.enabled { "enabled" } else { "disabled" },
                ),
                None => "LoadState=not-found\nActiveState=inactive\nUnitFileState=\nNeedDaemonReload=no\n"
                    .to_owned(),
            },
            FactKey::Systemd(SystemdKey::Linger(user)) => {
                if self.lingering.contains(user) {
                    "yes\n".to_owned()
                } else {
                    "no\n".to_owned()
                }
            }
            FactKey::Packages(PackageKey::Dpkg(_)) => "dpkg\n".to_owned(),
            FactKey::Packages(PackageKey::Candidate(name)) => {
                let candidate = self.packages.get(name).map_or("(none)", String::as_str);
                format!("policy\n{name}:\n  Installed: (none)\n  Candidate: {candidate}\n  Version table:\n     {candidate} 500\n")
            }
            FactKey::Packages(PackageKey::Cache) => "cache\n1000\n1000\n".to_owned(),
            FactKey::Commands(CommandKey::Probe(command)) => format!("{}\n", self.probes.get(command).unwrap_or(&1)),
            other => panic!("the fake host has no model of {other}"),
        }
    }

    /// A `stat` line for `path`, or `missing`.
    fn stat(&self, path: &str) -> String {
        let (kind, owner, group, mode) = if let Some(file) = self.files.get(path) {
            ("regular file", &file.owner, &file.group, file.mode)
        } else if let Some((owner, group, mode)) = self.dirs.get(path) {
            ("directory", owner, group, *mode)
        } else {
            return "missing".to_owned();
        };
        let uid = self.users.get(owner).map_or(0, |user| user.uid);
        format!("{kind}:{uid}:{owner}:{group}:{mode:o}:{path}")
    }

    /// Runs a change command line: one command, or a sequence of them.
    fn apply_line(&mut self, line: &str, stdin: &[u8]) -> Output {
        let mut argv: Vec<String> = words(line).into_iter().map(|word| word.text).collect();
        // `sh -c BECOME sudo [-u USER] -- ARGV...`: the command as another user.
        let mut sudo = None;
        if argv.len() > 4 && argv[0] == "sh" && argv[1] == "-c" && argv[3] == "sudo" {
            let end = argv
                .iter()
                .position(|word| word == "--")
                .expect("sudo's --");
            sudo = Some(match argv[4..end].as_ref() {
                [flag, user] if flag == "-u" => user.clone(),
                _ => "root".to_owned(),
            });
            argv.drain(..=end);
        }
        // A sequence (its script first on stdin, then its commands' input) marks each
        // command's start with its nonce (see `sequence::split`).
        let (steps, nonce, stdin) =
            if let Some(length) = converge_modules::sequence::script_length(&argv) {
                let script = String::from_utf8_lossy(&stdin[..length]).into_owned();
                let nonce = script
                    .split("::converge:")
                    .nth(1)
                    .and_then(|rest| rest.split(':').next())
                    .map(str::to_owned);
                (sequence_steps(&script), nonce, &stdin[length..])
            } else {
                let length = (!stdin.is_empty()).then_some(stdin.len());
                (vec![(argv, length)], None, stdin)
            };
        let mut inputs = stdin;
        let mut output = Output::default();
        let mut commands = Vec::new();
        let mut read = None;
        for (index, (argv, takes_stdin)) in steps.into_iter().enumerate() {
            if let Some(nonce) = &nonce {
                let mark = format!("::converge:{nonce}:step:{index}::\n");
                output.stdout.extend_from_slice(mark.as_bytes());
                output.stderr.extend_from_slice(mark.as_bytes());
            }
            let input = match takes_stdin {
                Some(length) => {
                    let (input, rest) = inputs.split_at(length);
                    inputs = rest;
                    input
                }
                None => &[],
            };
            if argv.last().is_some_and(|name| name == "converge-facts") {
                if self.fails(&argv.join(" ")) {
                    output.status = 1;
                    break;
                }
                let (keys, answer) = self.answer(&String::from_utf8_lossy(input));
                output.stdout.extend_from_slice(&answer.stdout);
                read = Some(keys);
                continue;
            }
            let (status, stderr) = self.apply(&argv, input);
            let joined = argv.join(" ");
            for (pattern, stdout) in &self.printing {
                if joined.contains(pattern.as_str()) {
                    output.stdout.extend_from_slice(stdout.as_bytes());
                }
            }
            commands.push(argv);
            output.stderr.extend_from_slice(stderr.as_bytes());
            if status != 0 {
                output.status = status;
                break;
            }
        }
        self.sent.push(Sent::Apply {
            commands,
            sudo,
            read,
        });
        output
    }

    /// Whether a command (its argv words joined by spaces) is scripted to fail.
    fn fails(&self, joined: &str) -> bool {
        self.failing
            .iter()
            .any(|pattern| joined.contains(pattern.as_str()))
    }

    /// Carries out one change command; returns its status and stderr.
    fn apply(&mut self, argv: &[String], stdin: &[u8]) -> (i32, String) {
        let joined = argv.join(" ");
        if self.fails(&joined) {
            return (1, format!("scripted failure of `{joined}`\n"));
        }
        if self.ignoring.iter().any(|pattern| joined.contains(pattern)) {
            return (0, String::new());
        }
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["useradd", .., "--", name] => {
                let uid = 1000 + u32::try_from(self.users.len()).unwrap_or(0);
                let home = option(&words, "--home-dir")
                    .unwrap_or(&format!("/home/{name}"))
                    .to_owned();
                self.dirs.insert(
                    home.clone(),
                    ((*name).to_owned(), (*name).to_owned(), 0o700),
                );
                self.groups.insert((*name).to_owned(), uid);
                self.users.insert(
                    (*name).to_owned(),
                    User {
                        uid,
                        home,
                        shell: option(&words, "--shell").unwrap_or("/bin/sh").to_owned(),
                        groups: option(&words, "--groups")
                            .map(|groups| groups.split(',').map(str::to_owned).collect())
                            .unwrap_or_default(),
                    },
                );
            }
            ["groupadd", .., "--", name] => {
                let gid = 2000 + u32::try_from(self.groups.len()).unwrap_or(0);
                self.groups.insert((*name).to_owned(), gid);
            }
            ["systemctl", verb, .., "--", name] => self.unit_action(verb, name),
            ["sh", "-c", script, "converge", _user, verb, name, ..]
                if script.contains("settled") =>
            {
                self.unit_action(verb, name);
            }
            ["loginctl", "disable-linger", "--", user] => {
                self.lingering.remove(*user);
            }
            ["sh", "-c", script, "converge", user] if script.contains("enable-linger") => {
                self.lingering.insert((*user).to_owned());
            }
            ["sh", "-c", _, "converge", ..] => self.apply_path_change(argv, stdin),
            _ => {}
        }
        (0, String::new())
    }

    fn unit_action(&mut self, verb: &str, name: &str) {
        let unit = self.units.entry(name.to_owned()).or_insert(Unit {
            active: false,
            enabled: false,
        });
        match verb {
            "start" | "restart" | "reload" | "reload-or-restart" => unit.active = true,
            "stop" => unit.active = false,
            "enable" => unit.enabled = true,
            "disable" => unit.enabled = false,
            _ => {}
        }
    }

    /// A write, attribute change, new directory or removal, recognised by rebuilding
    /// the change that renders to exactly this command.
    fn apply_path_change(&mut self, argv: &[String], stdin: &[u8]) {
        let args = &argv[4..];
        let some = |text: &String| (!text.is_empty()).then(|| text.clone());
        let mode = |text: &String| u32::from_str_radix(text, 8).ok();
        let candidate = match args {
            [dir, name, owner, group, file_mode, _validator, _length] => {
                Change::Paths(PathChange::WriteFile(FileWrite {
                    path: join(dir, name),
                    content: stdin.to_vec(),
                    before: None,
                    owner: some(owner),
                    group: some(group),
                    mode: mode(file_mode).unwrap_or(0o644),
                    validator: None,
                    secret: false,
                }))
            }
            [dir, name, owner, group, attr_mode] => Change::Paths(PathChange::SetAttributes {
                path: join(dir, name),
                attributes: Attributes {
                    owner: some(owner),
                    group: some(group),
                    mode: mode(attr_mode),
                },
            }),
            [path, owner, group, dir_mode] => Change::Paths(PathChange::CreateDirectory {
                path: path.clone(),
                attributes: Attributes {
                    owner: some(owner),
                    group: some(group),
                    mode: mode(dir_mode),
                },
            }),
            [dir, name, recursive] => Change::Paths(PathChange::Remove {
                path: join(dir, name),
                kind: if recursive.is_empty() {
                    PathKind::File
                } else {
                    PathKind::Directory
                },
            }),
            _ => return,
        };
        if candidate.command().argv != argv {
            return;
        }
        match candidate {
            Change::Paths(PathChange::WriteFile(write)) => {
                let old = self.files.get(&write.path);
                let file = File {
                    content: write.content,
                    owner: write
                        .owner
                        .or_else(|| old.map(|old| old.owner.clone()))
                        .unwrap_or_else(|| "root".to_owned()),
                    group: write
                        .group
                        .or_else(|| old.map(|old| old.group.clone()))
                        .unwrap_or_else(|| "root".to_owned()),
                    mode: write.mode,
                };
                self.files.insert(write.path, file);
            }
            Change::Paths(PathChange::SetAttributes { path, attributes }) => {
                if let Some(file) = self.files.get_mut(&path) {
                    set(&mut file.owner, &mut file.group, &mut file.mode, attributes);
                } else if let Some((owner, group, mode)) = self.dirs.get_mut(&path) {
                    set(owner, group, mode, attributes);
                }
            }
            Change::Paths(PathChange::CreateDirectory { path, attributes }) => {
                let mut dir = ("root".to_owned(), "root".to_owned(), 0o755);
                set(&mut dir.0, &mut dir.1, &mut dir.2, attributes);
                self.dirs.insert(path, dir);
            }
            Change::Paths(PathChange::Remove { path, .. }) => {
                self.files.remove(&path);
                self.dirs.remove(&path);
            }
            _ => {}
        }
    }
}

fn set(owner: &mut String, group: &mut String, mode: &mut u32, attributes: Attributes) {
    if let Some(new) = attributes.owner {
        *owner = new;
    }
    if let Some(new) = attributes.group {
        *group = new;
    }
    if let Some(new) = attributes.mode {
        *mode = new;
    }
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// The value after `flag` in an argv.
fn option<'a>(words: &[&'a str], flag: &str) -> Option<&'a str> {
    let at = words.iter().position(|word| *word == flag)?;
    words.get(at + 1).copied()
}

/// Which fact a section of a batch script reads: the key whose probe is exactly the
/// section, among keys built from the words it contains.
fn fact_key(section: &str) -> FactKey {
    let words: Vec<String> = words(section).into_iter().map(|word| word.text).collect();
    if section.starts_with("converge_path ") {
        return FactKey::Paths(PathKey::Path(words.last().cloned().unwrap_or_default()));
    }
    let probe = section
        .strip_prefix("( ")
        .and_then(|rest| rest.strip_suffix(" )"))
        .unwrap_or_else(|| panic!("not a fact section: {section}"));
    let mut candidates = vec![
        FactKey::System,
        FactKey::Machine,
        FactKey::Packages(PackageKey::Cache),
    ];
    for word in &words {
        candidates.extend([
            FactKey::Packages(PackageKey::Dpkg(word.clone())),
            FactKey::Packages(PackageKey::Candidate(word.clone())),
            FactKey::Paths(PathKey::Path(word.clone())),
            FactKey::Accounts(AccountKey::User(word.clone())),
            FactKey::Accounts(AccountKey::Group(word.clone())),
            FactKey::Systemd(SystemdKey::Linger(word.clone())),
            FactKey::Commands(CommandKey::Probe(word.clone())),
            FactKey::Systemd(SystemdKey::Unit(UnitRef {
                manager: Manager::System,
                name: word.clone(),
            })),
        ]);
        for other in &words {
            if let Some(name) = other.strip_prefix("./") {
                candidates.push(FactKey::Paths(PathKey::Content(join(word, name))));
            }
        }
    }
    candidates
        .into_iter()
        .find(|key| key.probe() == probe)
        .unwrap_or_else(|| panic!("the fake host cannot tell which fact this reads: {probe}"))
}

/// The commands of a [`converge_modules::sequence::sequence`] script, each with how many
/// bytes of the sequence's input it reads.
fn sequence_steps(script: &str) -> Vec<(Vec<String>, Option<usize>)> {
    let mut steps = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut input: Option<usize> = None;
    let mut in_marker = false;
    let mut words = words(script).into_iter();
    while let Some(word) = words.next() {
        match (word.quoted, word.text.as_str()) {
            (false, "\n") => in_marker = false,
            _ if in_marker => {}
            (false, "printf") if current.is_empty() => in_marker = true,
            (false, "head") if current.is_empty() && input.is_none() => {
                let _flag = words.next();
                input = words.next().and_then(|length| length.text.parse().ok());
                let _pipe = words.next();
            }
            (false, "</dev/null") => {
                steps.push((std::mem::take(&mut current), None));
                in_marker = true;
            }
            (false, ";") if input.is_some() => {
                steps.push((std::mem::take(&mut current), input.take()));
                in_marker = true;
            }
            _ => current.push(word.text),
        }
    }
    steps
}

/// One word of a command line as the shell splits it (enough of the shell for what
/// `shell::quote` writes: plain words, single quotes, `'\''`).
struct Word {
    text: String,
    /// Some part of it was quoted: it can never be an operator.
    quoted: bool,
}

/// Splits `line` into words; `;`, newlines and `"$(){}` end a word, and a newline or
/// `;` is a word of its own.
fn words(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut word: Option<Word> = None;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => {
                let word = word.get_or_insert_with(Word::quoted);
                for inner in chars.by_ref() {
                    if inner == '\'' {
                        break;
                    }
                    word.text.push(inner);
                }
            }
            '\\' => word
                .get_or_insert_with(Word::quoted)
                .text
                .extend(chars.next()),
            '\n' | ';' => {
                words.extend(word.take());
                words.push(Word {
                    text: ch.to_string(),
                    quoted: false,
                });
            }
            ' ' | '\t' | '"' | '(' | ')' | '$' | '{' | '}' => words.extend(word.take()),
            _ => word
                .get_or_insert_with(|| Word {
                    text: String::new(),
                    quoted: false,
                })
                .text
                .push(ch),
        }
    }
    words.extend(word);
    words
}

impl Word {
    fn quoted() -> Self {
        Word {
            text: String::new(),
            quoted: true,
        }
    }
}
