#!/usr/bin/env bash
# Benchmarks converge against ansible-playbook and pyinfra on real hosts, and against the
# in-process floor. docs/PERFORMANCE.md explains the method and records the figures.
#
#   benches/run.sh [--hosts 1,10,30,50] [--tools converge,ansible,pyinfra] [--repeat 3]
#                  [--resources 10,200] [--aliases 100,250,500] [--aliases-hosts 10]
#                  [--latency MS] [--settle S] [--nochange-only] ...
#
# Needs root (the hosts are systemd-nspawn containers, like the integration tests').
# Builds what it needs: converge (release), the floor (benches/floor), the hosts' image
# (benches/bench-image.sh), and a throwaway Python venv under target/bench/venv with
# ansible-core and pyinfra from PyPI (versions: ANSIBLE_CORE_VERSION, PYINFRA_VERSION).
# CONVERGE_BIN: measure this converge binary instead of building the working tree.
# Prints one table; every measurement goes to target/bench/results-TIME.json
# (`benches/bench.py --table-only FILE...` prints the tables of one or more of them as one).
# Not part of the test suite: nothing here passes or fails on time.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
bench=$repo_root/target/bench
ansible_core=${ANSIBLE_CORE_VERSION:-2.19.14}
pyinfra=${PYINFRA_VERSION:-3.10.0}

log() { printf 'run.sh: %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || {
    log "error: must run as root (the hosts are systemd-nspawn containers)"
    exit 1
}
mkdir -p "$bench"

log "hosts' image"
benches/bench-image.sh

converge=${CONVERGE_BIN:-}
if [[ -z $converge ]]; then
    log "converge (release)"
    cargo build --release --quiet
    converge=target/release/converge
fi

log "floor"
CARGO_TARGET_DIR=$bench/floor-target cargo build --release --quiet \
    --manifest-path benches/floor/Cargo.toml
log "delay"
CARGO_TARGET_DIR=$bench/delay-target cargo build --release --quiet \
    --manifest-path benches/delay/Cargo.toml
if ! command -v iptables-legacy >/dev/null; then
    log "iptables (for --latency)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables >/dev/null
fi

venv=$bench/venv
if ! "$venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('ansible-core') != '$ansible_core' or m.version('pyinfra') != '$pyinfra')
" 2>/dev/null; then
    log "venv with ansible-core $ansible_core and pyinfra $pyinfra"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "ansible-core==$ansible_core" "pyinfra==$pyinfra"
fi

# Every booted systemd takes inotify instances; the default limit runs out at about
# two dozen hosts.
if (($(cat /proc/sys/fs/inotify/max_user_instances) < 8192)); then
    sysctl -q -w fs.inotify.max_user_instances=8192
fi

log "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, kernel $(uname -r)," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
log "converge $("$converge" --version 2>/dev/null || echo "?") at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src modules || echo ' (modified)')," \
    "ansible-core $ansible_core, pyinfra $pyinfra, $(ssh -V 2>&1)"

exec python3 benches/bench.py \
    --converge "$converge" \
    --floor "$bench/floor-target/release/converge-floor" \
    --delay "$bench/delay-target/release/converge-delay" \
    --venv "$venv" \
    --image target/converge-fleet/bench \
    --key target/converge-fleet/base.key \
    --workdir "$bench/work" \
    --out "$bench/results-$(date +%Y%m%d-%H%M%S).json" \
    "$@"
