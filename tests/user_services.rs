//! User services and lingering on real hosts: `playbooks/sidekiq-user.yml` and
//! `playbooks/capture.yml` converge with nobody logged in, their services outlive
//! every session and come back after a reboot only when lingering is on, drift of the
//! linger flag, the unit's state and its file is found by `--check` and repaired,
//! check mode predicts a fresh host exactly, the "lingering is off" warning appears
//! exactly when it should, and all of it works on hosts with and without a user D-Bus,
//! as root or through sudo.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use fleet::{Fleet, TestHost};
use serde_json::Value;
use support::{assert_check_foresaw, changes_on, converge_json, ssh_as, tasks_on, text};

const SIDEKIQ_USER: &str = "playbooks/sidekiq-user.yml";
const CAPTURE: &str = "playbooks/capture.yml";
const UNIT_PATH: &str = "/home/deploy/.config/systemd/user/sidekiq.service";
/// How long the Sidekiq user service must keep running with nobody logged in.
const NO_SESSION_PERIOD: Duration = Duration::from_secs(60);
/// How long a host may take to bring up a user manager (after boot, or after a
/// session ends, to stop it): a bound for polling, never an expectation, and generous
/// because a loaded test machine can be slow.
const SETTLE: Duration = Duration::from_secs(90);

/// What converge does to a fresh host with `playbooks/sidekiq-user.yml`, in order.
const FRESH_HOST_CHANGES: &[&str] = &[
    "redis and sidekiq, redis configured before it first starts: refresh apt's package lists",
    "redis and sidekiq, redis configured before it first starts: install packages redis-server, ruby-sidekiq (services not started)",
    "redis listens on its socket only: update /etc/redis/redis.conf",
    "redis socket: update /etc/redis/redis.conf",
    "redis socket for the redis group only: update /etc/redis/redis.conf",
    "redis memory limit: update /etc/redis/redis.conf",
    "redis file limit: create directory /etc/systemd/system/redis-server.service.d",
    "redis file limit: create /etc/systemd/system/redis-server.service.d/limits.conf",
    "redis file limit: daemon-reload (system manager)",
    "redis running: start redis-server.service",
    "deploy user: create user deploy",
    "deploy may use redis's socket: set groups [redis] for user deploy",
    "application directory: create directory /opt/app",
    "releases: create directory /opt/app/releases",
    "release: create directory /opt/app/releases/1",
    "release: create /opt/app/releases/1/worker.rb",
    "current release: link /opt/app/current -> releases/1",
    "shared files: create directory /opt/app/shared",
    "sidekiq environment: create /opt/app/shared/sidekiq.env",
    "keep deploy's user manager running without a login: enable lingering for deploy",
    "sidekiq user unit: create directory /home/deploy/.config",
    "sidekiq user unit: create directory /home/deploy/.config/systemd",
    "sidekiq user unit: create directory /home/deploy/.config/systemd/user",
    "sidekiq user unit: create /home/deploy/.config/systemd/user/sidekiq.service",
    "sidekiq user unit: enable sidekiq.service (user deploy)",
    "sidekiq user unit: daemon-reload (deploy's user manager)",
    "sidekiq user unit: start sidekiq.service (user deploy)",
    "restart redis: restart redis-server.service",
    "restart sidekiq: restart sidekiq.service (user deploy)",
];

const NO_LINGER_WARNING: &str = "lingering is off for deploy: sidekiq.service will be stopped when deploy's last session ends and will not start at boot; add a linger task for deploy";

/// A user unit for deploy, and no linger task.
const WITHOUT_LINGER: &str = r"- hosts: app
  become: true
  tasks:
    - name: deploy user
      user: { name: deploy, shell: /bin/bash }
    - name: sidekiq user unit
      systemd_unit:
        name: sidekiq.service
        scope: user
        user: deploy
        content: |
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=default.target
        enabled: true
        state: started
";

/// The same, with the linger task after the unit task.
const LINGER_LATER: &str = r"- hosts: app
  become: true
  tasks:
    - name: deploy user
      user: { name: deploy, shell: /bin/bash }
    - name: sidekiq user unit
      systemd_unit:
        name: sidekiq.service
        scope: user
        user: deploy
        content: |
          [Service]
          ExecStart=/bin/sleep infinity
          [Install]
          WantedBy=default.target
        enabled: true
        state: started
    - name: keep deploy's manager running
      linger: { user: deploy }
";

/// An inventory with `hosts` in groups `app` and `pis`, each with its extra host
/// variables (e.g. `user: ops`), logging in as root unless told otherwise.
fn inventory(fleet: &Fleet, name: &str, hosts: &[(&TestHost, &str)]) -> PathBuf {
    let key = fleet.home().join(".ssh/id_ed25519");
    let mut yaml = String::from(
        "all:\n  vars:\n    user: root\n    sidekiq_exec: /bin/sleep infinity\n    capture_cmd: touch\n",
    );
    let _ = writeln!(yaml, "    identity_file: {}", key.display());
    yaml.push_str("  children:\n");
    for group in ["app", "pis"] {
        let _ = writeln!(yaml, "    {group}:\n      hosts:");
        for (host, extra) in hosts {
            let _ = writeln!(
                yaml,
                "        {}: {{ host: 127.0.0.1, port: {}{}{extra} }}",
                host.name,
                host.port,
                if extra.is_empty() { "" } else { ", " }
            );
        }
    }
    let path = fleet.dir().join(format!("{name}.yml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Writes a playbook into the fleet's scratch directory.
fn playbook(fleet: &Fleet, name: &str, yaml: &str) -> PathBuf {
    let path = fleet.dir().join(name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `systemctl --user ARGS` in `user`'s manager, the way converge reaches it: as the
/// user, through the manager's private socket. `runuser` opens no login session.
fn user_systemctl(user: &str, args: &str) -> String {
    format!(
        "runuser -u {user} -- env XDG_RUNTIME_DIR=/run/user/$(id -u {user}) systemctl --user {args}"
    )
}

/// The login sessions of `user` on `host`, as `loginctl list-sessions` shows them,
/// without the session systemd 256 and later lists for the user's own service manager
/// (class `manager`), which is no login.
fn sessions_of(host: &TestHost, user: &str) -> Vec<String> {
    host.ssh_ok(&format!("{HUMAN_SESSIONS} {user}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A shell command printing the `loginctl list-sessions` lines of the user named by
/// the argument that follows it, without sessions of class `manager`.
const HUMAN_SESSIONS: &str = r#"sh -c 'loginctl list-sessions --no-legend | while read -r id uid name rest; do
  [ "$name" = "$1" ] || continue
  case $(loginctl show-session "$id" -p Class --value) in manager*) ;; *) echo "$id $uid $name $rest" ;; esac
done' sessions"#;

/// Runs `cmd` on `host` until it succeeds or `timeout` passes; returns whether it
/// succeeded.
fn eventually(host: &TestHost, cmd: &str, timeout: Duration) -> bool {
    let tries = timeout.as_millis() / 250;
    host.ssh(&format!(
        "i=0; while [ $i -lt {tries} ]; do if {cmd}; then exit 0; fi; sleep 0.25; i=$((i+1)); done; exit 1"
    ))
    .status
    .success()
}

fn user_service_active(host: &TestHost, user: &str, unit: &str) -> bool {
    host.ssh(&format!(
        "{} >/dev/null 2>&1",
        user_systemctl(user, &format!("is-active --quiet {unit}"))
    ))
    .status
    .success()
}

/// Whether `user`'s service manager is running on `host`.
fn manager_running(host: &TestHost, user: &str) -> bool {
    host.ssh(&format!(
        "systemctl is-active --quiet user@$(id -u {user}).service"
    ))
    .status
    .success()
}

/// Lets `user` (who must exist) log in over SSH with the fleet's key.
fn authorize(host: &TestHost, user: &str) {
    host.ssh_ok(&format!(
        "home=$(getent passwd {user} | cut -d: -f6) && install -d -m 0700 -o {user} -g {user} \"$home/.ssh\" && install -m 0600 -o {user} -g {user} /root/.ssh/authorized_keys \"$home/.ssh/authorized_keys\""
    ));
}

/// An SSH login session held open until dropped. The remote command waits for the
/// end of its input, so closing the client's stdin ends the session on the host, as
/// a person logging out does (a `sleep` would outlive the connection).
struct Session(Child);

impl Session {
    fn open(fleet: &Fleet, host: &TestHost, user: &str) -> Session {
        let log = fleet
            .dir()
            .join(format!("session-{}-{user}.log", host.name));
        let child = ssh_as(fleet, host, user, "read -r line")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start ssh");
        let mut session = Session(child);
        let opened = eventually(
            host,
            &format!("{HUMAN_SESSIONS} {user} | grep -q ."),
            SETTLE,
        );
        assert!(
            opened,
            "no session of {user} appeared on {} (ssh: {:?}):\n{}",
            host.name,
            session.0.try_wait(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        session
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Each task's warnings for `host`, as "task: warning".
fn warnings_on(report: &Value, host: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for task in tasks_on(report, host) {
        for warning in task["warnings"].as_array().into_iter().flatten() {
            warnings.push(format!(
                "{}: {}",
                task["task"].as_str().unwrap(),
                warning.as_str().unwrap()
            ));
        }
    }
    warnings
}

/// `--check`, then apply: both must list the same changes on every host (but for tasks
/// pending on a package, see [`assert_check_foresaw`]), the check
/// must exit 2 when it found any, and a check and an apply after them must find
/// nothing. Returns the apply's report.
fn assert_check_is_exact(fleet: &Fleet, hosts: &[&TestHost], args: &[&str]) -> Value {
    let (check_code, check) = converge_json(fleet, &[args, &["--check"]].concat());
    let (apply_code, apply) = converge_json(fleet, args);
    assert_eq!(apply_code, 0, "{apply:#}");
    let mut predicted = false;
    for host in hosts {
        predicted |= assert_check_foresaw(&check, &apply, &host.name);
    }
    assert_eq!(check_code, if predicted { 2 } else { 0 }, "{check:#}");
    assert_converged(fleet, hosts, args);
    apply
}

/// A check and an apply both find nothing to do.
fn assert_converged(fleet: &Fleet, hosts: &[&TestHost], args: &[&str]) {
    let (code, check) = converge_json(fleet, &[args, &["--check"]].concat());
    assert_eq!(code, 0, "drift left: {check:#}");
    let (code, again) = converge_json(fleet, args);
    assert_eq!(code, 0, "{again:#}");
    for host in hosts {
        assert_eq!(changes_on(&check, &host.name), Vec::<String>::new());
        assert_eq!(changes_on(&again, &host.name), Vec::<String>::new());
    }
    assert_eq!(again["summary"]["changed"], 0, "{again:#}");
}

/// `--check` finds exactly `expected` on `host` (exit 2) and changes nothing that
/// `state` (a command printing the relevant state) can see; the next run does exactly
/// that, and a run after it does nothing.
fn assert_drift_repaired(
    fleet: &Fleet,
    host: &TestHost,
    inventory: &str,
    expected: &[&str],
    state: &str,
) {
    let before = host.ssh_ok(state);
    let (code, check) = converge_json(fleet, &[SIDEKIQ_USER, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{check:#}");
    assert_eq!(changes_on(&check, &host.name), expected);
    assert_eq!(host.ssh_ok(state), before, "--check changed the host");
    let (code, apply) = converge_json(fleet, &[SIDEKIQ_USER, "-i", inventory]);
    assert_eq!(code, 0, "{apply:#}");
    assert_eq!(changes_on(&apply, &host.name), expected);
    assert_converged(fleet, &[host], &[SIDEKIQ_USER, "-i", inventory]);
    assert!(
        user_service_active(host, "deploy", "sidekiq"),
        "{}",
        host.name
    );
}

fn main_pid(host: &TestHost) -> String {
    let pid = host.ssh_ok(&user_systemctl("deploy", "show -p MainPID --value sidekiq"));
    assert_ne!(pid, "0", "sidekiq is not running on {}", host.name);
    pid
}

#[test]
fn sidekiq_user_service_outlives_every_session_and_drift_is_repaired() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [quiet, drifted] = fleet.hosts() else {
        panic!()
    };
    let inventory = inventory(&fleet, "inventory", &[(quiet, ""), (drifted, "")]);
    let inventory = inventory.to_str().unwrap();
    let args = [SIDEKIQ_USER, "-i", inventory];

    // Fresh hosts, nobody logged in: check mode predicts the whole chain exactly.
    let apply = assert_check_is_exact(&fleet, &[quiet, drifted], &args);
    let converged_at = Instant::now();
    for host in [quiet, drifted] {
        assert_eq!(changes_on(&apply, &host.name), FRESH_HOST_CHANGES);
        assert_eq!(warnings_on(&apply, &host.name), Vec::<String>::new());
        assert!(
            user_service_active(host, "deploy", "sidekiq"),
            "{}",
            host.name
        );
        assert_eq!(sessions_of(host, "deploy"), Vec::<String>::new());
        assert_eq!(
            host.ssh_ok(&user_systemctl("deploy", "is-enabled sidekiq")),
            "enabled"
        );
        assert_eq!(
            host.ssh_ok(&format!(
                "stat -c '%U:%G %a' /home/deploy/.config /home/deploy/.config/systemd /home/deploy/.config/systemd/user {UNIT_PATH}"
            )),
            "deploy:deploy 755\ndeploy:deploy 755\ndeploy:deploy 755\ndeploy:deploy 644"
        );
    }
    let pid = main_pid(quiet);

    // deploy logs in, manages its own service as a deploy tool would, and logs out:
    // the classic way a user service dies.
    authorize(quiet, "deploy");
    let login = ssh_as(
        &fleet,
        quiet,
        "deploy",
        &format!("systemctl --user is-active sidekiq; {HUMAN_SESSIONS} deploy"),
    )
    .output()
    .unwrap();
    let login_output = String::from_utf8_lossy(&login.stdout);
    assert!(
        login.status.success() && login_output.starts_with("active\n"),
        "{}",
        text(&login)
    );
    assert!(
        login_output
            .lines()
            .any(|line| line.split_whitespace().nth(2) == Some("deploy")),
        "deploy had no session of its own: {login_output}"
    );
    assert!(
        eventually(
            quiet,
            &format!("! {HUMAN_SESSIONS} deploy | grep -q ."),
            SETTLE
        ),
        "deploy's session did not end"
    );

    // Meanwhile, on the other host: drift of every kind, one at a time.
    drifted.ssh_ok("loginctl disable-linger deploy");
    // With lingering off and nobody logged in, logind stops deploy's manager, and
    // Sidekiq with it.
    assert!(
        eventually(
            drifted,
            "! systemctl is-active --quiet user@$(id -u deploy).service",
            SETTLE
        ),
        "deploy's manager outlived lingering"
    );
    assert!(!user_service_active(drifted, "deploy", "sidekiq"));
    assert_drift_repaired(
        &fleet,
        drifted,
        inventory,
        &["keep deploy's user manager running without a login: enable lingering for deploy"],
        "ls /var/lib/systemd/linger; systemctl is-active user@$(id -u deploy).service || true",
    );

    drifted.ssh_ok(&user_systemctl(
        "deploy",
        "disable --now sidekiq 2>/dev/null",
    ));
    assert_drift_repaired(
        &fleet,
        drifted,
        inventory,
        &[
            "sidekiq user unit: enable sidekiq.service (user deploy)",
            "sidekiq user unit: start sidekiq.service (user deploy)",
        ],
        &user_systemctl("deploy", "is-enabled sidekiq; true"),
    );

    drifted.ssh_ok(&user_systemctl("deploy", "stop sidekiq"));
    assert_drift_repaired(
        &fleet,
        drifted,
        inventory,
        &["sidekiq user unit: start sidekiq.service (user deploy)"],
        &user_systemctl("deploy", "is-active sidekiq; true"),
    );

    drifted.ssh_ok(&format!(
        "sed -i 's/RestartSec=1/RestartSec=30/' {UNIT_PATH}"
    ));
    let edited_pid = main_pid(drifted);
    let output = fleet.converge(&[&args[..], &["--check", "--diff"]].concat());
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let human = String::from_utf8_lossy(&output.stdout);
    assert!(
        human.contains("-RestartSec=30") && human.contains("+RestartSec=1"),
        "{human}"
    );
    assert_drift_repaired(
        &fleet,
        drifted,
        inventory,
        &[
            &format!("sidekiq user unit: update {UNIT_PATH}"),
            "sidekiq user unit: daemon-reload (deploy's user manager)",
            "sidekiq user unit: restart sidekiq.service (user deploy)",
        ],
        &format!(
            "sha256sum {UNIT_PATH}; {}",
            user_systemctl("deploy", "show -p NeedDaemonReload -p MainPID sidekiq")
        ),
    );
    assert!(drifted
        .ssh_ok(&format!("cat {UNIT_PATH}"))
        .contains("RestartSec=1\n"));
    assert_eq!(
        drifted.ssh_ok(&user_systemctl(
            "deploy",
            "show -p NeedDaemonReload --value sidekiq"
        )),
        "no"
    );
    assert_ne!(main_pid(drifted), edited_pid, "sidekiq was not restarted");

    // The first host was left alone: a minute after converging, with no session of
    // deploy's left, the very same Sidekiq process is still running.
    if let Some(rest) = NO_SESSION_PERIOD.checked_sub(converged_at.elapsed()) {
        thread::sleep(rest);
    }
    assert_eq!(sessions_of(quiet, "deploy"), Vec::<String>::new());
    assert!(user_service_active(quiet, "deploy", "sidekiq"));
    assert_eq!(main_pid(quiet), pid, "sidekiq was restarted");
    assert_eq!(
        quiet.ssh_ok("loginctl show-user deploy -p Linger --value"),
        "yes"
    );
    assert_eq!(sessions_of(quiet, "deploy"), Vec::<String>::new());
}

#[test]
fn a_reboot_brings_user_services_back_only_with_lingering() {
    let Some(fleet) = Fleet::boot_persistent(2) else {
        return;
    };
    let [lingering, not_lingering] = fleet.hosts() else {
        panic!()
    };
    let inventory = inventory(&fleet, "inventory", &[(lingering, ""), (not_lingering, "")]);
    let inventory = inventory.to_str().unwrap();
    for playbook in [SIDEKIQ_USER, CAPTURE] {
        let apply = assert_check_is_exact(
            &fleet,
            &[lingering, not_lingering],
            &[playbook, "-i", inventory],
        );
        assert_eq!(warnings_on(&apply, &lingering.name), Vec::<String>::new());
    }
    for host in [lingering, not_lingering] {
        assert!(
            user_service_active(host, "deploy", "sidekiq"),
            "{}",
            host.name
        );
        assert!(user_service_active(host, "pi", "capture"), "{}", host.name);
        assert!(
            eventually(host, "ls /home/pi/captures/*.jpg >/dev/null 2>&1", SETTLE),
            "the capture loop took no picture on {}",
            host.name
        );
        assert_eq!(
            host.ssh_ok("stat -c %U /home/pi/captures/*.jpg | sort -u"),
            "pi",
            "the capture loop did not take a picture as pi"
        );
    }
    // The only difference between the two hosts from here on.
    not_lingering.ssh_ok("loginctl disable-linger deploy && loginctl disable-linger pi");

    for host in [lingering, not_lingering] {
        // Pictures newer than this were taken after the reboot.
        host.ssh_ok("touch /var/tmp/powered-off");
        host.power_off();
    }
    for host in [lingering, not_lingering] {
        host.power_on();
    }

    // Nobody logs in: the services are back where lingering is on...
    for (user, unit) in [("deploy", "sidekiq"), ("pi", "capture")] {
        assert!(
            eventually(
                lingering,
                &user_systemctl(user, &format!("is-active --quiet {unit} 2>/dev/null")),
                SETTLE
            ),
            "{unit} did not come back after the reboot:\n{}",
            lingering.ssh_ok(&format!(
                "journalctl -b --no-pager | tail -50; loginctl list-users; {}",
                user_systemctl(user, &format!("status {unit} || true"))
            ))
        );
        assert_eq!(sessions_of(lingering, user), Vec::<String>::new());
    }
    assert!(
        eventually(
            lingering,
            "find /home/pi/captures -name '*.jpg' -newer /var/tmp/powered-off | grep -q .",
            SETTLE
        ),
        "no picture was taken after the reboot"
    );
    // ...and not where it is off, although they are enabled just the same.
    for (user, unit) in [("deploy", "sidekiq"), ("pi", "capture")] {
        assert!(!manager_running(not_lingering, user), "{user}");
        assert!(!user_service_active(not_lingering, user, unit), "{unit}");
        assert_eq!(sessions_of(not_lingering, user), Vec::<String>::new());
        assert!(not_lingering
            .ssh_ok(&format!(
                "ls /home/{user}/.config/systemd/user/default.target.wants/"
            ))
            .contains(unit));
    }
    assert_eq!(
        not_lingering.ssh_ok("systemctl list-jobs --no-legend | wc -l"),
        "0",
        "the host is still booting"
    );

    // converge sees the difference, and repairs it.
    let (code, check) = converge_json(&fleet, &[SIDEKIQ_USER, "-i", inventory, "--check"]);
    assert_eq!(code, 2, "{check:#}");
    assert_eq!(changes_on(&check, &lingering.name), Vec::<String>::new());
    assert_eq!(
        changes_on(&check, &not_lingering.name),
        ["keep deploy's user manager running without a login: enable lingering for deploy"]
    );
    let (code, apply) = converge_json(&fleet, &[SIDEKIQ_USER, "-i", inventory]);
    assert_eq!(code, 0, "{apply:#}");
    assert_eq!(
        changes_on(&apply, &not_lingering.name),
        changes_on(&check, &not_lingering.name)
    );
    assert!(user_service_active(not_lingering, "deploy", "sidekiq"));
}

/// `dbus-user-session` in the version that goes with the `dbus` installed on `host`,
/// fetched once with `apt-get download` on this machine (after an `apt-get update` if
/// the package lists lack it) and cached under the target directory.
fn dbus_user_session_deb(host: &TestHost) -> PathBuf {
    let version = host.ssh_ok("dpkg-query -W -f '${Version}' dbus");
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || fleet::repo_root().join("target"),
        |dir| fleet::repo_root().join(dir),
    );
    let cache = target
        .join("converge-fleet/debs")
        .join(version.replace('/', "_"));
    std::fs::create_dir_all(&cache).unwrap();
    let cached = |dir: &Path| {
        std::fs::read_dir(dir).unwrap().find_map(|entry| {
            let path = entry.unwrap().path();
            let package = path
                .file_name()?
                .to_str()?
                .starts_with("dbus-user-session_");
            (package && path.extension().is_some_and(|ext| ext == "deb")).then_some(path)
        })
    };
    if let Some(deb) = cached(&cache) {
        return deb;
    }
    // Downloaded beside the cache and moved in whole, so a cut-off download is never
    // used.
    let scratch = tempfile::tempdir_in(&cache).unwrap();
    let download = || {
        Command::new("apt-get")
            .args(["download", &format!("dbus-user-session={version}")])
            .current_dir(scratch.path())
            .stdin(Stdio::null())
            .output()
            .expect("run apt-get")
    };
    let mut output = download();
    if !output.status.success() {
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .stdin(Stdio::null())
            .output();
        output = download();
    }
    if !output.status.success() {
        // Another release than this machine's: its package comes from Debian's pool.
        let url = format!(
            "http://deb.debian.org/debian/pool/main/d/dbus/dbus-user-session_{}_{}.deb",
            version.split_once(':').map_or(version.as_str(), |(_, v)| v),
            host.ssh_ok("dpkg --print-architecture"),
        );
        output = Command::new("curl")
            .args(["-fsSLO", &url])
            .current_dir(scratch.path())
            .stdin(Stdio::null())
            .output()
            .expect("run curl");
    }
    let downloaded = cached(scratch.path());
    let Some(downloaded) = downloaded.filter(|_| output.status.success()) else {
        panic!(
            "apt-get download dbus-user-session={version} failed (the test hosts have dbus {version}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let deb = cache.join(downloaded.file_name().unwrap());
    std::fs::rename(&downloaded, &deb).unwrap();
    deb
}

/// Copies a local file to `host` over SSH.
fn upload(fleet: &Fleet, host: &TestHost, local: &Path, remote: &str) {
    let status = ssh_as(fleet, host, "root", &format!("cat > {remote}"))
        .stdin(std::fs::File::open(local).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "copying {} failed", local.display());
}

#[test]
fn user_units_work_with_and_without_a_user_bus_as_root_and_through_sudo() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [plain, with_bus] = fleet.hosts() else {
        panic!()
    };
    let deb = dbus_user_session_deb(with_bus);
    upload(&fleet, with_bus, &deb, "/tmp/dbus-user-session.deb");
    with_bus.ssh_ok("dpkg -i /tmp/dbus-user-session.deb >/dev/null");
    // The second host is reached as a user with passwordless sudo, and become.
    with_bus.ssh_ok(
        "useradd -m -s /bin/bash ops && echo 'ops ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ops && chmod 0440 /etc/sudoers.d/ops",
    );
    authorize(with_bus, "ops");
    let inventory = inventory(&fleet, "inventory", &[(plain, ""), (with_bus, "user: ops")]);
    let inventory = inventory.to_str().unwrap();
    let args = [SIDEKIQ_USER, "-i", inventory];

    let apply = assert_check_is_exact(&fleet, &[plain, with_bus], &args);
    for host in [plain, with_bus] {
        assert_eq!(changes_on(&apply, &host.name), FRESH_HOST_CHANGES);
        assert!(
            user_service_active(host, "deploy", "sidekiq"),
            "{}",
            host.name
        );
    }

    // The hosts differ where it matters: only one has a user bus, which is what
    // `systemctl --user -M deploy@` needs. Before systemd 248 (Debian 11) `-M` cannot
    // reach a user's manager at all, bus or not: all the more reason for `runuser`.
    let over_bus = "systemctl --user -M deploy@ is-active sidekiq";
    let systemd: u32 = plain
        .ssh_ok("systemctl --version | head -n 1 | cut -d' ' -f2")
        .parse()
        .unwrap();
    if systemd >= 248 {
        assert_eq!(with_bus.ssh_ok(over_bus), "active");
    }
    for host in [with_bus, plain]
        .into_iter()
        .skip(usize::from(systemd >= 248))
    {
        let output = host.ssh(over_bus);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let expected = if systemd >= 248 {
            "Transport endpoint is not connected"
        } else {
            "Cannot access user instance remotely"
        };
        assert!(stderr.contains(expected), "{}: {stderr}", host.name);
    }

    // Drift on both is found and repaired the same way.
    for host in [plain, with_bus] {
        host.ssh_ok(&user_systemctl(
            "deploy",
            "disable --now sidekiq 2>/dev/null",
        ));
    }
    let apply = assert_check_is_exact(&fleet, &[plain, with_bus], &args);
    for host in [plain, with_bus] {
        assert_eq!(
            changes_on(&apply, &host.name),
            [
                "sidekiq user unit: enable sidekiq.service (user deploy)",
                "sidekiq user unit: start sidekiq.service (user deploy)",
            ]
        );
        assert!(
            user_service_active(host, "deploy", "sidekiq"),
            "{}",
            host.name
        );
    }
}

#[test]
fn lingering_warnings_and_errors_say_what_will_happen() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [logged_in, fresh] = fleet.hosts() else {
        panic!()
    };
    let first = inventory(&fleet, "first", &[(logged_in, "")]);
    let first = first.to_str().unwrap();
    let without = playbook(&fleet, "without-linger.yml", WITHOUT_LINGER);
    let without = without.to_str().unwrap();

    // deploy is logged in, so its manager runs, but lingering is off.
    logged_in.ssh_ok("useradd -m -s /bin/bash deploy");
    authorize(logged_in, "deploy");
    let session = Session::open(&fleet, logged_in, "deploy");
    assert!(eventually(
        logged_in,
        "test -S /run/user/$(id -u deploy)/systemd/private",
        SETTLE
    ));

    let output = fleet.converge(&[without, "-i", first, "--check"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let human = String::from_utf8_lossy(&output.stdout);
    assert!(
        human.contains(&format!("    warning: {NO_LINGER_WARNING}\n")),
        "{human}"
    );
    let (code, check) = converge_json(&fleet, &[without, "-i", first, "--check"]);
    assert_eq!(code, 2);
    let expected = [format!("sidekiq user unit: {NO_LINGER_WARNING}")];
    assert_eq!(warnings_on(&check, &logged_in.name), expected);
    let (code, apply) = converge_json(&fleet, &[without, "-i", first]);
    assert_eq!(code, 0, "{apply:#}");
    assert_eq!(warnings_on(&apply, &logged_in.name), expected);
    assert!(user_service_active(logged_in, "deploy", "sidekiq"));

    // What the warning says happens: deploy logs out, and Sidekiq is gone.
    drop(session);
    assert!(
        eventually(
            logged_in,
            "! systemctl is-active --quiet user@$(id -u deploy).service",
            SETTLE
        ),
        "deploy's manager kept running after the last session ended"
    );
    assert!(!user_service_active(logged_in, "deploy", "sidekiq"));

    // Now no manager can be reached at all: a clear error, not a systemctl one.
    let output = fleet.converge(&[without, "-i", first]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("deploy's user manager is not running (no login session, and lingering is off), so sidekiq.service cannot be managed; enable lingering for deploy with the linger module in an earlier task"),
        "{stdout}"
    );

    // With lingering turned on later in the same play: no warning, on this host (whose
    // manager is down, so the unit task turns lingering on first) and on a fresh one.
    let later = playbook(&fleet, "linger-later.yml", LINGER_LATER);
    let later = later.to_str().unwrap();
    let both = inventory(&fleet, "both", &[(logged_in, ""), (fresh, "")]);
    let both = both.to_str().unwrap();
    let (code, check) = converge_json(&fleet, &[later, "-i", both, "--check"]);
    assert_eq!(code, 2, "{check:#}");
    let apply = assert_check_is_exact(&fleet, &[logged_in, fresh], &[later, "-i", both]);
    for host in [logged_in, fresh] {
        assert_eq!(warnings_on(&check, &host.name), Vec::<String>::new());
        assert_eq!(warnings_on(&apply, &host.name), Vec::<String>::new());
        assert!(
            user_service_active(host, "deploy", "sidekiq"),
            "{}",
            host.name
        );
        assert_eq!(sessions_of(host, "deploy"), Vec::<String>::new());
    }
    assert_eq!(
        changes_on(&apply, &logged_in.name),
        ["sidekiq user unit: enable lingering for deploy"]
    );
    let output = fleet.converge(&[later, "-i", both]);
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("warning"),
        "{}",
        text(&output)
    );

    // A user unit for an account that does not exist says so.
    let ghost = playbook(
        &fleet,
        "ghost.yml",
        &WITHOUT_LINGER
            .replace(
                "    - name: deploy user\n      user: { name: deploy, shell: /bin/bash }\n",
                "",
            )
            .replace("user: deploy", "user: ghost"),
    );
    let output = fleet.converge(&[ghost.to_str().unwrap(), "-i", both]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("user ghost does not exist (a user-scope unit needs its user: create it in an earlier task)"),
        "{stdout}"
    );
}
