#!/usr/bin/env bash
# Builds the fuzz targets (if needed) and runs them with libFuzzer.
#
#   run.sh [TARGET|all] [SECONDS] [-- LIBFUZZER_FLAGS...]
#
# TARGET is FuzzModelInferRequest, FuzzModelInferRequestScan, FuzzWorkerFrame, FuzzGatewayRequests or all (the default);
# SECONDS is each target's run time (default 60). Targets run one after another. Each works on
# a copy of Corpus/TARGET in a temporary folder, so the inputs it finds never touch the
# committed corpus; crash, timeout and out-of-memory inputs, and each run's full log, go to
# artifacts/ (git-ignored). Exits 1 if any target found a crash.
#
# Environment: FUZZ_CONFIGURATION=debug|release (default debug), FUZZ_SCRATCH_PATH (default
# .build here), FUZZ_KEEP_CORPUS=DIR copies each run's grown corpus to DIR/TARGET.
# Extra flags after `--` go to every target's libFuzzer (e.g. -seed=1, -runs=N, -jobs=N).
set -euo pipefail

cd "$(dirname "$0")"
here=$(pwd)

all_targets=(FuzzModelInferRequest FuzzModelInferRequestScan FuzzWorkerFrame FuzzGatewayRequests)
which=${1:-all}
seconds=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
if [[ ${1:-} == "--" ]]; then shift; fi
extra_flags=("$@")

if [[ $which == all ]]; then
    targets=("${all_targets[@]}")
else
    targets=()
    for target in "${all_targets[@]}"; do
        [[ $target == "$which" ]] && targets=("$target")
    done
    if (( ${#targets[@]} == 0 )); then
        echo "run.sh: unknown target '$which' (one of: ${all_targets[*]} all)" >&2
        exit 2
    fi
fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || (( seconds == 0 )); then
    echo "run.sh: SECONDS must be a positive whole number, not '$seconds'" >&2
    exit 2
fi

configuration=${FUZZ_CONFIGURATION:-debug}
# Why not `--sanitize=fuzzer --sanitize=address`: SwiftPM passes those as two `-sanitize=` flags,
# in an order that changes from run to run (it keeps them in a Set), and the Swift driver gives
# a compile job only the last one. So half the builds had coverage without ASan and the other
# half ASan without coverage (libFuzzer then finds nothing: "no interesting inputs"), and every
# change of order rebuilt everything. One `--sanitize=fuzzer` keeps SwiftPM's flags fixed (and
# its link step right); the single combined flag after it is the one every Swift compile sees.
build=(swift build -c "$configuration" --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)
if [[ -n ${FUZZ_SCRATCH_PATH:-} ]]; then
    build+=(--scratch-path "$FUZZ_SCRATCH_PATH")
fi

mkdir -p artifacts
echo "== building ($configuration): ${build[*]}"
# The sanitizer link prints thousands of harmless ld.gold warnings; keep them in a log.
if ! "${build[@]}" > artifacts/build.log 2>&1; then
    grep -v "ld.gold: warning" artifacts/build.log | tail -40 >&2
    echo "run.sh: build failed; full log in artifacts/build.log" >&2
    exit 2
fi
bin=$("${build[@]}" --show-bin-path)

work=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$work/$target"
    cp -R "Corpus/$target" "$corpus"
    log="artifacts/$target.log"
    echo "== $target: ${seconds}s on a copy of Corpus/$target ($(ls "$corpus" | wc -l) seeds); log in FuzzTesting/$log"
    set +e
    "$bin/$target" \
        -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$here/artifacts/$target-" \
        ${extra_flags[@]+"${extra_flags[@]}"} \
        "$corpus" > "$log" 2>&1
    status=$?
    set -e
    # libFuzzer's last status line ("#N DONE cov: C ft: F corp: ... exec/s: E") and stats.
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    line="$target: exit $status, ${runs:-?} runs, ${rate:-?} exec/s; $last"
    summary+=("$line")
    if (( status != 0 )); then
        failed+=("$target")
        echo "-- $target FAILED (exit $status); the end of its log:" >&2
        tail -60 "$log" >&2
        ls -1 "artifacts/$target-"* 2>/dev/null | sed 's/^/   artifact: /' >&2 || true
    fi
    if [[ -n ${FUZZ_KEEP_CORPUS:-} ]]; then
        mkdir -p "$FUZZ_KEEP_CORPUS"
        rm -rf "${FUZZ_KEEP_CORPUS:?}/$target"
        cp -R "$corpus" "$FUZZ_KEEP_CORPUS/$target"
    fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if (( ${#failed[@]} > 0 )); then
    echo "run.sh: crashes in: ${failed[*]} (inputs in FuzzTesting/artifacts/; README.md says how to reproduce)" >&2
    exit 1
fi
