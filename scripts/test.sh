#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#
#   1. cargo fmt --check
#   2. cargo clippy (all targets, warnings are errors)
#   3. the base image of the test hosts (scripts/base-image.sh; needs root)
#   4. cargo test --workspace: unit tests, and integration tests on real hosts
#      (Debian 12 hosts)
#   5. the release matrix: the suites that matter per release run again on hosts of
#      Debian 11, Debian 13, Debian 13 with Debian's sudo-rs package and no sudo, and
#      Debian 13 with sudo-rs installed as sudo (docs/TESTING.md says which and why)
#   6. cargo doc (warnings are errors)
#
# Every step runs even when an earlier one failed; the exit status is 1 when any
# step failed. Without root the integration tests that need hosts print
# "SKIPPED: ..." and pass, unless CONVERGE_FLEET=required (CI sets it), which
# makes that a failure.
set -uo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root" || exit 1

bold=$'\e[1m' reset=$'\e[0m'
[[ -t 1 ]] || bold='' reset=''

failed=()
summary=()
step() {
    local name=$1 start=$SECONDS status=0
    shift
    printf '\n%s==> %s%s\n' "$bold" "$name" "$reset"
    printf '+ %s\n' "$*"
    "$@" || status=$?
    local took=$((SECONDS - start))
    if ((status == 0)); then
        summary+=("ok      ${took}s  $name")
    else
        summary+=("FAILED  ${took}s  $name (exit $status)")
        failed+=("$name")
    fi
}

base_image() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "not root: no test hosts; integration tests that need them will be skipped"
        [[ ${CONVERGE_FLEET:-} != required ]]
        return
    fi
    scripts/base-image.sh
}

step "format" cargo fmt --all --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
step "test hosts' base image" base_image
step "tests" cargo test --workspace --no-fail-fast

# Releases other than the default one, and the suites run on each: units in both
# scopes, lingering, sudoers with their sudo -l proof, become, drift and bad input.
releases=(bullseye trixie trixie-sudo-rs trixie-sudo-rs-as-sudo)
release_suites=(--test sidekiq_system --test user_services --test drift --test privilege
    --test bad_input --test sudo_flavours)
release_counts=()
release_tests() {
    local release=$1 log passed failed
    if [[ $(id -u) -ne 0 ]]; then
        echo "not root: no test hosts for $release"
        [[ ${CONVERGE_FLEET:-} != required ]]
        return
    fi
    CONVERGE_RELEASE=$release scripts/base-image.sh || return
    log=$(mktemp)
    CONVERGE_RELEASE=$release cargo test --no-fail-fast "${release_suites[@]}" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    passed=$(awk '/^test result:/ { n += $4 } END { print n + 0 }' "$log")
    failed=$(awk '/^test result:/ { n += $6 } END { print n + 0 }' "$log")
    rm -f "$log"
    release_counts+=("$release hosts: $passed tests passed, $failed failed")
    return "$status"
}
for release in "${releases[@]}"; do
    step "tests on $release hosts" release_tests "$release"
done
step "docs" env RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --workspace

printf '\n%s==> summary%s\n' "$bold" "$reset"
printf '  %s\n' "${summary[@]}"
if ((${#release_counts[@]})); then
    printf '  release matrix (bookworm: the "tests" step above)\n'
    printf '    %s\n' "${release_counts[@]}"
fi
if ((${#failed[@]})); then
    echo "scripts/test.sh: failing steps: ${failed[*]}"
    exit 1
fi
echo "scripts/test.sh: every step succeeded"
