#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#
#   1. cargo fmt --check
#   2. cargo clippy (all targets, warnings are errors)
#   3. the base image of the test hosts (scripts/base-image.sh; needs root)
#   4. cargo test --workspace: unit tests, and integration tests on real hosts
#   5. cargo doc (warnings are errors)
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
step "tests" cargo test --workspace
step "docs" env RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --workspace

printf '\n%s==> summary%s\n' "$bold" "$reset"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "scripts/test.sh: failing steps: ${failed[*]}"
    exit 1
fi
echo "scripts/test.sh: every step succeeded"
