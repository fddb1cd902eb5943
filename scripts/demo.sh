#!/usr/bin/env bash
# Converges playbooks/sidekiq.yml on three disposable local hosts: Redis and Sidekiq
# from Debian's packages (the hosts fetch them from deb.debian.org), the worker running.
#
#   scripts/demo.sh [--keep]
#
# Builds the release binary and the Debian base image (scripts/base-image.sh), boots
# hosts app1, app2 and app3 as systemd-nspawn containers reachable over SSH on
# 127.0.0.1, then runs converge three times: apply with --diff, apply again (nothing
# left to change), and --check (no drift). The hosts are stopped when the script
# exits, unless --keep is given: then they stay up and the script prints how to log
# in to them and how to stop them.
#
# Must run as root.
set -euo pipefail

usage() { sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

keep=false
for arg in "$@"; do
    case $arg in
    --keep) keep=true ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 3
        ;;
    esac
done

if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/demo.sh must run as root: it boots containers with systemd-nspawn." >&2
    echo "Try: sudo scripts/demo.sh" >&2
    exit 1
fi

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$repo_root/$target_dir
image=$target_dir/converge-fleet/base
converge=$target_dir/release/converge
names=(app1 app2 app3)

bold=$'\e[1m' reset=$'\e[0m'
[[ -t 1 ]] || bold='' reset=''
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }

step "cargo build --release"
cargo build --release

step "base image (built once, then reused): $image"
scripts/base-image.sh "$image"

work=$(mktemp -d /tmp/converge-demo.XXXXXX)
home=$work/home
install -d -m 700 "$home" "$home/.ssh"
install -m 600 "$image.key" "$home/.ssh/id_ed25519"
install -m 644 "$image.key.pub" "$home/.ssh/id_ed25519.pub"

pids=()
ports=()

# Stops every host: SIGTERM lets systemd halt; whatever is still up after 15 s is
# killed, container init included (killing systemd-nspawn alone leaves it running).
stop_hosts() {
    local pid deadline live=()
    for pid in "${pids[@]}"; do
        # Only processes that are still our containers (pids get reused).
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "systemd-nspawn.*--machine=app"; then
            live+=("$pid")
        fi
    done
    pids=("${live[@]}")
    ((${#pids[@]})) || return 0
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 15))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

cleanup() {
    local status=$?
    if ! $keep; then
        if ((${#pids[@]})); then
            step "stopping the hosts"
        fi
        stop_hosts
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

next_port=$((20000 + RANDOM % 12000))
free_port() {
    while ! port_is_free "$next_port"; do
        next_port=$((next_port + 1))
    done
    port=$next_port
    next_port=$((next_port + 1))
}

step "booting ${names[*]} (systemd-nspawn, sshd on 127.0.0.1)"
launcher=()
if ! $keep && command -v setpriv >/dev/null; then
    # The hosts halt even if this script is killed before it can stop them.
    launcher=(setpriv --pdeathsig TERM)
fi
for name in "${names[@]}"; do
    free_port
    printf 'Port %s\nListenAddress 127.0.0.1\n' "$port" >"$work/$name.port.conf"
    if $keep; then
        # Own session: the hosts outlive this script and its terminal.
        setsid systemd-nspawn --directory="$image" --boot --machine="$name" --hostname="$name" \
            --register=no --keep-unit --volatile=overlay --console=read-only \
            --bind-ro="$work/$name.port.conf:/etc/ssh/sshd_config.d/port.conf" \
            </dev/null >"$work/$name.log" 2>&1 &
    else
        "${launcher[@]}" systemd-nspawn --directory="$image" --boot --machine="$name" \
            --hostname="$name" --register=no --keep-unit --volatile=overlay --console=read-only \
            --bind-ro="$work/$name.port.conf:/etc/ssh/sshd_config.d/port.conf" \
            </dev/null >"$work/$name.log" 2>&1 &
    fi
    pids+=("$!")
    ports+=("$port")
    echo "$name: 127.0.0.1:$port (console log: $work/$name.log)"
done

ssh_to() {
    local port=$1
    shift
    ssh -F none -i "$home/.ssh/id_ed25519" -p "$port" -o BatchMode=yes -o IdentitiesOnly=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o ConnectTimeout=2 root@127.0.0.1 "$@" </dev/null
}

started=$SECONDS
for i in "${!names[@]}"; do
    name=${names[$i]}
    until [[ $(ssh_to "${ports[$i]}" \
        'timeout 30 systemctl is-system-running --wait >/dev/null; uname -n' 2>/dev/null) == "$name" ]]; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null || ((SECONDS - started > 60)); then
            echo "$name did not come up; its console:" >&2
            tail -n 40 "$work/$name.log" >&2
            exit 1
        fi
        sleep 0.2
    done
done
echo "all hosts up after $((SECONDS - started)) s"

# Every host shares the image's sshd keys.
for i in "${!names[@]}"; do
    for pub in "$image"/etc/ssh/ssh_host_*_key.pub; do
        printf '[127.0.0.1]:%s %s\n' "${ports[$i]}" "$(cut -d' ' -f1,2 "$pub")"
    done
done >"$home/.ssh/known_hosts"

inventory=$work/inventory.yml
{
    echo "all:"
    echo "  children:"
    echo "    app:"
    echo "      hosts:"
    for i in "${!names[@]}"; do
        echo "        ${names[$i]}:"
        echo "          host: 127.0.0.1"
        echo "          port: ${ports[$i]}"
        echo "          user: root"
        echo "          identity_file: $home/.ssh/id_ed25519"
    done
} >"$inventory"
step "inventory $inventory"
cat "$inventory"

failed=0
run_converge() {
    local expect=$1 status=0
    shift
    step "converge $*"
    HOME=$home "$converge" "$@" || status=$?
    if ((status != expect)); then
        echo "${bold}converge exited with $status (expected $expect)${reset}"
        failed=1
    fi
}

run_converge 0 playbooks/sidekiq.yml -i "$inventory" --diff
run_converge 0 playbooks/sidekiq.yml -i "$inventory"
run_converge 0 playbooks/sidekiq.yml -i "$inventory" --check

step "on the hosts"
for i in "${!names[@]}"; do
    printf '%s: sidekiq.service is %s\n' "${names[$i]}" \
        "$(ssh_to "${ports[$i]}" systemctl is-active sidekiq.service || true)"
done
echo "sudo rights of deploy on ${names[0]}:"
ssh_to "${ports[0]}" sudo -l -U deploy || true

if $keep; then
    {
        echo "#!/usr/bin/env bash"
        echo "# Stops the demo hosts and removes $work."
        echo "pids=(${pids[*]})"
        declare -f stop_hosts
        echo "stop_hosts"
        echo "rm -rf '$work'"
    } >"$work/stop.sh"
    chmod +x "$work/stop.sh"
    step "the hosts are still running"
    for i in "${!names[@]}"; do
        echo "  ssh -i $home/.ssh/id_ed25519 -p ${ports[$i]} -o UserKnownHostsFile=$home/.ssh/known_hosts root@127.0.0.1   # ${names[$i]}"
    done
    echo "converge against them:"
    echo "  HOME=$home $converge playbooks/sidekiq.yml -i $inventory --check --diff"
    echo "stop them:"
    echo "  $work/stop.sh"
fi

if ((failed)); then
    step "demo finished with unexpected exit codes"
    exit 1
fi
step "demo finished"
