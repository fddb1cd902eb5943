#!/usr/bin/env python3
"""Side-by-side benchmark of converge, ansible-playbook and pyinfra on real hosts.

Driven by benches/run.sh, which builds what this needs and documents the options; see
docs/PERFORMANCE.md for the method and the figures. For every host count N it boots N
fresh Debian hosts per tool (systemd-nspawn, sshd on 127.0.0.1, as tests/fleet does),
runs the Sidekiq scenario (first converge, no-change runs, --check after a drift),
checks on every host that the tool really converged, and measures the in-process floor
(benches/floor). Extra runs: 200 vs 10 file resources per host, and converge against
hundreds of inventory hosts that are aliases of the booted ones.

Wall time is measured from spawning the tool to its exit. Peak memory is the largest sum
of resident set sizes (VmRSS) of every process in the tool's process tree, sampled from
/proc every 5 ms (20 ms after the first second, 100 ms after ten) while a pids cgroup
holds the tree, and never less than any one process's own high-water mark (VmHWM), so
it is exact for a single-process tool. Shared pages count once per process, as `ps`
counts them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHES = REPO / "benches"
SCENARIO = {
    "converge": BENCHES / "sidekiq-scenario.yml",
    "ansible": BENCHES / "sidekiq-scenario.ansible.yml",
    "pyinfra": BENCHES / "sidekiq_scenario_pyinfra.py",
}
TOOLS = ("converge", "ansible", "pyinfra")
# Ports for the hosts' sshd: below the test fleet's range and the ephemeral range.
PORTS = range(12000, 20000)
READY_TIMEOUT = 300.0
RUN_TIMEOUT = 1800.0
CGROUP_ROOT = Path("/sys/fs/cgroup/pids")

# What a converged host looks like, and the probe that reads it (one ssh per host).
VERIFY = r"""
uid=$(id -u deploy 2>/dev/null) && echo user=ok || echo user=missing
echo dir=$(stat -c %U:%G:%a /opt/app 2>/dev/null || echo missing)
echo system_active=$(systemctl is-active sidekiq.service)
echo system_enabled=$(systemctl is-enabled sidekiq.service 2>/dev/null)
echo sudoers=$(stat -c %U:%G:%a /etc/sudoers.d/sidekiq 2>/dev/null || echo missing)
visudo -c >/dev/null 2>&1 && echo visudo=ok || echo visudo=bad
test -f /var/lib/systemd/linger/deploy && echo linger=yes || echo linger=no
as_deploy() { runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$uid systemctl --user "$@"; }
echo user_active=$(as_deploy is-active sidekiq-low.service 2>/dev/null)
echo user_enabled=$(as_deploy is-enabled sidekiq-low.service 2>/dev/null)
echo package=$(dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | tr ' ' _)
"""
CONVERGED = {
    "user": "ok",
    "dir": "deploy:deploy:755",
    "system_active": "active",
    "system_enabled": "enabled",
    "sudoers": "root:root:440",
    "visudo": "ok",
    "linger": "yes",
    "user_active": "active",
    "user_enabled": "enabled",
    "package": "install_ok_installed",
}
# The drift made before --check, and how it must still look afterwards.
DRIFT = "systemctl stop sidekiq.service && rm /etc/sudoers.d/sidekiq"
DRIFTED = dict(CONVERGED, system_active="inactive", sudoers="missing")
# What the floor runs on each host: one command that reads state.
FLOOR_COMMAND = "systemctl show -p ActiveState,UnitFileState,NeedDaemonReload sidekiq.service"
# What the floor runs when it reads every resource of the scenario, as converge must.
READ_ALL_FLOOR_SCRIPT = BENCHES / "floor" / "read-everything.sh"
# What the first-converge floor runs on each fresh host: the scenario's changes by hand.
FIRST_FLOOR_SCRIPT = BENCHES / "floor" / "first-converge.sh"
# converge's default `settle`: how long a started unit must stay up.
SETTLE_SECONDS = 3


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_idle(seconds: float = 0.5) -> float:
    """Share of the machine's CPU time that was idle over the next `seconds`."""

    def snapshot() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, all

    idle0, total0 = snapshot()
    time.sleep(seconds)
    idle1, total1 = snapshot()
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(args: argparse.Namespace) -> float:
    """Waits (bounded) until the machine is mostly idle; returns the idle share seen.

    The machine is shared: a compile or test run elsewhere would slow every tool."""
    deadline = time.monotonic() + args.quiet_wait
    while True:
        idle = cpu_idle()
        if idle >= args.quiet or time.monotonic() >= deadline:
            return idle
        time.sleep(1)


# ---------------------------------------------------------------------------------
# Hosts


@dataclass
class Host:
    name: str
    port: int
    process: subprocess.Popen | None = None


class Link:
    """An emulated network link between the tools and the hosts.

    The hosts boot in a network namespace of their own, reached through a veth pair.
    Every packet in and out of the hosts' end is held back for half the round trip by
    benches/delay (through iptables' NFQUEUE, in that namespace only: the machine's
    kernel has no `netem`). Only the harness's own namespace and addresses are used."""

    ADDRESS = "10.203.0.2"
    PEER = "10.203.0.1"
    QUEUE = "7"

    def __init__(self, round_trip_ms: float, delay: Path):
        self.round_trip_ms = round_trip_ms
        self.delay = delay
        self.name = f"cvb{os.getpid()}"
        self.netns = Path("/run/netns") / self.name
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Link:
        outer, inner = f"{self.name}a", f"{self.name}b"
        inside = ["ip", "netns", "exec", self.name]
        queue = ["-j", "NFQUEUE", "--queue-num", self.QUEUE]
        try:
            for argv in [
                ["ip", "netns", "add", self.name],
                ["ip", "link", "add", outer, "type", "veth", "peer", "name", inner,
                 "netns", self.name],
                ["ip", "addr", "add", f"{self.PEER}/24", "dev", outer],
                ["ip", "link", "set", outer, "up"],
                ["ip", "-n", self.name, "link", "set", "lo", "up"],
                ["ip", "-n", self.name, "addr", "add", f"{self.ADDRESS}/24", "dev", inner],
                ["ip", "-n", self.name, "link", "set", inner, "up"],
            ]:  # fmt: skip
                subprocess.run(argv, check=True, capture_output=True, text=True)
            delay_us = str(round(self.round_trip_ms * 500))
            self.process = subprocess.Popen(
                [*inside, str(self.delay), "--queue", self.QUEUE, "--delay-us", delay_us],
                stdout=subprocess.PIPE,
                text=True,
            )
            if self.process.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{self.delay} did not start")
            for argv in [
                [*inside, "iptables-legacy", "-A", "INPUT", "-i", inner, *queue],
                [*inside, "iptables-legacy", "-A", "OUTPUT", "-o", inner, *queue],
            ]:
                subprocess.run(argv, check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as error:
            self.__exit__()
            raise RuntimeError(f"{' '.join(error.cmd)}: {error.stderr.strip()}") from error
        except BaseException:
            self.__exit__()
            raise
        log(f"hosts behind a link of {self.round_trip_ms:g} ms round trip ({self.name})")
        return self

    def __exit__(self, *_exc) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{self.name}a"], capture_output=True)


class Fleet:
    """N booted hosts and a HOME whose ~/.ssh logs in to them (strict host keys)."""

    def __init__(self, n: int, image: Path, key: Path, workdir: Path, link: Link | None = None):
        self.link = link
        # Where the hosts' sshd listen: loopback, or the far end of the emulated link.
        self.address = link.ADDRESS if link else "127.0.0.1"
        self.image = image
        self.dir = Path(tempfile.mkdtemp(prefix=f"fleet{n}-", dir=workdir))
        self.home = self.dir / "home"
        ssh = self.home / ".ssh"
        ssh.mkdir(parents=True, mode=0o700)
        self.key = ssh / "id_ed25519"
        shutil.copyfile(key, self.key)
        self.key.chmod(0o600)
        self.hosts: list[Host] = []
        self.n = n

    def boot(self) -> Fleet:
        started = time.monotonic()
        pending = [f"cb{os.getpid()}x{self.n}x{i}" for i in range(self.n)]
        for attempt in range(3):
            launched = [self._launch(name) for name in pending]
            self.hosts.extend(launched)
            pending = []
            results: dict[str, str] = {}

            def wait(host: Host, results: dict[str, str] = results) -> None:
                results[host.name] = self._wait(host)

            threads = [threading.Thread(target=wait, args=(h,)) for h in launched]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for host in launched:
                outcome = results[host.name]
                if outcome == "port-taken" and attempt < 2:
                    self._stop([host])
                    self.hosts.remove(host)
                    pending.append(host.name)
                elif outcome != "ready":
                    self.stop()
                    raise RuntimeError(f"{host.name} did not boot: {outcome}")
            if not pending:
                break
        self._write_known_hosts()
        log(f"{self.n} host(s) ready in {time.monotonic() - started:.1f} s")
        return self

    def _launch(self, name: str) -> Host:
        port = free_port()
        conf = self.dir / f"{name}.port.conf"
        conf.write_text(f"Port {port}\nListenAddress {self.address}\n")
        console = open(self.dir / f"{name}.log", "wb")
        argv = [
            "setpriv", "--pdeathsig", "TERM",
            "systemd-nspawn", "--directory", str(self.image), "--boot",
            "--register=no", "--keep-unit", "--volatile=overlay", "--console=read-only",
            f"--machine={name}", f"--hostname={name}",
            f"--bind-ro={conf}:/etc/ssh/sshd_config.d/port.conf",
        ]  # fmt: skip
        if self.link:
            argv.append(f"--network-namespace-path={self.link.netns}")
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT
        )
        console.close()
        return Host(name, port, process)

    def _wait(self, host: Host) -> str:
        deadline = time.monotonic() + READY_TIMEOUT
        probe = "timeout 60 systemctl is-system-running --wait >/dev/null; uname -n"
        while time.monotonic() < deadline:
            if host.process.poll() is not None:
                return f"systemd-nspawn exited ({host.process.returncode})"
            out = self.ssh(host, probe, connect_timeout=2, check_keys=False)
            if out.returncode == 0:
                return "ready" if out.stdout.strip() == host.name else "port-taken"
            time.sleep(0.2)
        return "no SSH login in time"

    def _write_known_hosts(self) -> None:
        keys = []
        for kind in ("ed25519", "ecdsa", "rsa"):
            pub = self.image / f"etc/ssh/ssh_host_{kind}_key.pub"
            if pub.exists():
                keys.append(" ".join(pub.read_text().split()[:2]))
        lines = [f"[{self.address}]:{h.port} {k}" for h in self.hosts for k in keys]
        (self.home / ".ssh/known_hosts").write_text("\n".join(lines) + "\n")

    def ssh(
        self, host: Host, command: str, connect_timeout: int = 10, check_keys: bool = True
    ) -> subprocess.CompletedProcess:
        argv = [
            "ssh", "-F", "none", "-i", str(self.key), "-p", str(host.port),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
            "-o", f"ConnectTimeout={connect_timeout}",
        ]  # fmt: skip
        if check_keys:
            argv += ["-o", f"UserKnownHostsFile={self.home / '.ssh/known_hosts'}"]
        else:
            argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        argv += [f"root@{self.address}", command]
        env = dict(os.environ, HOME=str(self.home))
        env.pop("SSH_AUTH_SOCK", None)
        return subprocess.run(
            argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=120
        )

    def each(self, command: str) -> dict[str, str]:
        """Runs `command` on every host in parallel; returns stdout per host."""
        out: dict[str, str] = {}

        def one(host: Host) -> None:
            result = self.ssh(host, command)
            out[host.name] = result.stdout if result.returncode == 0 else f"error: {result.stderr}"

        threads = [threading.Thread(target=one, args=(h,)) for h in self.hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def state(self) -> dict[str, dict[str, str]]:
        """Every host's scenario state (see VERIFY)."""
        states = {}
        for name, text in self.each(VERIFY).items():
            states[name] = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        return states

    def expect(self, wanted: dict[str, str], what: str) -> None:
        wrong = {
            name: {k: v for k, v in state.items() if wanted.get(k) != v}
            for name, state in self.state().items()
        }
        wrong = {name: diff for name, diff in wrong.items() if diff}
        if wrong:
            sample = dict(list(wrong.items())[:3])
            raise RuntimeError(f"{what}: {len(wrong)} host(s) differ, e.g. {sample}")
        log(f"verified on {len(self.hosts)} host(s): {what}")

    def stop(self) -> None:
        self._stop(self.hosts)
        self.hosts = []
        shutil.rmtree(self.dir, ignore_errors=True)

    def _stop(self, hosts: list[Host]) -> None:
        for host in hosts:
            if host.process and host.process.poll() is None:
                host.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for host in hosts:
            if not host.process:
                continue
            try:
                host.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # Killing systemd-nspawn alone leaves the container; kill its init.
                for pid in children_of(host.process.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                host.process.kill()
                host.process.wait()
            shutil.rmtree(f"/run/systemd/nspawn/propagate/{host.name}", ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self.boot()

    def __exit__(self, *_exc) -> None:
        self.stop()


_used_ports: set[int] = set()


def free_port() -> int:
    candidates = list(PORTS)
    random.shuffle(candidates)
    for port in candidates:
        if port in _used_ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def children_of(parent: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            pids.append(int(entry))
    return pids


# ---------------------------------------------------------------------------------
# Measuring one run


@dataclass
class Run:
    argv: list[str]
    wall: float
    peak_rss: int
    code: int
    load: float
    # Idle share of the CPU just before the run (see `wait_quiet`).
    idle: float = 0.0
    changed: int = 0
    failed: int = 0
    # Remote commands per host, where the tool reports them (converge).
    commands: list[int] = field(default_factory=list)
    # What failed, where the tool reports it (converge).
    failures: list[str] = field(default_factory=list)
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")


def kib(field: str | None) -> int:
    """Bytes in a /proc/PID/status size field such as ` 1234 kB`."""
    return int(field.split()[0]) * 1024 if field else 0


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> Run:
    """Runs argv to completion; wall time and peak RSS of its whole process tree."""
    group = CGROUP_ROOT / f"converge-bench-{os.getpid()}-{time.monotonic_ns()}"
    group.mkdir()
    procs = group / "cgroup.procs"
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    done = threading.Event()
    peak = 0
    load = load_average()

    def sample() -> None:
        nonlocal peak
        started = time.monotonic()
        while not done.is_set():
            total = 0
            try:
                pids = procs.read_text().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(
                    line.split(":", 1) for line in status.splitlines() if line.startswith("Vm")
                )
                # Kernel threads and zombies have no Vm lines.
                total += kib(fields.get("VmRSS"))
                peak = max(peak, kib(fields.get("VmHWM")))
            peak = max(peak, total)
            elapsed = time.monotonic() - started
            done.wait(0.005 if elapsed < 1 else 0.02 if elapsed < 10 else 0.1)

    # The shell moves itself into the cgroup, then becomes the tool: the whole tree is
    # in the cgroup from its first instruction.
    wrapper = ["sh", "-c", 'echo $$ >"$0" && exec "$@"', str(procs), *argv]
    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    process = subprocess.Popen(
        wrapper, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd
    )
    deadline_timer = threading.Timer(RUN_TIMEOUT, process.kill)
    deadline_timer.start()
    _, status = os.waitpid(process.pid, 0)
    wall = time.perf_counter() - started
    deadline_timer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    # Processes the tool left running (ssh ControlPersist masters) stay where they are.
    for pid in procs.read_text().split():
        try:
            Path(CGROUP_ROOT / "cgroup.procs").write_text(pid)
        except OSError:
            pass
    try:
        group.rmdir()
    except OSError:
        pass
    out.seek(0)
    err.seek(0)
    return Run(
        argv=argv,
        wall=wall,
        peak_rss=peak,
        code=process.returncode,
        load=load,
        stdout=out.read().decode(errors="replace"),
        stderr=err.read().decode(errors="replace"),
    )


# ---------------------------------------------------------------------------------
# The tools


class Tool:
    name = ""

    def __init__(self, fleet: Fleet, args: argparse.Namespace):
        self.fleet = fleet
        self.args = args
        self.env = dict(os.environ, HOME=str(fleet.home))
        self.env.pop("SSH_AUTH_SOCK", None)
        self.env["PATH"] = f"{args.venv / 'bin'}:{self.env['PATH']}"

    def run(self, check: bool) -> Run:
        idle = wait_quiet(self.args)
        run = measure(self.argv(check), self.env, REPO)
        run.idle = idle
        run.changed, run.failed = self.counts(run)
        return run

    def argv(self, check: bool) -> list[str]:
        raise NotImplementedError

    def counts(self, run: Run) -> tuple[int, int]:
        """Tasks changed (or that would change) and tasks failed, over all hosts."""
        raise NotImplementedError


class Converge(Tool):
    name = "converge"

    def __init__(
        self, fleet: Fleet, args: argparse.Namespace, playbook: Path = SCENARIO["converge"]
    ):
        super().__init__(fleet, args)
        if args.settle is not None and playbook == SCENARIO["converge"]:
            playbook = with_settle(playbook, args.settle, fleet.dir / "scenario-settle.yml")
        self.playbook = playbook
        self.inventory = write_converge_inventory(fleet, fleet.dir / "inventory.yml")
        self.report = fleet.dir / "converge-report.json"

    def argv(self, check: bool) -> list[str]:
        argv = [str(self.args.converge), str(self.playbook), "-i", str(self.inventory)]
        argv += ["--report", str(self.report)]
        return argv + (["--check"] if check else [])

    def counts(self, run: Run) -> tuple[int, int]:
        report = json.loads(self.report.read_text())
        run.commands = [host["commands"] for host in report["hosts"]]
        summary = report["summary"]
        for play in report["plays"]:
            for host in play["hosts"]:
                for task in host["tasks"]:
                    if task["status"] in ("failed", "unreachable"):
                        run.failures.append(
                            f"{host['host']}: {task['task']}: {task.get('message')}"
                        )
        return summary["changed"], summary["failed"] + summary["unreachable"]


def with_settle(playbook: Path, settle: int, path: Path) -> Path:
    """A copy of the scenario whose starts are proven for `settle` seconds."""
    started = "        state: started\n"
    text = playbook.read_text()
    if text.count(started) != 2:
        raise RuntimeError(f"{playbook}: expected the two units' `state: started`")
    path.write_text(text.replace(started, f"{started}        settle: {settle}\n"))
    return path


def write_converge_inventory(fleet: Fleet, path: Path, aliases: int = 0) -> Path:
    lines = [
        "all:",
        "  vars:",
        "    user: root",
        f"    identity_file: {fleet.key}",
        "  children:",
        "    bench:",
        "      hosts:",
    ]
    count = aliases or len(fleet.hosts)
    for i in range(count):
        host = fleet.hosts[i % len(fleet.hosts)]
        name = f"{host.name}a{i}" if aliases else host.name
        lines.append(f"        {name}: {{ host: {fleet.address}, port: {host.port} }}")
    path.write_text("\n".join(lines) + "\n")
    return path


class Ansible(Tool):
    name = "ansible"

    def __init__(self, fleet: Fleet, args: argparse.Namespace):
        super().__init__(fleet, args)
        inventory = ["[bench]"]
        inventory += [
            f"{h.name} ansible_host={fleet.address} ansible_port={h.port}" for h in fleet.hosts
        ]
        inventory += [
            "[bench:vars]",
            "ansible_user=root",
            f"ansible_ssh_private_key_file={fleet.key}",
            "ansible_python_interpreter=/usr/bin/python3",
        ]
        self.inventory = fleet.dir / "inventory.ini"
        self.inventory.write_text("\n".join(inventory) + "\n")
        config = fleet.dir / "ansible.cfg"
        config.write_text(
            "[defaults]\n"
            f"forks = {len(fleet.hosts)}\n"
            "host_key_checking = False\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
        )
        self.env["ANSIBLE_CONFIG"] = str(config)
        self.env["ANSIBLE_NOCOLOR"] = "1"

    def argv(self, check: bool) -> list[str]:
        argv = [
            str(self.args.venv / "bin/ansible-playbook"),
            "-i", str(self.inventory), str(SCENARIO["ansible"]),
        ]  # fmt: skip
        return argv + (["--check"] if check else [])

    def counts(self, run: Run) -> tuple[int, int]:
        changed = failed = hosts = 0
        for match in re.finditer(r"changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", run.stdout):
            hosts += 1
            changed += int(match[1])
            failed += int(match[2]) + int(match[3])
        if hosts != len(self.fleet.hosts):
            failed += len(self.fleet.hosts) - hosts
        return changed, failed


class Pyinfra(Tool):
    name = "pyinfra"

    def __init__(self, fleet: Fleet, args: argparse.Namespace):
        super().__init__(fleet, args)
        hosts = [
            (
                h.name,
                {
                    "ssh_hostname": fleet.address,
                    "ssh_port": h.port,
                    "ssh_user": "root",
                    "ssh_key": str(fleet.key),
                    "ssh_strict_host_key_checking": "off",
                },
            )
            for h in fleet.hosts
        ]
        self.inventory = fleet.dir / "inventory.py"
        self.inventory.write_text(f"bench = {hosts!r}\n")

    def argv(self, check: bool) -> list[str]:
        argv = [
            str(self.args.venv / "bin/pyinfra"), "--parallel", str(len(self.fleet.hosts)),
            "--no-wait",
        ]  # fmt: skip
        argv += ["--dry"] if check else ["-y"]
        return argv + [str(self.inventory), str(SCENARIO["pyinfra"])]

    def counts(self, run: Run) -> tuple[int, int]:
        # A real run ends with a results table whose "Grand total" row counts operations
        # per column (Hosts, Success, Error, No Change; "-" is none). A --dry run prints
        # "Detected changes": per operation, the hosts it would change.
        def number(text: str) -> int:
            return int(text.split()[0]) if text.strip()[:1].isdigit() else 0

        text = run.stdout + run.stderr  # pyinfra logs its tables to stderr
        total = re.search(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
        if total:
            return number(total[2]), number(total[3]) + (1 if run.code else 0)
        lines = text.splitlines()
        header = next((i for i, line in enumerate(lines) if "Conditional Change" in line), None)
        if header is None:
            return 0, 1
        start = lines[header].index("Change")
        end = lines[header].index("Conditional")
        changed = 0
        for line in lines[header + 1 :]:
            if not line.strip():
                break
            changed += number(line[start:end])
        return changed, 1 if run.code else 0


def floor_run(fleet: Fleet, args: argparse.Namespace, command: str = FLOOR_COMMAND) -> Run:
    targets = [f"{fleet.address}:{h.port}" for h in fleet.hosts]
    argv = [str(args.floor), "--key", str(fleet.key), "--command", command, *targets]
    idle = wait_quiet(args)
    run = measure(argv, dict(os.environ), REPO)
    run.idle = idle
    run.changed, run.failed = 0, (0 if run.code == 0 else 1)
    return run


def floor_runs(
    fleet: Fleet, args: argparse.Namespace, label: str, command: str = FLOOR_COMMAND
) -> list[dict]:
    """`repeat` runs of the floor with `command`, which changes nothing on the hosts."""
    runs = []
    for _ in range(args.repeat):
        run = floor_run(fleet, args, command)
        expect_run(run, "floor", label, "none")
        runs.append(record(run))
    return runs


# ---------------------------------------------------------------------------------
# Scenarios


def expect_run(run: Run, tool: str, phase: str, changed: str) -> None:
    """Fails loudly when a run did not do what the phase means."""
    ok = (
        run.failed == 0
        and {
            "none": run.changed == 0,
            "some": run.changed > 0,
        }[changed]
    )
    if tool == "converge" and phase == "check":
        ok = ok and run.code == 2
    elif run.code != 0 and not (tool == "converge" and phase == "check"):
        ok = False
    if not ok:
        failures = "".join(f"{failure}\n" for failure in run.failures)
        raise RuntimeError(
            f"{tool} {phase}: exit {run.code}, changed {run.changed}, failed {run.failed}\n"
            f"{failures}"
            f"--- stdout (end)\n{run.stdout[-3000:]}\n--- stderr (end)\n{run.stderr[-3000:]}"
        )
    log(
        f"{tool} {phase}: {run.wall:.2f} s, peak {run.peak_rss / 2**20:.0f} MiB, "
        f"changed {run.changed}, CPU idle before {run.idle:.0%}"
    )


def scenario(tool_class: type[Tool], n: int, args: argparse.Namespace) -> dict:
    """First converge, no-change runs, --check after a drift, on n fresh hosts."""
    with Fleet(n, args.image, args.key, args.workdir, args.link) as fleet:
        tool = tool_class(fleet, args)
        result: dict = {"tool": tool.name, "n": n, "round_trip_ms": round_trip(args)}
        if args.settle is not None and tool.name == "converge":
            result["settle"] = args.settle
        first = tool.run(check=False)
        expect_run(first, tool.name, "first", "some")
        fleet.expect(CONVERGED, f"{tool.name} converged every host")
        result["first"] = [record(first)]
        result["nochange"] = []
        for _ in range(args.repeat):
            run = tool.run(check=False)
            expect_run(run, tool.name, "no-change", "none")
            result["nochange"].append(record(run))
        if tool.name == "converge":
            # On the converged hosts, before the drift: every file it reads is there.
            result["floor_read_all"] = floor_runs(
                fleet, args, "read everything", READ_ALL_FLOOR_SCRIPT.read_text()
            )
        if args.nochange_only:
            if tool.name == "converge":
                result["floor"] = floor_runs(fleet, args, "read")
            return result
        fleet.each(DRIFT)
        check = tool.run(check=True)
        expect_run(check, tool.name, "check", "some")
        fleet.expect(DRIFTED, f"{tool.name} --check found the drift and changed nothing")
        result["check"] = [record(check)]
        if tool.name == "converge":
            fleet.each("systemctl start sidekiq.service")
            result["floor"] = floor_runs(fleet, args, "read")
    # More first converges, each on hosts as fresh as the first: a median of `repeat`.
    for _ in range(args.repeat - 1):
        with Fleet(n, args.image, args.key, args.workdir, args.link) as fresh:
            run = tool_class(fresh, args).run(check=False)
            expect_run(run, tool.name, "first", "some")
            fresh.expect(CONVERGED, f"{tool.name} converged every host")
            result["first"].append(record(run))
    if result["tool"] == "converge":
        # The first-converge floor needs hosts as fresh as the tools had them; then
        # again with each started unit proven to stay up as converge proves it.
        floors = (
            ("floor_first", "first", FIRST_FLOOR_SCRIPT.read_text()),
            (
                "floor_first_proven",
                "first, proven",
                f"settle={SETTLE_SECONDS}\n" + FIRST_FLOOR_SCRIPT.read_text(),
            ),
        )
        for key, phase, script in floors:
            result[key] = []
            result[f"{key}_failed"] = []
            while len(result[key]) < args.repeat:
                with Fleet(n, args.image, args.key, args.workdir, args.link) as fresh:
                    run = floor_run(fresh, args, script)
                    if run.code != 0 and not result[f"{key}_failed"]:
                        # The hand-written script retries nothing: a race on a host
                        # (systemd's, logind's) fails it now and then. Once per floor,
                        # such a run is recorded as failed and made again.
                        log(f"floor {phase} failed: {run.stderr.strip()}; again on fresh hosts")
                        result[f"{key}_failed"].append(dict(record(run), stderr=run.stderr))
                        continue
                    expect_run(run, "floor", phase, "none")
                    fresh.expect(CONVERGED, f"the {phase} floor converged every host")
                    result[key].append(record(run))
    return result


def round_trip(args: argparse.Namespace) -> float:
    """The emulated link's round trip in milliseconds; 0 on loopback."""
    return args.link.round_trip_ms if args.link else 0


def record(run: Run) -> dict:
    data = asdict(run)
    del data["stdout"], data["stderr"]
    return data


def file_playbook(count: int, path: Path) -> Path:
    lines = [
        f"# {count} file resources per host (generated by benches/bench.py).",
        "- hosts: bench",
        "  tasks:",
        "    - name: directory",
        '      directory: { path: /etc/converge-bench, mode: "0755" }',
    ]
    for i in range(count):
        lines += [
            f"    - name: file {i}",
            "      file:",
            f"        path: /etc/converge-bench/file-{i}.conf",
            f'        content: "setting_{i} = {i}\\n"',
            '        mode: "0644"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def resources(n: int, counts: list[int], args: argparse.Namespace) -> list[dict]:
    """No-change cost of a playbook with many resources, in remote commands and time."""
    out = []
    with Fleet(n, args.image, args.key, args.workdir, args.link) as fleet:
        for count in counts:
            tool = Converge(fleet, args, file_playbook(count, fleet.dir / f"files-{count}.yml"))
            expect_run(tool.run(check=False), "converge", f"{count} files first", "some")
            runs = []
            for _ in range(args.repeat):
                run = tool.run(check=False)
                expect_run(run, "converge", f"{count} files no-change", "none")
                runs.append(record(run))
            out.append({"n": n, "resources": count, "nochange": runs})
    return out


def aliases(n: int, counts: list[int], args: argparse.Namespace) -> list[dict]:
    """converge against many inventory hosts that are aliases of n booted hosts."""
    out = []
    with Fleet(n, args.image, args.key, args.workdir, args.link) as fleet:
        tool = Converge(fleet, args)
        expect_run(tool.run(check=False), "converge", "first", "some")
        for count in counts:
            tool.inventory = write_converge_inventory(
                fleet, fleet.dir / f"aliases-{count}.yml", aliases=count
            )
            runs = []
            for _ in range(args.repeat):
                run = tool.run(check=False)
                expect_run(run, "converge", f"{count} aliases no-change", "none")
                runs.append(record(run))
            out.append({"n": n, "hosts": count, "nochange": runs})
    return out


# ---------------------------------------------------------------------------------
# Report


def median(runs: list[dict], key: str = "wall") -> float:
    return statistics.median(r[key] for r in runs)


def peak(runs: list[dict]) -> float:
    return max(r["peak_rss"] for r in runs) / 2**20


PHASES = (
    ("first", "first converge"),
    ("nochange", "no change"),
    ("check", "--check after drift"),
)


def phase_figures(
    results: dict, n: int, rtt: float, settle: int | None, phase: str
) -> tuple[dict, dict, list]:
    """Median wall time and peak RSS (MiB) per tool (and the floor), and idle shares:
    converge's rows with `settle` (None: its default), the others' rows beside them."""
    by = {
        (r["tool"], r["n"]): r
        for r in results["scenario"]
        if row_rtt(r) == rtt and r.get("settle") == (settle if r["tool"] == "converge" else None)
    }
    wall: dict[str, float] = {}
    rss: dict[str, float] = {}
    idles: list[float] = []
    for tool in TOOLS:
        r = by.get((tool, n))
        if r and r.get(phase):
            wall[tool] = median(r[phase])
            rss[tool] = peak(r[phase])
            idles += [x.get("idle", 0) for x in r[phase]]
    floor_runs = {"nochange": "floor", "first": "floor_first"}.get(phase, "")
    floor = by.get(("converge", n), {}).get(floor_runs)
    if floor:
        wall["floor"] = median(floor)
        rss["floor"] = peak(floor)
    # The floor that checks what converge checks: its starts proven, or every resource read.
    checking_runs = {"nochange": "floor_read_all", "first": "floor_first_proven"}.get(phase, "")
    checking = by.get(("converge", n), {}).get(checking_runs)
    if checking:
        wall["checking"] = median(checking)
    return wall, rss, idles


def secs(wall: dict, tool: str) -> str:
    return f"{wall[tool]:.2f} s" if tool in wall else "–"


def mib(rss: dict, tool: str) -> str:
    return f"{rss[tool]:.0f} MiB" if tool in rss else "–"


def ratio(wall: dict, a: str, b: str) -> str:
    return f"{wall[a] / wall[b]:.1f}x" if a in wall and b in wall else "–"


def table(results: dict) -> str:
    rows = [
        "| N | run | converge | Ansible | pyinfra | floor | floor, checking as converge does "
        "| Ansible ÷ converge | pyinfra ÷ converge | converge ÷ floor "
        "| converge ÷ floor, checking | peak RSS converge | Ansible | pyinfra "
        "| floor | CPU idle before (min) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    variants = {(row_rtt(r), r["n"], r.get("settle", -1)) for r in results["scenario"]}
    for rtt, n, settle_key in sorted(variants):
        settle = None if settle_key == -1 else settle_key
        for phase, label in PHASES:
            wall, rss, idles = phase_figures(results, n, rtt, settle, phase)
            if rtt:
                label = f"{label}, {rtt:g} ms round trip"
            if settle is not None:
                label = f"{label}, converge with settle {settle}"
            quiet = f"{min(idles):.0%}" if idles else "–"
            rows.append(
                f"| {n} | {label} | {secs(wall, 'converge')} | {secs(wall, 'ansible')} "
                f"| {secs(wall, 'pyinfra')} | {secs(wall, 'floor')} | {secs(wall, 'checking')} "
                f"| {ratio(wall, 'ansible', 'converge')} | {ratio(wall, 'pyinfra', 'converge')} "
                f"| {ratio(wall, 'converge', 'floor')} | {ratio(wall, 'converge', 'checking')} "
                f"| {mib(rss, 'converge')} "
                f"| {mib(rss, 'ansible')} | {mib(rss, 'pyinfra')} | {mib(rss, 'floor')} "
                f"| {quiet} |"
            )
    text = "\n".join(rows) + "\n"
    commands = {
        r["n"]: sorted({c for run in r["nochange"] for c in run["commands"]})
        for r in results["scenario"]
        if r["tool"] == "converge" and not row_rtt(r)
    }
    if commands:
        text += "\nconverge's remote commands per host, no change: " + ", ".join(
            f"N={n}: {'/'.join(map(str, c))}" for n, c in sorted(commands.items())
        )
        text += "\n"
    if results.get("resources"):
        text += (
            "\n| booted hosts | file resources per host "
            "| remote commands per host (no change) | median wall |\n"
            "|---:|---:|---:|---:|\n"
        )
        for r in results["resources"]:
            counts = sorted({c for run in r["nochange"] for c in run["commands"]})
            text += (
                f"| {r['n']} | {r['resources']} | {', '.join(map(str, counts))} "
                f"| {median(r['nochange']):.2f} s |\n"
            )
    if results.get("aliases"):
        text += (
            "\n| booted hosts | inventory hosts (aliases) | median wall | peak RSS "
            "| added wall per host | added RSS per host |\n"
            "|---:|---:|---:|---:|---:|---:|\n"
        )
        first = results["aliases"][0]
        first_wall = median(first["nochange"])
        first_rss = max(x["peak_rss"] for x in first["nochange"])
        for r in results["aliases"]:
            wall = median(r["nochange"])
            rss = max(x["peak_rss"] for x in r["nochange"])
            per_wall = per_rss = "–"
            if r is not first:
                span = r["hosts"] - first["hosts"]
                per_wall = f"{(wall - first_wall) / span * 1000:.1f} ms"
                per_rss = f"{(rss - first_rss) / span / 1024:.0f} KiB"
            text += (
                f"| {r['n']} | {r['hosts']} | {wall:.2f} s | {rss / 2**20:.1f} MiB "
                f"| {per_wall} | {per_rss} |\n"
            )
    return text


def row_rtt(row: dict) -> float:
    return row.get("round_trip_ms", 0)


def merged(results: list[dict]) -> dict:
    """Several runs' results as one: a later file's row replaces an earlier one's."""
    scenario: dict = {}
    out: dict = {}
    for result in results:
        for row in result["scenario"]:
            scenario[(row["tool"], row["n"], row_rtt(row), row.get("settle"))] = row
        for key in ("resources", "aliases"):
            if result.get(key):
                out[key] = result[key]
    out["scenario"] = list(scenario.values())
    return out


def machine(args: argparse.Namespace) -> dict:
    """What the figures were measured on and with."""

    def output(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
        except OSError as error:
            return str(error)
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else ""

    python = str(args.venv / "bin/python")
    version = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo) / 2**20, 1),
        "kernel": os.uname().release,
        "converge": output(["git", "describe", "--always", "--dirty"]),
        "converge_binary": str(args.converge),
        "ansible_core": output([python, "-c", version, "ansible-core"]),
        "pyinfra": output([python, "-c", version, "pyinfra"]),
        "openssh": output(["ssh", "-V"]),
        "python": output([python, "--version"]),
        "round_trip_ms": round_trip(args),
        "settle": args.settle,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,10,30", help="host counts, e.g. 1,10,30,50")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--repeat", type=int, default=3, help="no-change runs per tool")
    parser.add_argument("--resources", default="10,200", help="file counts ('' to skip)")
    parser.add_argument("--resources-hosts", type=int, default=10)
    parser.add_argument("--aliases", default="100,250,500", help="alias counts ('' to skip)")
    parser.add_argument("--aliases-hosts", type=int, default=10)
    parser.add_argument("--converge", type=Path)
    parser.add_argument("--floor", type=Path)
    parser.add_argument("--delay", type=Path, help="benches/delay's binary (for --latency)")
    parser.add_argument("--venv", type=Path)
    parser.add_argument("--image", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path, help="results (JSON)")
    parser.add_argument(
        "--quiet", type=float, default=0.85, help="CPU idle share to wait for before a run"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=120, help="longest wait for it, in seconds"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0,
        help="round trip in ms of an emulated link to the hosts (0: loopback)",
    )
    parser.add_argument(
        "--settle",
        type=int,
        help="converge's settle time for the scenario's two starts (default: converge's "
        "own, 3 s); the floors and the other tools are unchanged",
    )
    parser.add_argument(
        "--nochange-only",
        action="store_true",
        help="per host count: one first converge, then only the no-change runs of the "
        "tools and the floors (no --check, no further first converges, no first-converge "
        "floors)",
    )
    parser.add_argument(
        "--table-only",
        type=Path,
        nargs="+",
        metavar="RESULTS",
        help="print the tables of these results files (JSON) as one, and run nothing",
    )
    args = parser.parse_args()

    if args.table_only:
        print(table(merged([json.loads(path.read_text()) for path in args.table_only])), end="")
        return 0
    missing = [
        f"--{name}"
        for name in ("converge", "floor", "venv", "image", "key", "workdir", "out")
        if getattr(args, name) is None
    ]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        args.link = None
        if args.latency > 0:
            if args.delay is None:
                parser.error("--latency needs --delay")
            args.link = stack.enter_context(Link(args.latency, args.delay))
        return run_all(args)


def run_all(args: argparse.Namespace) -> int:
    classes = {"converge": Converge, "ansible": Ansible, "pyinfra": Pyinfra}
    results: dict = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(args),
        "scenario": [],
    }
    log(f"machine: {results['machine']}")

    def save() -> None:
        args.out.write_text(json.dumps(results, indent=1) + "\n")

    for n in [int(x) for x in args.hosts.split(",") if x]:
        for name in args.tools.split(","):
            log(f"{name} on {n} host(s) (load {load_average():.2f})")
            results["scenario"].append(scenario(classes[name], n, args))
            save()
    if args.resources:
        counts = [int(x) for x in args.resources.split(",")]
        results["resources"] = resources(args.resources_hosts, counts, args)
        save()
    if args.aliases:
        counts = [int(x) for x in args.aliases.split(",")]
        results["aliases"] = aliases(args.aliases_hosts, counts, args)
        save()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save()
    print(table(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
