#!/usr/bin/env bash
# Coverage-guided fuzzing of egress-guard with AFL++ (cargo-afl, stable Rust).
#
#   fuzz/run.sh --ci                 CI: replay seeds and recorded crashes, then fuzz every
#                                    target FUZZ_SECONDS (default 60) s; fails on any crash
#   fuzz/run.sh [SECONDS] [TARGET..] a longer run (default 300 s per target, all targets),
#                                    one target at a time, nice'd; findings in fuzz/out/
#   fuzz/run.sh --replay             replay seeds and recorded crashes only
#
# Environment: FUZZ_SECONDS (CI run length per target), FUZZ_JOBS (fuzzers at once:
# 2 in CI on a machine with 2 cores or more, else 1), FUZZ_OUT (output folder),
# AFL_OPT_LEVEL (cargo-afl's optimisation level, default 3).
set -euo pipefail
cd "$(dirname "$0")"

TARGETS=(framing request_target json_filter policy form_filter)
mode=long
seconds=300
build_nice=19
jobs=1
case "${1:-}" in
    --ci) mode=ci; seconds="${FUZZ_SECONDS:-60}"; build_nice=0; jobs=$(( $(nproc) >= 2 ? 2 : 1 )); shift ;;
    --replay) mode=replay; shift ;;
    [0-9]*) seconds="$1"; shift ;;
esac
[ "$#" -gt 0 ] && TARGETS=("$@")
jobs="${FUZZ_JOBS:-$jobs}"
out="${FUZZ_OUT:-$PWD/out}"

# AFL++ unattended, as root, on a shared machine: no UI, no CPU pinning or governor
# check, no core-dump handler check; seeds that crash are reported by the replay
# step instead of stopping the fuzzer.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
    AFL_NO_AFFINITY=1 AFL_IGNORE_SEED_PROBLEMS=1 AFL_FAST_CAL=1 AFL_NO_WARN_INSTABILITY=1

step() { printf '== fuzz: %s\n' "$*"; }
now() { date +%s; }

install_afl() {
    if ! cargo afl --version >/dev/null 2>&1; then
        step "installing cargo-afl (builds AFL++ from the crate's bundled source)"
        local t0; t0=$(now)
        cargo install cargo-afl --locked --quiet
        step "cargo-afl installed in $(( $(now) - t0 )) s"
    fi
    # `cargo install` builds AFL++ for this rustc; after a rustc update it needs a rebuild.
    local msg
    msg=$(cargo afl config --build 2>&1) || grep -q "already built" <<<"$msg" || { echo "$msg"; exit 1; }
}

# An explicit --target keeps build scripts and proc macros out of cargo-afl's RUSTFLAGS
# (no instrumentation, no opt-level 3 for syn and friends): a third less build time.
host=$(rustc -vV | sed -n 's/^host: //p')
bin="target/$host/release"

build() {
    step "building the targets with AFL instrumentation"
    local t0; t0=$(now)
    nice -n "$build_nice" cargo afl build --release --locked --quiet --target "$host"
    step "built in $(( $(now) - t0 )) s"
}

# Every seed and every recorded crash input must pass its target's property.
replay() {
    local failed=0 t f
    for t in "${TARGETS[@]}"; do
        for f in corpus/"$t"/* regressions/"$t"/*; do
            [ -f "$f" ] && [ "$(basename "$f")" != README.md ] || continue
            # The trailing exit keeps the shell from exec-ing the binary, so its "Aborted" note lands in the log.
            if ! ("$bin/$t" <"$f" >/dev/null; exit $?) 2>"$out/replay.err"; then
                failed=$((failed + 1))
                echo "FAIL $t: $f"
                grep -m1 -A1 "panicked at" "$out/replay.err" | sed 's/^/    /' || true
            fi
        done
    done
    step "replay: $failed input(s) break a property"
    [ "$failed" -eq 0 ]
}

fuzz_one() {
    local t="$1" dir="$out/$t" t0
    mkdir -p "$dir"
    t0=$(now)
    nice -n 19 cargo afl fuzz -i corpus/"$t" -o "$dir" -x dict/"$t".dict -V "$seconds" -t 2000 \
        "$bin/$t" >"$dir/afl.log" 2>&1 || { tail -20 "$dir/afl.log"; return 2; }
    local stats="$dir/default/fuzzer_stats"
    step "$t: $(( $(now) - t0 )) s wall; $(stat_line "$stats")"
}

stat_line() {
    local s="$1"
    v() { sed -n "s/^$1 *: *//p" "$s"; }
    echo "execs $(v execs_done), $(v execs_per_sec)/s, corpus $(v corpus_count), edges $(v edges_found)/$(v total_edges) ($(v bitmap_cvg)), crashes $(v saved_crashes), hangs $(v saved_hangs)"
}

# Crash inputs of one target (the first five shown, each with the property it broke);
# counted in $crashes.
report_crashes() {
    local t="$1" c n=0
    for c in "$out/$t"/default/crashes/id:*; do
        [ -f "$c" ] || continue
        crashes=$((crashes + 1))
        n=$((n + 1))
        [ "$n" -le 5 ] || continue
        echo "CRASH $t: $c"
        ("$bin/$t" <"$c" >/dev/null; exit $?) 2>&1 | grep -m1 -A1 "panicked at" | sed 's/^/    /' || true
        printf '    input: '; head -c 300 "$c" | od -An -c | tr -s ' ' | tr -d '\n' | cut -c1-400; echo
    done
}

install_afl
build
mkdir -p "$out"
status=0
if [ "$mode" = ci ] || [ "$mode" = replay ]; then
    replay || status=1
    [ "$mode" = replay ] && exit "$status"
fi
# Up to $jobs fuzzers at once (each on its own core), all nice'd.
crashes=0
pids=()
for t in "${TARGETS[@]}"; do
    rm -rf "${out:?}/$t"
    step "$t: fuzzing for $seconds s"
    fuzz_one "$t" &
    pids+=("$!")
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || status=1
done
for t in "${TARGETS[@]}"; do
    report_crashes "$t"
done
step "$crashes crash input(s) found"
[ "$crashes" -eq 0 ] || status=1
exit "$status"
