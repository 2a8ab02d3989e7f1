#!/bin/sh
# run.sh - every test of `make check`, one summary line at the end.
#
# C unit tests of libspool first.  Then, side by side as a queue of
# jobs ($MQ_CHECK_JOBS at a time, default 3): the bats suites three
# times -- the plain build with io_uring (the default engine), the
# plain build forced to the sync engine (MQ_IO=sync), and the
# AddressSanitizer+UBSan build -- one job a file and pass, and the
# fuzz, crash and power-loss runs.  The tests spend most of their time
# waiting (fsync, sleeps, followers: a bats file uses a third of a core),
# so even two cores run three jobs at once well.  Each job writes its own TAP
# log; the tally below reads them in a fixed order, so the report does
# not depend on which job ended first.  Then the lints: mandoc on the
# man pages, cppcheck, bash -n on the completions.
# The last line is "N passed, N failed[, N skipped]".
cd "$(dirname "$0")/.." || exit 1
self=$(pwd)/tests/run.sh
# The tests run python3 hundreds of times: take the system's, as on a
# fresh Debian machine, before a version manager's shim (pyenv's costs
# up to seconds a call on a busy machine, and tests time out).
PATH=/usr/bin:/bin:$PATH

# job - run one job of the queue: "bats PASS FILE" or "fuzz", "crash",
# "powerloss"; its TAP goes to $dir/PASS.FILE or $dir/NAME.
#
# The io_uring pass runs every sweep whole.  The other two run each
# suite too, with the long sweeps (every crash point, every bit flip)
# thinned by MQ_TEST_QUICK, and the error exits repeated where a leak
# can show: under ASan (8 times).  The plain builds run each once: they
# have no leak check, and the ASan pass repeats the same exits 8 times.
job() {
	start=$(date +%s) what=$*
	case $1 in
	bats)
		case $2 in
		uring)	set -- "$2" "$3" "" bin 0 1 ;;
		sync)	set -- "$2" "$3" sync bin 1 1 ;;
		asan)	set -- "$2" "$3" "" bin-asan 1 8 ;;
		esac
		MQ_IO=$3 MQ_BINDIR=$(pwd)/$4 MQ_TEST_QUICK=$5 MQ_EXIT_REPS=$6 \
		    bats --tap "$2" > "$dir/$1.${2##*/}" 2>&1 ;;
	fuzz)
		make -s fuzz-check > "$dir/fuzz" 2>&1 ||
		    echo "not ok - make fuzz-check exited $?" >> "$dir/fuzz" ;;
	crash)
		make -s crash-check > "$dir/crash" 2>&1 ||
		    echo "not ok - make crash-check exited $?" >> "$dir/crash" ;;
	powerloss)
		POWERLOSS_TRIALS=${POWERLOSS_TRIALS:-12} \
		    bash tests/powerloss/powerloss.sh > "$dir/powerloss" 2>&1 ;;
	esac
	# what each job took, for the slowest-jobs line (one short append)
	echo "$(($(date +%s) - start)) s $what" >> "$dir/times"
}

# A job of the queue is this script again, with --job.
if [ "$1" = --job ]; then
	shift
	job "$@"
	exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/mq-check.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export dir
pass=0 fail=0 skip=0

# count - tally the TAP logs named, echoing failures
count() {
	name=$1; shift
	cat "$@" > "$dir/all" 2>/dev/null
	p=$(grep -c '^ok ' "$dir/all" | tr -d ' ')
	s=$(grep -c '^ok .*# [Ss][Kk][Ii][Pp]' "$dir/all" | tr -d ' ')
	f=$(grep -c '^not ok ' "$dir/all" | tr -d ' ')
	pass=$((pass + p - s)) skip=$((skip + s)) fail=$((fail + f))
	grep -A12 '^not ok ' "$dir/all" | sed 's/^/    /'
	echo "  $name: $((p - s)) passed, $f failed, $s skipped"
}

echo "== unit tests"
: > "$dir/unit"
for t in tests/unit/test_*; do
	case $t in *.c) continue ;; esac
	"./$t" >> "$dir/unit" 2>&1 || echo "not ok - $t exited $?" >> "$dir/unit"
done
count "unit" "$dir/unit"

# handle_sigill: the ASan build traps undefined behaviour (Makefile)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:handle_sigill=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The queue, longest jobs first so that the last to start are short:
# the ASan pass is the slowest, and ls -S puts the biggest files first.
files=$(ls -S tests/bats/*.bats)
echo "== bats (uring, sync, asan), fuzzing (10 s a target), crash and power-loss trials: ${MQ_CHECK_JOBS:-3} jobs at a time"
{
	echo crash; echo fuzz; echo powerloss
	for p in asan uring sync; do
		for f in $files; do echo "bats $p $f"; done
	done
} > "$dir/queue"
xargs -P "${MQ_CHECK_JOBS:-3}" -L 1 sh "$self" --job < "$dir/queue"
for p in uring sync asan; do
	logs=
	for f in $files; do logs="$logs $dir/$p.${f##*/}"; done
	count "bats ($p)" $logs
done
count "fuzz" "$dir/fuzz"
count "crash" "$dir/crash"
count "power loss" "$dir/powerloss"
echo "  slowest jobs (wall time, ${MQ_CHECK_JOBS:-3} at a time):"
sort -rn "$dir/times" 2>/dev/null | head -6 | sed 's/^/    /'

echo "== lint"
log=$dir/lint
: > "$log"
if mandoc -Tlint -Wwarning man/*.[1-8] > "$log.m" 2>&1 && [ ! -s "$log.m" ]; then
	echo "ok - mandoc -Tlint -Wwarning man/*" >> "$log"
else
	echo "not ok - mandoc -Tlint -Wwarning man/*" >> "$log"; cat "$log.m" >> "$log"
fi
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
count "lint" "$log"

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
