#!/bin/sh
# run.sh - run the libFuzzer targets built by fuzz.mk
#
#   run.sh fuzz SECONDS TARGET...    fuzz each target for SECONDS
#   run.sh check SECONDS TARGET...   replay regress/TARGET/*, then fuzz;
#                                    one TAP line a target
#
# Each target works on a copy of corpus/TARGET in a temporary directory
# (so the committed corpus is never touched), with -max_len=65536.
# Crash, timeout and leak inputs are written to findings/TARGET/; move
# one into regress/TARGET/ once it is understood, and it is replayed by
# every `make fuzz-check` from then on.  FUZZ_ARGS adds libFuzzer flags.
# The targets are in FUZZ_BINDIR (fuzz.mk: build/fuzz/bin).
# FUZZ_TIMEOUT (default 5) is the seconds one input may take: every
# target does one input in milliseconds, so more is a hang.  In fuzz mode
# the targets run with -fork=1 and ignore crashes, timeouts and OOMs
# (each is saved to findings/ and fuzzing goes on), so that one known bug
# does not end the run; FUZZ_FORK=0 stops at the first instead.
cd "$(dirname "$0")/../.." || exit 1
mode=$1 secs=$2
shift 2
D=tests/fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/mq-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
tmo=${FUZZ_TIMEOUT:-5}
fork=
if [ "$mode" = fuzz ] && [ "${FUZZ_FORK:-1}" != 0 ]; then
	fork="-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
fi
n=0 failed=0
[ "$mode" = check ] && echo "1..$#"
for t in "$@"; do
	n=$((n + 1))
	bin=${FUZZ_BINDIR:-build/fuzz/bin}/$t
	mkdir -p "$work/$t/corpus" "$work/$t/tmp" "$D/findings/$t"
	cp "$D/corpus/$t/." "$work/$t/corpus/" -R 2>/dev/null || :
	dict=
	[ -f "$D/dict/$t.dict" ] && dict=-dict=$D/dict/$t.dict
	log=$work/$t/log
	why=

	# the known bad inputs, each once
	if [ "$mode" = check ] && [ -d "$D/regress/$t" ] &&
	    [ -n "$(ls -A "$D/regress/$t" 2>/dev/null)" ]; then
		for f in "$D/regress/$t"/*; do
			if ! TMPDIR=$work/$t/tmp "$bin" -timeout="$tmo" "$f" \
			    > "$log.regress" 2>&1; then
				why="$why regress/$t/$(basename "$f") fails;"
				grep -m 3 -E 'runtime error|ERROR: Address|ERROR: Leak|ALARM|SUMMARY' \
				    "$log.regress" | sed "s|^|# $t: $(basename "$f"): |"
			fi
		done
	fi

	before=$(ls "$D/findings/$t" | wc -l)
	TMPDIR=$work/$t/tmp "$bin" $dict -max_len=65536 -timeout="$tmo" \
	    -max_total_time="$secs" -print_final_stats=1 $fork \
	    -artifact_prefix="$D/findings/$t/" $FUZZ_ARGS \
	    "$work/$t/corpus" > "$log" 2>&1
	rc=$?
	after=$(ls "$D/findings/$t" | wc -l)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	[ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
	crashes=$((after - before))
	if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
		crashes=1
	fi
	if [ "$crashes" -gt 0 ]; then
		why="$why $(grep -m1 -E 'ERROR: |runtime error|ALARM|out-of-memory' "$log" |
		    sed 's/^==[0-9]*==//')"
		why="$why -> $(ls -t "$D/findings/$t" | head -1 | sed "s|^|$D/findings/$t/|")"
	fi
	if [ "$mode" = check ]; then
		if [ -z "$why" ]; then
			echo "ok $n - $t: ${runs:-0} runs, 0 crashes"
		else
			echo "not ok $n - $t: ${runs:-0} runs, $crashes crashes;$why"
			failed=$((failed + 1))
		fi
	else
		cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed 's/ *exec\/s.*//')
		echo "$t: ${runs:-0} runs in ${secs}s, $crashes crashes ($cov)$why"
		[ "$crashes" -eq 0 ] || failed=$((failed + 1))
	fi
done
[ "$failed" -eq 0 ]
