#!/bin/sh
# run.sh - every test of `make check`, one summary line at the end.
#
# C unit tests of libspool, then the bats suites three times: the plain
# build with io_uring (the default engine), the plain build forced to
# the sync engine (MQ_IO=sync), and the AddressSanitizer+UBSan build.
# Then the lints: mandoc on the man pages, bash -n on the completions.
# The last line is "N passed, N failed[, N skipped]".
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp "${TMPDIR:-/tmp}/mq-check.XXXXXX")
trap 'rm -f "$log"' EXIT
pass=0 fail=0 skip=0

# count - tally a TAP stream read from $log, echoing failures
count() {
	p=$(grep -c '^ok ' "$log" | tr -d ' ')
	s=$(grep -c '^ok .*# [Ss][Kk][Ii][Pp]' "$log" | tr -d ' ')
	f=$(grep -c '^not ok ' "$log" | tr -d ' ')
	pass=$((pass + p - s)) skip=$((skip + s)) fail=$((fail + f))
	grep -A12 '^not ok ' "$log" | sed 's/^/    /'
	echo "  $1: $((p - s)) passed, $f failed, $s skipped"
}

echo "== unit tests"
: > "$log"
for t in tests/unit/test_*; do
	case $t in *.c) continue ;; esac
	"./$t" >> "$log" 2>&1 || echo "not ok - $t exited $?" >> "$log"
done
count "unit"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The first pass runs every sweep whole.  The other two run each suite
# too, with the long sweeps (every crash point, every bit flip) thinned
# by MQ_TEST_QUICK, and the error exits repeated where they can leak:
# under ASan (8 times), not in the plain builds (twice).
for run in "uring bin 0 2" "sync bin 1 2" "asan bin-asan 1 8"; do
	set -- $run
	echo "== bats ($1)"
	if [ "$1" = sync ]; then io=sync; else io=; fi
	MQ_IO=$io MQ_BINDIR=$(pwd)/$2 MQ_TEST_QUICK=$3 MQ_EXIT_REPS=$4 \
	    bats --tap tests/bats > "$log" 2>&1
	count "bats ($1)"
done

echo "== fuzzing (tests/fuzz: 10 s a target, and every regression input)"
make -s fuzz-check > "$log" 2>&1 || echo "not ok - make fuzz-check exited $?" >> "$log"
count "fuzz"

echo "== crash trials (tests/crash, short run)"
make -s crash-check > "$log" 2>&1 || echo "not ok - make crash-check exited $?" >> "$log"
count "crash"

echo "== power loss (tests/powerloss, short run)"
POWERLOSS_TRIALS=${POWERLOSS_TRIALS:-12} bash tests/powerloss/powerloss.sh > "$log" 2>&1
count "power loss"

echo "== lint"
: > "$log"
if mandoc -Tlint -Wwarning man/*.[1-8] > "$log.m" 2>&1 && [ ! -s "$log.m" ]; then
	echo "ok - mandoc -Tlint -Wwarning man/*" >> "$log"
else
	echo "not ok - mandoc -Tlint -Wwarning man/*" >> "$log"; cat "$log.m" >> "$log"
fi
rm -f "$log.m"
if cppcheck --enable=warning,performance,portability --std=c11 -D_GNU_SOURCE \
    --inline-suppr --quiet --error-exitcode=1 -I libspool -I cmd libspool cmd \
    >> "$log" 2>&1; then
	echo "ok - cppcheck: no findings in libspool/ and cmd/" >> "$log"
else
	echo "not ok - cppcheck: findings in libspool/ and cmd/" >> "$log"
fi
if bash -n completions/mq.bash 2>> "$log"; then
	echo "ok - bash -n completions/mq.bash" >> "$log"
else
	echo "not ok - bash -n completions/mq.bash" >> "$log"
fi
count "lint"

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
