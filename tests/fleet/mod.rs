//! Disposable Debian hosts for integration tests.
//!
//! Every host is a `systemd-nspawn` container booting real systemd from a shared
//! base image (built once by `scripts/base-image.sh`) with a throwaway tmpfs layer
//! on top (`--volatile=overlay`). The containers share this machine's network, so
//! each host's sshd listens on its own port of `127.0.0.1`.
//!
//! Hosts from [`Fleet::boot_persistent`] have a disk of their own instead (a copy of
//! the base image in the fleet's scratch directory): they can be powered off and
//! booted again ([`TestHost::power_off`], [`TestHost::power_on`]) with everything
//! written to them kept, as a real machine's reboot keeps it.
//!
//! Include it from an integration test with `mod fleet;`.
//!
//! Environment:
//! - `CONVERGE_FLEET=required`: failing to provide hosts is a panic instead of a skip.
//! - `CONVERGE_FLEET=off`: never boot hosts; every [`Fleet::boot`] skips.
//! - `CONVERGE_RELEASE`: which Debian release (and sudo) the hosts run, as
//!   `scripts/base-image.sh` names them (default: `bookworm`).
//! - `CONVERGE_FLEET_IMAGE`: base image directory (default:
//!   `$CARGO_TARGET_DIR/converge-fleet/IMAGE` or `target/converge-fleet/IMAGE`, where
//!   IMAGE is `base` for bookworm and the release's name otherwise).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a host may take from launch until it accepts SSH logins.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a host may take to halt after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long a host being powered off may take to halt: its disk is kept, so it must
/// halt cleanly, which on a loaded machine can take longer than [`STOP_GRACE`].
const POWER_OFF_GRACE: Duration = Duration::from_secs(150);
/// Host ports are picked from this range, below Linux's default ephemeral range.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;
/// Attempts at booting a host whose port turned out to be taken by someone else.
const PORT_ATTEMPTS: usize = 3;
/// Minimum `fs.inotify.max_user_instances`; every booted systemd uses a handful.
const INOTIFY_INSTANCES: u64 = 8192;

/// The host's sudo, as a word of a shell command line run on the host: `sudo`, or
/// `sudo-rs` where only Debian's sudo-rs package is installed.
#[allow(dead_code)]
pub const SUDO: &str = "\"$(command -v sudo || command -v sudo-rs)\"";
/// The host's visudo, as [`SUDO`] is its sudo.
#[allow(dead_code)]
pub const VISUDO: &str = "\"$(command -v visudo || command -v visudo-rs)\"";

/// The repository root (the directory holding the top-level `Cargo.toml`).
#[allow(dead_code)]
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A set of running test hosts. Dropping it stops every host (also while
/// unwinding from a panic) and removes its scratch directory.
///
/// Hosts are started through `setpriv --pdeathsig TERM`, so they also halt when
/// the thread that booted them dies without dropping the fleet. Keep a fleet on
/// the thread that booted it.
#[allow(dead_code)]
pub struct Fleet {
    hosts: Vec<TestHost>,
    home: PathBuf,
    key: PathBuf,
    dir: tempfile::TempDir,
}

#[allow(dead_code)]
impl Fleet {
    /// Boots `n` fresh hosts, each with a throwaway overlay over the base image.
    ///
    /// Returns `None`, after printing a loud `SKIPPED: ...` line to stderr, when
    /// this machine cannot run the hosts (not Linux, not root, no
    /// `CAP_SYS_ADMIN`, the base image cannot be built, ...). With
    /// `CONVERGE_FLEET=required` each of those is a panic instead.
    ///
    /// # Panics
    ///
    /// When a host does not come up although the machine can run containers.
    pub fn boot(n: usize) -> Option<Fleet> {
        Fleet::boot_with(n, Disk::Volatile)
    }

    /// Boots `n` fresh hosts whose disks persist across [`TestHost::power_off`] and
    /// [`TestHost::power_on`]: each boots from its own copy of the base image (`cp -a
    /// --reflink=auto`, so a copy-on-write file system makes it nearly free), kept in
    /// the fleet's scratch directory until the fleet is dropped.
    ///
    /// Returns `None` and panics like [`Fleet::boot`].
    pub fn boot_persistent(n: usize) -> Option<Fleet> {
        Fleet::boot_with(n, Disk::Persistent)
    }

    fn boot_with(n: usize, disk: Disk) -> Option<Fleet> {
        let base = match base() {
            Ok(base) => base,
            Err(reason) => {
                assert!(
                    std::env::var("CONVERGE_FLEET").as_deref() != Ok("required"),
                    "CONVERGE_FLEET=required but no test hosts can run here: {reason}"
                );
                // Straight to the process's stderr: the test harness captures
                // `eprintln!` output of passing tests.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: test hosts unavailable: {reason} \
                     (set CONVERGE_FLEET=required to make this an error)"
                );
                return None;
            }
        };
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("converge-fleet-")
            .tempdir()
            .expect("create fleet scratch dir");
        let home = dir.path().join("home");
        let ssh_dir = home.join(".ssh");
        fs::create_dir_all(&ssh_dir).expect("create fleet HOME");
        set_mode(&home, 0o700);
        set_mode(&ssh_dir, 0o700);
        let key = ssh_dir.join("id_ed25519");
        fs::copy(&base.key, &key).expect("copy test key");
        set_mode(&key, 0o600);
        fs::copy(
            base.key.with_extension("key.pub"),
            ssh_dir.join("id_ed25519.pub"),
        )
        .expect("copy test public key");

        // Owns every host from here on, so a panic below still stops them.
        let mut fleet = Fleet {
            hosts: Vec::with_capacity(n),
            home,
            key,
            dir,
        };
        let mut pending: Vec<String> = (0..n).map(|_| next_host_name()).collect();
        for attempt in 1..=PORT_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            // Launch from this thread: the parent-death signal is tied to it.
            let first_new = fleet.hosts.len();
            for name in pending.drain(..) {
                let host = fleet.launch(base, name, disk);
                fleet.hosts.push(host);
            }
            let outcomes: Vec<Readiness> = thread::scope(|scope| {
                let waiters: Vec<_> = fleet.hosts[first_new..]
                    .iter()
                    .map(|host| scope.spawn(move || host.wait_ready()))
                    .collect();
                waiters
                    .into_iter()
                    .map(|w| w.join().expect("readiness thread"))
                    .collect()
            });
            let mut failures = Vec::new();
            let mut index = first_new;
            for outcome in outcomes {
                match outcome {
                    Readiness::Ready => index += 1,
                    Readiness::PortTaken => {
                        let host = fleet.hosts.remove(index);
                        host.kill();
                        pending.push(host.name.clone());
                        if attempt == PORT_ATTEMPTS {
                            failures.push(format!(
                                "{}: port {} kept being taken by another host",
                                host.name, host.port
                            ));
                        }
                    }
                    Readiness::Failed(why) => {
                        failures.push(why);
                        index += 1;
                    }
                }
            }
            assert!(
                failures.is_empty(),
                "test hosts did not boot:\n{}",
                failures.join("\n\n")
            );
        }
        fleet.write_known_hosts(base);
        eprintln!(
            "fleet: {n} host(s) ready in {:.1} s: {}",
            started.elapsed().as_secs_f64(),
            fleet
                .hosts
                .iter()
                .map(|h| format!("{}@127.0.0.1:{}", h.name, h.port))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Some(fleet)
    }

    /// The running hosts, in boot order.
    pub fn hosts(&self) -> &[TestHost] {
        &self.hosts
    }

    /// A scratch directory owned by this fleet, removed when it is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `HOME` directory whose `.ssh/` holds the test key (`id_ed25519`, mode
    /// 0600), `id_ed25519.pub`, and a `known_hosts` with every host's keys under
    /// `[127.0.0.1]:PORT`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Writes an Ansible-style YAML inventory listing every host in group
    /// `group` and returns its path.
    pub fn write_inventory(&self, group: &str) -> PathBuf {
        let mut yaml = String::from("all:\n  children:\n");
        let _ = writeln!(yaml, "    {}:\n      hosts:", yaml_string(group));
        for host in &self.hosts {
            let _ = writeln!(
                yaml,
                "        {}:\n          host: 127.0.0.1\n          port: {}\n          \
                 user: root\n          identity_file: {}",
                yaml_string(&host.name),
                host.port,
                yaml_string(&self.key.to_string_lossy()),
            );
        }
        let path = self
            .dir()
            .join(format!("inventory-{}.yml", sanitize(group)));
        fs::write(&path, yaml).expect("write inventory");
        path
    }

    /// Runs the `converge` binary with `args` through the tests' one builder
    /// ([`crate::support::Converge::on`]): `HOME` set to [`Fleet::home`], the repository
    /// root as working directory and no standard input.
    pub fn converge(&self, args: &[&str]) -> Output {
        crate::support::Converge::on(self).run(args)
    }

    /// Starts the container for a host called `name` on a fresh port.
    fn launch(&self, base: &Base, name: String, disk: Disk) -> TestHost {
        let port = free_port();
        let port_file = self.dir().join(format!("{name}.port.conf"));
        fs::write(
            &port_file,
            format!("Port {port}\nListenAddress 127.0.0.1\n"),
        )
        .expect("write port file");
        let root = match disk {
            Disk::Volatile => base.dir.clone(),
            Disk::Persistent => {
                let root = self.dir().join(format!("{name}.disk"));
                let out = Command::new("cp")
                    .args(["-a", "--reflink=auto", "--"])
                    .arg(&base.dir)
                    .arg(&root)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run cp");
                assert!(
                    out.status.success(),
                    "copying the base image for {name} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                root
            }
        };
        let host = TestHost {
            log: self.dir().join(format!("{name}.log")),
            name,
            port,
            key: self.key.clone(),
            root,
            disk,
            port_file,
            process: Mutex::new(None),
        };
        host.start();
        host
    }

    fn write_known_hosts(&self, base: &Base) {
        let mut known = String::new();
        for host in &self.hosts {
            for key in &base.host_keys {
                let _ = writeln!(known, "[127.0.0.1]:{} {key}", host.port);
            }
        }
        fs::write(self.home.join(".ssh/known_hosts"), known).expect("write known_hosts");
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for host in &self.hosts {
            host.request_stop();
        }
        let deadline = Instant::now() + STOP_GRACE;
        for host in &self.hosts {
            host.finish_stop(deadline);
        }
    }
}

/// One running test host, reachable as `root@127.0.0.1:PORT` with the fleet's key.
#[allow(dead_code)]
pub struct TestHost {
    /// Container name, also the host's hostname.
    pub name: String,
    /// Port of the host's sshd on `127.0.0.1`.
    pub port: u16,
    key: PathBuf,
    log: PathBuf,
    /// The directory the container boots from: the shared base image, or this
    /// host's own disk.
    root: PathBuf,
    disk: Disk,
    port_file: PathBuf,
    process: Mutex<Option<Child>>,
}

/// What a host's root file system is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    /// The shared base image under a tmpfs overlay that vanishes with the container.
    Volatile,
    /// The host's own copy of the base image, kept across power cycles.
    Persistent,
}

enum Readiness {
    Ready,
    PortTaken,
    Failed(String),
}

#[allow(dead_code)]
impl TestHost {
    /// Runs `cmd` as root on the host through the `ssh` client and returns its
    /// output. The host key is not checked.
    pub fn ssh(&self, cmd: &str) -> Output {
        self.ssh_command(cmd, Duration::from_secs(10))
            .output()
            .expect("run ssh")
    }

    /// Like [`TestHost::ssh`], but panics with the command's output unless it
    /// exits with status 0. Returns the trimmed stdout.
    pub fn ssh_ok(&self, cmd: &str) -> String {
        let out = self.ssh(cmd);
        assert!(
            out.status.success(),
            "`{cmd}` on {} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops this host's container now, e.g. to simulate a dead host. Its port
    /// refuses connections afterwards.
    pub fn kill(&self) {
        self.request_stop();
        self.finish_stop(Instant::now() + STOP_GRACE);
    }

    /// Shuts the host down cleanly, as `systemctl poweroff` does (systemd-nspawn
    /// turns SIGTERM into the container's poweroff request), and waits until it is
    /// off. A host from [`Fleet::boot_persistent`] keeps its disk for
    /// [`TestHost::power_on`].
    ///
    /// # Panics
    ///
    /// When the host does not halt by itself within the grace period (it is then
    /// killed, and its disk may not have been written out cleanly).
    pub fn power_off(&self) {
        self.request_stop();
        assert!(
            self.finish_stop(Instant::now() + POWER_OFF_GRACE),
            "{} did not power off within {} s\n{}",
            self.name,
            POWER_OFF_GRACE.as_secs(),
            self.log_tail()
        );
    }

    /// Boots a powered-off host from [`Fleet::boot_persistent`] again, from its kept
    /// disk and on the same port, and waits until it has finished booting and accepts
    /// SSH logins. Call it from the thread that booted the fleet (the container halts
    /// when the thread that started it ends).
    ///
    /// # Panics
    ///
    /// When the host is still running, has no disk of its own, or does not come up.
    pub fn power_on(&self) {
        assert!(
            self.disk == Disk::Persistent,
            "{} has no disk of its own to boot again (use Fleet::boot_persistent)",
            self.name
        );
        assert!(
            self.process().is_none(),
            "{} is still running: power it off first",
            self.name
        );
        self.start();
        match self.wait_ready() {
            Readiness::Ready => {}
            Readiness::PortTaken => panic!(
                "{}: port {} was taken by another host while it was off",
                self.name, self.port
            ),
            Readiness::Failed(why) => panic!("{} did not boot again:\n{why}", self.name),
        }
    }

    /// The container's console output so far.
    pub fn console_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the container from [`TestHost::root`]; the host must not be running.
    fn start(&self) {
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open host log");
        let log_err = log_file.try_clone().expect("clone host log handle");
        let mut command = if let Some(setpriv) = find_program("setpriv") {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "TERM", "systemd-nspawn"]);
            c
        } else {
            Command::new("systemd-nspawn")
        };
        command
            .arg("--directory")
            .arg(&self.root)
            .args(["--boot", "--register=no", "--keep-unit"]);
        if self.disk == Disk::Volatile {
            command.arg("--volatile=overlay");
        }
        command
            .arg("--console=read-only")
            .arg(format!("--machine={}", self.name))
            .arg(format!("--hostname={}", self.name))
            .arg(format!(
                "--bind-ro={}:/etc/ssh/sshd_config.d/port.conf",
                self.port_file.display()
            ))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        let child = command.spawn().expect("start systemd-nspawn");
        *self.process() = Some(child);
    }

    fn ssh_command(&self, cmd: &str, connect_timeout: Duration) -> Command {
        let mut command = Command::new("ssh");
        command
            .arg("-i")
            .arg(&self.key)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-F", "none"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "LogLevel=ERROR"])
            .arg("-o")
            .arg(format!(
                "ConnectTimeout={}",
                connect_timeout.as_secs().max(1)
            ))
            .arg("root@127.0.0.1")
            .arg(cmd)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        command
    }

    /// Waits until the host accepts SSH logins and has finished booting.
    fn wait_ready(&self) -> Readiness {
        let deadline = Instant::now() + READY_TIMEOUT;
        // Root may log in before the boot is over; other users only once
        // systemd-user-sessions has removed /run/nologin, which tests that log in as
        // deploy need. That service now and then fails at boot in these containers
        // (exit status 1, leaving /run/nologin behind): it is started again, and if it
        // fails again its journal says why.
        let probe = concat!(
            "timeout 30 systemctl is-system-running --wait >/dev/null; ",
            "if [ -e /run/nologin ] && systemctl is-failed --quiet systemd-user-sessions.service; then ",
            "systemctl restart systemd-user-sessions.service; fi; ",
            "if [ -e /run/nologin ]; then echo 'still booting: /run/nologin exists' >&2; ",
            "journalctl -b -u systemd-user-sessions.service -n 5 --no-pager >&2; exit 1; fi; ",
            "uname -n"
        );
        loop {
            if let Some(status) = self.exit_status() {
                return Readiness::Failed(format!(
                    "{}: systemd-nspawn exited early ({status})\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            let last_error = match self.ssh_command(probe, Duration::from_secs(2)).output() {
                Ok(out) if out.status.success() => {
                    let seen = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    if seen == self.name {
                        return Readiness::Ready;
                    }
                    // Another host answers on our port: its sshd got there first.
                    return Readiness::PortTaken;
                }
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                Err(err) => return Readiness::Failed(format!("cannot run ssh: {err}")),
            };
            if Instant::now() >= deadline {
                return Readiness::Failed(format!(
                    "{}: no SSH login on 127.0.0.1:{} within {} s (last ssh error: {last_error})\n{}",
                    self.name,
                    self.port,
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = self.console_log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(80)..];
        format!(
            "--- console of {} (last {} lines)\n{}",
            self.name,
            tail.len(),
            tail.join("\n")
        )
    }

    fn process(&self) -> MutexGuard<'_, Option<Child>> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        match self.process().as_mut() {
            Some(child) => child.try_wait().ok().flatten(),
            None => None,
        }
    }

    /// Asks `systemd-nspawn` to halt the container cleanly.
    fn request_stop(&self) {
        let mut guard = self.process();
        if let Some(child) = guard.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(child.id(), "TERM");
            }
        }
    }

    /// Waits until `deadline` for the container to halt, then kills it. Returns
    /// whether it halted by itself (or was not running).
    fn finish_stop(&self, deadline: Instant) -> bool {
        let mut guard = self.process();
        let Some(mut child) = guard.take() else {
            return true;
        };
        let mut halted = true;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    // Killing systemd-nspawn alone would leave the container
                    // running; its init is nspawn's child, and killing it ends
                    // every process of the container.
                    let container = children_of(child.id());
                    for &pid in &container {
                        signal(pid, "KILL");
                    }
                    let _ = child.kill();
                    let _ = child.wait();
                    wait_gone(&container, Duration::from_secs(10));
                    halted = false;
                    break;
                }
                Ok(None) => thread::sleep(Duration::from_millis(50)),
            }
        }
        // systemd-nspawn leaves this behind when /run is not a tmpfs.
        let _ = fs::remove_dir(Path::new("/run/systemd/nspawn/propagate").join(&self.name));
        halted
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What every host boots from.
struct Base {
    /// Root filesystem shared (read-only) by all hosts.
    dir: PathBuf,
    /// Private half of the key that root on every host accepts.
    key: PathBuf,
    /// The hosts' sshd public keys, as `TYPE BASE64`.
    host_keys: Vec<String>,
}

/// The base image, built on first use in this process.
fn base() -> Result<&'static Base, String> {
    static BASE: OnceLock<Result<Base, String>> = OnceLock::new();
    BASE.get_or_init(prepare_base)
        .as_ref()
        .map_err(Clone::clone)
}

fn prepare_base() -> Result<Base, String> {
    if std::env::var("CONVERGE_FLEET").as_deref() == Ok("off") {
        return Err("CONVERGE_FLEET=off".into());
    }
    if !cfg!(target_os = "linux") {
        return Err("systemd-nspawn hosts need Linux".into());
    }
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|err| format!("cannot read /proc/self/status: {err}"))?;
    if status_field(&status, "Uid:").and_then(|f| f.split_whitespace().nth(1)) != Some("0") {
        return Err("not running as root".into());
    }
    let cap_sys_admin = status_field(&status, "CapEff:")
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 21) != 0);
    if !cap_sys_admin {
        return Err("no CAP_SYS_ADMIN (an unprivileged container?)".into());
    }
    let script = repo_root().join("scripts/base-image.sh");
    let dir = image_dir();
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|err| format!("cannot run {}: {err}", script.display()))?;
    if !out.success() {
        return Err(format!(
            "{} {} failed ({out})",
            script.display(),
            dir.display()
        ));
    }
    for program in ["systemd-nspawn", "ssh"] {
        if find_program(program).is_none() {
            return Err(format!("`{program}` not found on PATH"));
        }
    }
    raise_inotify_limit();
    let mut host_keys = Vec::new();
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let path = dir.join(format!("etc/ssh/ssh_host_{kind}_key.pub"));
        if let Ok(text) = fs::read_to_string(&path) {
            let fields: Vec<&str> = text.split_whitespace().take(2).collect();
            if fields.len() == 2 {
                host_keys.push(fields.join(" "));
            }
        }
    }
    if host_keys.is_empty() {
        return Err(format!("no sshd host keys in {}", dir.display()));
    }
    let mut key = dir.clone().into_os_string();
    key.push(".key");
    Ok(Base {
        dir,
        key: PathBuf::from(key),
        host_keys,
    })
}

/// Where `scripts/base-image.sh` keeps the image of the release `CONVERGE_RELEASE`
/// names (see that script) by default.
fn image_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CONVERGE_FLEET_IMAGE") {
        return repo_root().join(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), |dir| repo_root().join(dir));
    let image = match std::env::var("CONVERGE_RELEASE") {
        Ok(release) if !release.is_empty() && release != "bookworm" => release,
        _ => "base".to_owned(),
    };
    target.join("converge-fleet").join(image)
}

fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| line.strip_prefix(name))
}

/// Each systemd in a container takes several inotify instances; the default
/// per-user limit of 128 runs out after a couple of dozen hosts.
fn raise_inotify_limit() {
    let path = "/proc/sys/fs/inotify/max_user_instances";
    let current = fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    if current.is_some_and(|value| value < INOTIFY_INSTANCES) {
        let _ = fs::write(path, INOTIFY_INSTANCES.to_string());
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Short host names, unique per process: `cv<pid>x<counter>`.
fn next_host_name() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cv{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A port on `127.0.0.1` that is free right now and not handed out before by
/// this process. Each process starts scanning at its own pseudo-random offset
/// so that parallel test processes rarely pick the same port.
fn free_port() -> u16 {
    static STATE: Mutex<Option<(u16, BTreeSet<u16>)>> = Mutex::new(None);
    let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    let span = PORT_RANGE.end - PORT_RANGE.start;
    let (cursor, used) = state.get_or_insert_with(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
        let offset = u16::try_from(seed % u32::from(span)).unwrap_or(0);
        (offset, BTreeSet::new())
    });
    for _ in 0..span {
        let port = PORT_RANGE.start + *cursor;
        *cursor = (*cursor + 1) % span;
        if used.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            used.insert(port);
            return port;
        }
    }
    panic!("no free port in {PORT_RANGE:?} on 127.0.0.1");
}

/// Sends `SIGNAL` (a name such as `TERM`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid ...; comm may contain anything.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|ppid| ppid.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// Waits up to `timeout` until none of `pids` is running any more (gone, or a
/// zombie: a dead pid namespace init only turns into one after every process
/// of its namespace has exited).
fn wait_gone(pids: &[u32], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let running = |pid: &u32| {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
    };
    while pids.iter().any(running) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}

fn set_mode(path: &Path, mode: u32) {
    if let Err(err) = fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        assert!(
            err.kind() == ErrorKind::NotFound,
            "chmod {}: {err}",
            path.display()
        );
    }
}

/// A double-quoted YAML scalar.
fn yaml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{:04x}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `text` reduced to characters that are safe in a file name.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
