#!/usr/bin/env bash
# Builds (once) the root filesystem the benchmark hosts boot from: the test hosts' base
# image (scripts/base-image.sh) plus python3 and python3-apt, which Ansible's modules
# need on the host (its apt module, python3-apt; converge and pyinfra need neither;
# every tool is measured against the same image),
# and an sshd that accepts many logins at once (MaxStartups), for the controller run
# whose hundreds of inventory hosts are aliases of a few booted ones.
#
#   benches/bench-image.sh [DIR]
#
# DIR defaults to target/converge-fleet/bench. The image is rebuilt when the base
# image changes, built in a scratch directory and renamed into place only when
# complete. It logs in with the base image's key (target/converge-fleet/base.key).
# Must run as root. Prints nothing when the image is up to date.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=$repo_root/target/converge-fleet/base
dir=${1:-$repo_root/target/converge-fleet/bench}
dir=${dir%/}
stamp_rel=etc/converge-bench-image

log() { printf 'bench-image: %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || {
    log "error: must run as root"
    exit 1
}

"$repo_root/scripts/base-image.sh" "$base"
recipe="$(cat "$base/etc/converge-base-image") + python3 + python3-apt + MaxStartups=512"

exec 9>"$dir.lock"
flock 9
if [[ -f $dir/$stamp_rel && "$(cat "$dir/$stamp_rel")" == "$recipe" ]]; then
    exit 0
fi

rm -rf --one-file-system "$dir".building.*
work=$(mktemp -d "$dir.building.XXXXXX")
# shellcheck disable=SC2064 # expand $work now
trap "rm -rf --one-file-system '$work'" EXIT
log "copying $base and installing python3 and python3-apt (about a minute)"
cp -a "$base/." "$work/"
# Not booted: systemd-nspawn only gives apt-get a /proc and the machine's network.
systemd-nspawn --quiet --register=no --keep-unit --machine=converge-bench-image \
    --directory "$work" --pipe \
    sh -c 'export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends python3 python3-apt >/dev/null &&
        apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/*.log' </dev/null >&2
printf 'MaxStartups 512:30:1024\n' >"$work/etc/ssh/sshd_config.d/bench.conf"
printf '%s\n' "$recipe" >"$work/$stamp_rel"
rm -rf --one-file-system "$dir"
mv "$work" "$dir"
trap - EXIT
# systemd-nspawn leaves this behind when /run is not a tmpfs.
rmdir /run/systemd/nspawn/propagate/converge-bench-image 2>/dev/null || true
log "image ready: $dir ($(du -sh "$dir" | cut -f1))"
