# shellcheck shell=bash
# Helpers for shell suites; source it, define one function per case, then call `case_run`.
#
#   case_run NAME FUNCTION    runs FUNCTION in a subshell with `set -e`, bounded by
#                             CASE_TIMEOUT_SECONDS; records "pass|fail NAME" in
#                             $CONFORMANCE_RESULTS and prints the case's output if it failed.
#   fail MESSAGE              fails the current case with MESSAGE.
#   expect_eq WHAT EXPECTED ACTUAL

readonly CASE_TIMEOUT_SECONDS=${CASE_TIMEOUT_SECONDS:-30}
case_tmp=$(mktemp -d "${TMPDIR:-/tmp}/mqbridge-case.XXXXXX")
trap 'rm -rf "$case_tmp"' EXIT
case_failures=0

fail() {
    echo "FAILED: $*" >&2
    exit 1
}

expect_eq() {
    [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}

# A name unique to this run, so cases never see each other's queues.
unique_name() {
    echo "conf.$1.$$.$RANDOM$RANDOM"
}

case_run() {
    local name=$1 function=$2 status=0
    local directory
    directory=$(mktemp -d "$case_tmp/case.XXXXXX")
    local output="$directory/.output"
    (
        set -euo pipefail
        cd "$directory"
        "$function"
    ) >"$output" 2>&1 &
    local pid=$! deadline=$((SECONDS + CASE_TIMEOUT_SECONDS))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            pkill -TERM -P "$pid" 2>/dev/null || true
            kill -TERM "$pid" 2>/dev/null || true
            echo "FAILED: timed out after ${CASE_TIMEOUT_SECONDS}s" >>"$output"
            break
        fi
        sleep 0.05
    done
    wait "$pid" || status=$?
    if [ "$status" -eq 0 ] && ! grep -q '^FAILED: timed out' "$output"; then
        echo "PASSED $name"
        echo "pass $name" >>"${CONFORMANCE_RESULTS:-/dev/null}"
    else
        echo "FAILED $name"
        sed 's/^/    /' "$output"
        echo "fail $name" >>"${CONFORMANCE_RESULTS:-/dev/null}"
        case_failures=$((case_failures + 1))
    fi
}

# Ends the suite: non-zero if any case failed.
suite_end() {
    [ "$case_failures" -eq 0 ]
}
