//! converge in an operator's existing SSH setup, on real hosts: `~/.ssh/config` with
//! jump hosts (single and chained), keys of every type, certificates, encrypted keys
//! (through ssh-agent, on a terminal, and refused with the remedy without one).
//!
//! How the jump tests prove the path: the targets are named under `.invalid`, which never
//! resolves on this machine (RFC 6761), and only the jump host's `/etc/hosts` maps the
//! names. A connection that bypassed the jump host could not even find its target; a
//! control run without `ProxyJump` shows exactly that failure.

mod fleet;
mod support;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fleet::{Fleet, TestHost};
use support::{converge_json, stat, tasks_on, text, Converge};

/// A playbook that sends a large file through the connection and runs a silent command,
/// so a relay that lost data or spun while waiting would show.
const PLAYBOOK: &str = "\
- hosts: all
  tasks:
    - name: big file
      file: { path: /root/big.txt, src: big.txt, mode: \"0600\" }
    - name: quiet wait
      command: { cmd: \"sleep 3; hostname > /root/reached\", creates: /root/reached }
";

/// Writes the test playbook and its 2 MiB source file into the fleet's directory.
fn write_playbook(fleet: &Fleet) -> PathBuf {
    let mut big = String::with_capacity(2 << 20);
    let mut line = 0u64;
    while big.len() < 2 << 20 {
        let _ = writeln!(
            big,
            "line {line} of a file that crosses the jump hosts intact"
        );
        line += 1;
    }
    fs::write(fleet.dir().join("big.txt"), &big).unwrap();
    let path = fleet.dir().join("site.yml");
    fs::write(&path, PLAYBOOK).unwrap();
    path
}

/// Records every host key that `known_hosts` holds for `host` under `name` as well.
fn know_as(fleet: &Fleet, host: &TestHost, name: &str) {
    know_as_in(fleet, host, name, &fleet.home().join(".ssh/known_hosts"));
}

/// Like [`know_as`], but appends the lines to the file `into`.
fn know_as_in(fleet: &Fleet, host: &TestHost, name: &str, into: &Path) {
    let known = fs::read_to_string(fleet.home().join(".ssh/known_hosts")).unwrap();
    let prefix = format!("[127.0.0.1]:{} ", host.port);
    let mut extra = fs::read_to_string(into).unwrap_or_default();
    let before = extra.len();
    for line in known.lines().filter(|line| line.starts_with(&prefix)) {
        let _ = writeln!(extra, "[{name}]:{} {}", host.port, &line[prefix.len()..]);
    }
    assert!(
        extra.len() > before,
        "no known_hosts line for {}",
        host.name
    );
    fs::write(into, extra).unwrap();
}

/// Maps `names` to 127.0.0.1 in `host`'s own `/etc/hosts`.
fn resolve_on(host: &TestHost, names: &[&str]) {
    host.ssh_ok(&format!(
        "printf '127.0.0.1 {}\\n' >> /etc/hosts",
        names.join(" ")
    ));
}

/// Runs converge like `Fleet::converge`, through bash, and returns its output and the
/// CPU seconds (user + system) it used.
fn converge_timed(fleet: &Fleet, args: &[&str]) -> (Output, f64) {
    let output = Converge::on(fleet)
        .through(
            "bash",
            &["-c", "\"$@\"; status=$?; times >&2; exit $status", "bash"],
        )
        .run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // `times` prints the shell's own times, then its children's: `0m1.234s 0m0.056s`.
    let children = stderr.lines().last().unwrap_or_default();
    let seconds: f64 = children
        .split_whitespace()
        .map(|field| {
            let (minutes, rest) = field.split_once('m').unwrap();
            minutes.parse::<f64>().unwrap() * 60.0
                + rest.trim_end_matches('s').parse::<f64>().unwrap()
        })
        .sum();
    (output, seconds)
}

fn json(output: &Output) -> serde_json::Value {
    support::report_of(output)
}

#[test]
fn proxy_jump_reaches_hosts_only_the_jump_host_can_resolve() {
    let Some(fleet) = Fleet::boot(3) else { return };
    let [jump, app1, app2] = fleet.hosts() else {
        unreachable!()
    };
    let names = ["app1.fleet.invalid", "app2.fleet.invalid"];
    for name in names {
        assert!(
            (name, 22).to_socket_addrs().is_err(),
            "{name} resolves on this machine, so the test would prove nothing"
        );
    }
    resolve_on(jump, &names);
    know_as(&fleet, app1, names[0]);
    know_as(&fleet, app2, names[1]);
    let playbook = write_playbook(&fleet);
    let inventory = fleet.dir().join("hosts.ini");
    fs::write(
        &inventory,
        format!(
            "[app]\napp1 ansible_host={} ansible_port={}\napp2 ansible_host={} ansible_port={}\n",
            names[0], app1.port, names[1], app2.port
        ),
    )
    .unwrap();
    // Everything but the addresses comes from the ssh config, as an operator's would.
    fs::write(
        fleet.home().join(".ssh/config"),
        format!(
            "Host *.fleet.invalid\n  ProxyJump bastion\n\n\
             Host bastion\n  HostName 127.0.0.1\n  Port {}\n\n\
             Host *\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n  IdentitiesOnly yes\n",
            jump.port
        ),
    )
    .unwrap();
    let args = [
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--format",
        "json",
    ];

    let (output, cpu) = converge_timed(&fleet, &args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    let local = Command::new("sha256sum")
        .arg(fleet.dir().join("big.txt"))
        .output()
        .unwrap();
    let digest = String::from_utf8_lossy(&local.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    for (name, host) in [("app1", app1), ("app2", app2)] {
        assert_eq!(stat(&report, name, "changed"), 2, "{report:#}");
        assert_eq!(host.ssh_ok("cat /root/reached"), host.name);
        assert_eq!(
            host.ssh_ok("sha256sum < /root/big.txt"),
            format!("{digest}  -")
        );
    }
    // Three seconds of remote silence cost no CPU: the relays sleep in poll(2).
    assert!(
        cpu < 2.0,
        "converge used {cpu:.2} s of CPU\n{}",
        text(&output)
    );

    let (output, _) = converge_timed(&fleet, &args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = json(&output);
    assert_eq!(stat(&report, "app1", "changed"), 0, "{report:#}");

    // The control: without the jump host the targets cannot even be found.
    let direct = fleet.dir().join("direct.conf");
    fs::write(
        &direct,
        "Host *\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n",
    )
    .unwrap();
    let mut control = args.to_vec();
    control.extend(["-F", direct.to_str().unwrap()]);
    let output = fleet.converge(&control);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report = json(&output);
    let first = &tasks_on(&report, "app1")[0];
    assert_eq!(first["status"], "unreachable", "{report:#}");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot connect to app1.fleet.invalid:"),
        "{report:#}"
    );
}

#[test]
fn chained_jump_hosts_are_passed_in_order() {
    let Some(fleet) = Fleet::boot(3) else { return };
    let [outer, inner, target] = fleet.hosts() else {
        unreachable!()
    };
    // Only the outer jump host knows the inner one, and only the inner one the target.
    resolve_on(outer, &["inner.fleet.invalid"]);
    resolve_on(inner, &["target.fleet.invalid"]);
    know_as(&fleet, inner, "inner.fleet.invalid");
    // The target's key is only in a file of its own, which the ssh config names.
    let fleet_known = fleet.dir().join("fleet_known_hosts");
    know_as_in(&fleet, target, "target.fleet.invalid", &fleet_known);
    let playbook = write_playbook(&fleet);
    let config = fleet.dir().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host target.fleet.invalid\n  ProxyJump root@127.0.0.1:{},inner.fleet.invalid:{}\n  \
             UserKnownHostsFile {}\n\
             Host *\n  User root\n  IdentityFile {}\n",
            outer.port,
            inner.port,
            fleet_known.display(),
            fleet.home().join(".ssh/id_ed25519").display()
        ),
    )
    .unwrap();
    let inventory = fleet.dir().join("inventory.yml");
    fs::write(
        &inventory,
        format!(
            "all:\n  hosts:\n    web:\n      host: target.fleet.invalid\n      port: {}\n",
            target.port
        ),
    )
    .unwrap();
    let (code, report) = converge_json(
        &fleet,
        &[
            playbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "-F",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(target.ssh_ok("cat /root/reached"), target.name);
    assert!(inner.ssh("test -e /root/reached").status.code() == Some(1));

    // The play run with `text` as the ssh config must fail on web: returns why.
    let failure_with = |text: String| -> String {
        let variant = fleet.dir().join("variant_config");
        fs::write(&variant, text).unwrap();
        let (code, report) = converge_json(
            &fleet,
            &[
                playbook.to_str().unwrap(),
                "-i",
                inventory.to_str().unwrap(),
                "-F",
                variant.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 1, "{report:#}");
        tasks_on(&report, "web")[0]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Without `UserKnownHostsFile`, ~/.ssh/known_hosts does not know the target's key.
    let text = fs::read_to_string(&config).unwrap();
    let line = format!("  UserKnownHostsFile {}\n", fleet_known.display());
    assert!(text.contains(&line));
    let message = failure_with(text.replace(&line, ""));
    assert!(
        message.starts_with(&format!(
            "host key verification failed for web: the host key for [target.fleet.invalid]:{} \
             is not in {}",
            target.port,
            fleet.home().join(".ssh/known_hosts").display()
        )),
        "{message}"
    );

    // A jump host that refuses to forward is named in the error.
    let message = failure_with(text.replace(&format!(":{}\n", inner.port), ":1\n"));
    assert!(
        message.starts_with(&format!(
            "jump host root@127.0.0.1:{} could not connect to inner.fleet.invalid:1:",
            outer.port
        )),
        "{message}"
    );

    // An unreachable first jump host is named too.
    let message = failure_with(text.replace(&format!("127.0.0.1:{}", outer.port), "127.0.0.1:1"));
    assert!(
        message.starts_with(
            "through jump host root@127.0.0.1:1: cannot connect to 127.0.0.1:1: Connection refused"
        ),
        "{message}"
    );
}

/// Generates a key pair with `ssh-keygen` in `dir`; returns the private key's path.
fn keygen(dir: &Path, name: &str, kind: &[&str], passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let output = Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-C", name, "-N", passphrase, "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(output.status.success(), "{}", text(&output));
    path
}

/// Adds the public half of `key` to root's `authorized_keys` on `host`.
fn authorize(host: &TestHost, key: &Path) {
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    host.ssh_ok(&format!(
        "printf '%s\\n' '{}' >> /root/.ssh/authorized_keys",
        public.trim()
    ));
}

/// An inventory for `host` logging in with `key` (no default key is in its HOME).
fn key_inventory(fleet: &Fleet, host: &TestHost, key: &Path) -> PathBuf {
    let path = fleet.dir().join(format!(
        "inventory-{}.ini",
        key.file_name().unwrap().to_string_lossy()
    ));
    fs::write(
        &path,
        format!(
            "h ansible_host=127.0.0.1 ansible_port={} ansible_user=root \
             ansible_ssh_private_key_file={}\n",
            host.port,
            key.display()
        ),
    )
    .unwrap();
    path
}

/// A HOME with the fleet's `known_hosts` and no key of its own.
fn bare_home(fleet: &Fleet) -> PathBuf {
    let home = fleet.dir().join("bare-home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    fs::copy(
        fleet.home().join(".ssh/known_hosts"),
        home.join(".ssh/known_hosts"),
    )
    .unwrap();
    home
}

fn minimal_playbook(fleet: &Fleet) -> PathBuf {
    let path = fleet.dir().join("true.yml");
    fs::write(
        &path,
        "- hosts: all\n  tasks:\n    - command: { cmd: \"true\" }\n",
    )
    .unwrap();
    path
}

#[test]
fn keys_of_every_type_and_certificates_log_in() {
    let Some(fleet) = Fleet::boot(1) else { return };
    let host = &fleet.hosts()[0];
    let keys = fleet.dir().join("keys");
    fs::create_dir(&keys).unwrap();
    let home = bare_home(&fleet);
    let playbook = minimal_playbook(&fleet);
    let run = |inventory: &Path| {
        Converge::new()
            .home(&home)
            .arg(&playbook)
            .arg("-i")
            .arg(inventory)
            .output()
    };

    for (name, kind) in [
        ("ed25519", &["-t", "ed25519"][..]),
        ("ecdsa", &["-t", "ecdsa", "-b", "256"][..]),
        ("rsa", &["-t", "rsa", "-b", "3072"][..]),
        ("rsa-pem", &["-t", "rsa", "-b", "2048", "-m", "PEM"][..]),
    ] {
        let key = keygen(&keys, name, kind, "");
        let inventory = key_inventory(&fleet, host, &key);
        let refused = run(&inventory);
        assert_eq!(refused.status.code(), Some(1), "{name}: {}", text(&refused));
        authorize(host, &key);
        let output = run(&inventory);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", text(&output));
    }

    // A certificate signed by a CA the server trusts, for a key it does not know. sshd is
    // restarted, not reloaded: a reload returns before the re-executed sshd listens
    // again, a restart of its Type=notify unit only once it does.
    let ca = keygen(&keys, "ca", &["-t", "ed25519"], "");
    let ca_public = fs::read_to_string(ca.with_extension("pub")).unwrap();
    host.ssh_ok(&format!(
        "printf '%s\\n' '{}' > /etc/ssh/user_ca.pub && \
         echo 'TrustedUserCAKeys /etc/ssh/user_ca.pub' > /etc/ssh/sshd_config.d/ca.conf && \
         systemctl restart ssh",
        ca_public.trim()
    ));
    let user = keygen(&keys, "certified", &["-t", "ed25519"], "");
    let inventory = key_inventory(&fleet, host, &user);
    let refused = run(&inventory);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let signed = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args(["-I", "converge-test", "-n", "root"])
        .arg(user.with_extension("pub"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", text(&signed));
    assert!(keys.join("certified-cert.pub").is_file());
    let output = run(&inventory);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn encrypted_keys_use_the_agent_or_a_terminal_and_are_refused_without_either() {
    let Some(fleet) = Fleet::boot(2) else { return };
    let [host, other] = fleet.hosts() else {
        unreachable!()
    };
    let keys = fleet.dir().join("keys");
    fs::create_dir(&keys).unwrap();
    let home = bare_home(&fleet);
    let playbook = minimal_playbook(&fleet);
    let key = keygen(&keys, "locked", &["-t", "ed25519"], "correct horse");
    authorize(host, &key);
    authorize(other, &key);
    let inventory = key_inventory(&fleet, host, &key);
    // A second host with the same key: two connections, made in parallel, share it.
    let first_line = fs::read_to_string(&inventory).unwrap();
    let second_line = first_line
        .replacen("h ", "h2 ", 1)
        .replace(&format!("={} ", host.port), &format!("={} ", other.port));
    fs::write(&inventory, format!("{first_line}{second_line}")).unwrap();
    let converge = || {
        let mut command = Command::new("setsid");
        // A new session has no controlling terminal: /dev/tty cannot be opened.
        command
            .arg("--wait")
            .arg(env!("CARGO_BIN_EXE_converge"))
            .arg(&playbook)
            .arg("-i")
            .arg(&inventory)
            .args(["--format", "json"])
            .env("HOME", &home)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        command
    };

    // No terminal, no agent: refused, with the remedy.
    let output = converge().output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report = json(&output);
    let message = tasks_on(&report, "h")[0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = key.display();
    assert_eq!(
        message,
        format!(
            "authentication as root@h failed: no key was accepted; tried ssh-agent \
             (SSH_AUTH_SOCK is not set); {shown} (key {shown} is encrypted; load it into \
             ssh-agent (`ssh-add {shown}`) or run converge on a terminal to be asked for \
             its passphrase)"
        )
    );

    // The same key loaded into ssh-agent: used from there, nothing is asked.
    let socket = fleet.dir().join("agent.sock");
    let agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = KillOnDrop(agent);
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // ssh-add reads the passphrase from SSH_ASKPASS when it has no terminal.
    let askpass = fleet.dir().join("askpass.sh");
    fs::write(&askpass, "#!/bin/sh\necho 'correct horse'\n").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&askpass)
        .status()
        .unwrap();
    let added = Command::new("setsid")
        .arg("--wait")
        .arg("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", "none")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let output = converge().env("SSH_AUTH_SOCK", &socket).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    drop(agent);

    // On a terminal: asked without echo, once for both hosts, asked again (once) after a
    // wrong passphrase, and the key opens. `script` runs converge on a new pseudo-terminal and types into it what
    // it reads; each answer is typed only once its prompt is on the screen.
    let command_line = format!(
        "{} {} -i {}",
        env!("CARGO_BIN_EXE_converge"),
        playbook.display(),
        inventory.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command_line, "/dev/null"])
        .env("HOME", &home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let prompt = format!("Enter passphrase for key '{shown}': ");
    let again = format!("Wrong passphrase. {prompt}");
    let mut screen = Vec::new();
    let mut wait_for = |text: &str, screen: &mut Vec<u8>| {
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(screen).ends_with(text) {
            let n = stdout.read(&mut byte).unwrap();
            assert_eq!(n, 1, "no prompt: {}", String::from_utf8_lossy(screen));
            screen.push(byte[0]);
        }
    };
    // Type as a person would, a moment after the prompt shows: the prompt is printed
    // just before echo is turned off, and keys sent in between would be echoed by the
    // terminal itself, whoever reads them.
    let pause = || std::thread::sleep(std::time::Duration::from_millis(300));
    wait_for(&prompt, &mut screen);
    pause();
    stdin.write_all(b"battery staple\n").unwrap();
    wait_for(&again, &mut screen);
    pause();
    stdin.write_all(b"correct horse\n").unwrap();
    stdout.read_to_end(&mut screen).unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    let screen = String::from_utf8_lossy(&screen);
    assert_eq!(status.code(), Some(0), "{screen}");
    assert_eq!(screen.matches(&prompt).count(), 2, "{screen}");
    assert_eq!(screen.matches(&again).count(), 1, "{screen}");
    for typed in ["correct horse", "battery staple"] {
        assert!(
            !screen.contains(typed),
            "the passphrase was echoed: {screen}"
        );
    }
}

/// Kills a child process when dropped, also on panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
