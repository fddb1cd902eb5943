#!/usr/bin/env bash
# Builds (once) the Debian root filesystem that every disposable test host boots
# from with systemd-nspawn, plus the SSH key pair that logs in to those hosts.
#
#   scripts/base-image.sh [DIR]
#
# DIR defaults to $CARGO_TARGET_DIR/converge-fleet/IMAGE (a relative CARGO_TARGET_DIR
# counts from the repository root), or target/converge-fleet/IMAGE under the
# repository root, where IMAGE is `base` for the default release and the release's
# name for the others. Next to it the script keeps:
#
#   DIR.key, DIR.key.pub   ed25519 key pair without passphrase; the public half is
#                          root's authorized_keys inside the image
#   DIR.lock               flock(1) lock that serialises concurrent callers
#   DIR.building.*         work directory of an unfinished build (removed on failure)
#   DIR.build.log          output of the last debootstrap run
#
# The image is built into a scratch directory and only renamed to DIR when it is
# complete, so an interrupted build is never used. A complete image carries a
# recipe stamp; when this script's recipe changes the image is rebuilt.
#
# Environment:
#   CONVERGE_RELEASE  which host to build (default: bookworm):
#                       bookworm, bullseye, trixie   Debian 12, 11, 13 with sudo
#                       trixie-sudo-rs               Debian 13 with Debian's sudo-rs package
#                                                    and no sudo: only sudo-rs and visudo-rs
#                       trixie-sudo-rs-as-sudo       the same, with sudo-rs installed as
#                                                    sudo and visudo (as Ubuntu does)
#   CONVERGE_MIRROR   Debian mirror URL (default: taken from this machine's apt sources)
#
# Must run as root. Prints nothing when the image is already up to date.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo_root/target}
case $target_dir in
/*) ;;
*) target_dir=$repo_root/$target_dir ;;
esac
release=${CONVERGE_RELEASE:-bookworm}
case $release in
bookworm) image=base ;;
*) image=$release ;;
esac
dir=${1:-$target_dir/converge-fleet/$image}
case $dir in
/*) ;;
*) dir=$PWD/$dir ;;
esac
dir=${dir%/}

sudo_package=sudo sudo_as=
case $release in
bookworm | bullseye | trixie) suite=$release ;;
trixie-sudo-rs) suite=trixie sudo_package=sudo-rs ;;
trixie-sudo-rs-as-sudo) suite=trixie sudo_package=sudo-rs sudo_as=sudo ;;
*)
    printf 'base-image: error: unknown CONVERGE_RELEASE %s\n' "$release" >&2
    exit 1
    ;;
esac
packages=systemd,systemd-sysv,dbus,openssh-server,$sudo_package,libpam-systemd,libnss-myhostname,iproute2,procps
# Anything that changes the image's content belongs in the recipe.
recipe="v2 suite=$suite packages=$packages sshd=UseDNS-no,PermitRootLogin-prohibit-password machine-id=empty"
if [[ $sudo_package == sudo-rs ]]; then
    recipe+=" sudoers=debian-default${sudo_as:+ sudo-rs-as=$sudo_as}"
fi
# systemd 256 and later, in a container on a host with the legacy (v1 or hybrid) cgroup
# hierarchy, cannot see a unit's control group become empty: every stop (a user's
# manager after logout, a shutdown) then waits out its stop timeout, 90 s by default
# and 120 s for user@.service, and a login that needs that user's manager waits with
# it. A host with the unified hierarchy does not need this.
stop_timeout=
case $suite in
trixie) stop_timeout=10s ;;
esac
if [[ -n $stop_timeout ]]; then
    recipe+=" stop-timeout=$stop_timeout,user@"
fi
stamp_rel=etc/converge-base-image

log() { printf 'base-image: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and systemd-nspawn need it)"

install_missing_packages() {
    local want=(systemd-container debootstrap openssh-client) missing=() pkg
    for pkg in "${want[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${missing[@]}" >&2; then
        apt-get update >&2
        apt-get install -y --no-install-recommends "${missing[@]}" >&2
    fi
}

# Prints the first mirror of this machine's apt configuration that serves $suite.
find_mirror() {
    local f
    {
        # deb822 sources: one stanza per paragraph with URIs: and Suites: fields.
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -r $f ]] || continue
            awk -v suite="$suite" '
                function flush() {
                    if (uris != "" && (" " suites " ") ~ (" " suite " ")) {
                        split(uris, u, /[ \t]+/); print u[1]
                    }
                    uris = ""; suites = ""
                }
                /^[ \t]*$/ { flush(); next }
                tolower($1) == "uris:" { $1 = ""; sub(/^[ \t]+/, ""); uris = $0 }
                tolower($1) == "suites:" { $1 = ""; sub(/^[ \t]+/, ""); suites = $0 }
                END { flush() }
            ' "$f"
        done
        # One-line sources: deb [options] URI SUITE COMPONENTS...
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -r $f ]] || continue
            awk -v suite="$suite" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == suite) print $i
                }
            ' "$f"
        done
    } | head -n 1
}

ensure_key() {
    if [[ ! -s $dir.key || ! -s $dir.key.pub ]]; then
        rm -f "$dir.key" "$dir.key.pub"
        ssh-keygen -q -t ed25519 -N '' -C converge-test-hosts -f "$dir.key"
        log "generated test key $dir.key"
    fi
    chmod 600 "$dir.key"
}

# Installs the current public key as root's only authorized key in image $1.
install_key() {
    local root=$1
    install -d -m 700 "$root/root/.ssh"
    if ! cmp -s "$dir.key.pub" "$root/root/.ssh/authorized_keys"; then
        install -m 600 "$dir.key.pub" "$root/root/.ssh/authorized_keys"
    fi
}

# Removes directory trees, first unmounting whatever an interrupted debootstrap
# left mounted inside them (proc, sys, ...). Never crosses into a mount.
remove_trees() {
    local tree mnt
    for tree in "$@"; do
        [[ -e $tree ]] || continue
        awk '{ print $2 }' /proc/self/mounts | sort -r | while read -r mnt; do
            mnt=$(printf '%b' "$mnt") # /proc/self/mounts escapes spaces as \040
            if [[ $mnt == "$tree"/* ]]; then
                umount -l "$mnt" 2>/dev/null || true
            fi
        done
        rm -rf --one-file-system "$tree"
    done
}

build_image() {
    local mirror work
    mirror=${CONVERGE_MIRROR:-$(find_mirror)}
    # A machine's apt sources name its own release; the same Debian mirror serves the
    # others.
    [[ -n $mirror ]] || mirror=$(suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}") && find_mirror)
    [[ -n $mirror ]] || die "no apt source for suite '$suite' found in /etc/apt (set CONVERGE_MIRROR)"
    work=$(mktemp -d "$dir.building.XXXXXX")
    # shellcheck disable=SC2064 # expand $work now
    trap "remove_trees '$work'" EXIT
    chmod 755 "$work"
    log "debootstrap $suite from $mirror into $work (takes about a minute; output in $dir.build.log)"
    if ! debootstrap --variant=minbase --include="$packages" "$suite" "$work" "$mirror" \
        >"$dir.build.log" 2>&1; then
        tail -n 40 "$dir.build.log" >&2
        [[ -f $work/debootstrap/debootstrap.log ]] && tail -n 40 "$work/debootstrap/debootstrap.log" >&2
        die "debootstrap failed (full output: $dir.build.log)"
    fi

    # sshd: key-only root login, no reverse lookups. The listening port comes from
    # a per-host port.conf that the host's launcher bind-mounts over this file.
    cat >"$work/etc/ssh/sshd_config.d/converge.conf" <<'EOF'
PermitRootLogin prohibit-password
UseDNS no
EOF
    : >"$work/etc/ssh/sshd_config.d/port.conf"
    # Each host gets its hostname from systemd-nspawn --hostname and a fresh
    # machine id at boot.
    : >"$work/etc/hostname"
    chmod 644 "$work/etc/hostname"
    : >"$work/etc/machine-id"
    rm -f "$work/var/lib/dbus/machine-id"
    install_key "$work"
    if [[ -n $stop_timeout ]]; then
        install -d -m 755 "$work/etc/systemd/system.conf.d" "$work/etc/systemd/user.conf.d"
        printf '[Manager]\nDefaultTimeoutStopSec=%s\n' "$stop_timeout" \
            | tee "$work/etc/systemd/system.conf.d/converge-test.conf" \
            >"$work/etc/systemd/user.conf.d/converge-test.conf"
        install -d -m 755 "$work/etc/systemd/system/user@.service.d"
        printf '[Service]\nTimeoutStopSec=%s\n' "$stop_timeout" \
            >"$work/etc/systemd/system/user@.service.d/converge-test.conf"
    fi
    if [[ $sudo_package == sudo-rs ]]; then
        # Debian's sudo-rs ships no /etc/sudoers: an administrator writes Debian's
        # default one, which reads /etc/sudoers.d.
        install -d -m 755 "$work/etc/sudoers.d"
        cat >"$work/etc/sudoers" <<'EOF'
Defaults env_reset
Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
root ALL=(ALL:ALL) ALL
%sudo ALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
EOF
        chmod 440 "$work/etc/sudoers"
        if [[ $sudo_as == sudo ]]; then
            ln -s sudo-rs "$work/usr/bin/sudo"
            ln -s visudo-rs "$work/usr/bin/visudo"
        fi
    fi

    chroot "$work" apt-get clean
    rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/*.bin "$work"/var/log/*.log \
        "$work"/var/log/apt/* "$work"/tmp/* "$work"/debootstrap
    printf '%s\n' "$recipe" >"$work/$stamp_rel"

    if [[ -e $dir ]]; then
        local old
        old=$(mktemp -d "$dir.old.XXXXXX")
        mv "$dir" "$old/"
        remove_trees "$old"
    fi
    mv "$work" "$dir"
    trap - EXIT
    log "image ready: $dir ($(du -sh "$dir" | cut -f1))"
}

install_missing_packages
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
if ! flock -n 9; then
    log "waiting for another build of $dir"
    flock 9
fi
ensure_key
if [[ -f $dir/$stamp_rel && "$(cat "$dir/$stamp_rel")" == "$recipe" ]]; then
    install_key "$dir"
else
    # Leftovers of interrupted builds.
    remove_trees "$dir".building.* "$dir".old.*
    build_image
fi
