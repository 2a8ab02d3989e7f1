#!/usr/bin/env bats
# every error exit of every program, many times over: the right status,
# one "prog: ..." line, and under the ASan build no leak report.
#
# LeakSanitizer only reports what is unreachable when the process exits,
# and whether a handle is still on the stack then depends on registers
# and timing: one run proves little (an exit that leaked 8 times in 10
# once passed its test).  Each case runs $MQ_EXIT_REPS times (default 8).

load helpers

REPS=${MQ_EXIT_REPS:-8}
# ASan start-up and the leak check cost 0.1 to 0.5 s a run on a busy machine
BATS_TEST_TIMEOUT=600

# The spool every test starts from, made once (ten tests made it ten
# times, 7 ASan starts and 2 of python each) and copied for each test.
setup_file() {
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
	export MQ_SPOOL=$BATS_FILE_TMPDIR/spool
	mq-topic create t
	mq-send t one two three
	mq-topic create -P 2 two
	mq-topic create --config max.message.bytes=16 small
	# c: three batches, the middle one damaged (not a torn tail)
	mq-send c alpha-message
	mq-send c bravo-message
	mq-send c charlie-message
	flip_byte "$(seg c)" "$(find_bytes "$(seg c)" bravo-message)"
}

setup() {
	local from=$MQ_SPOOL
	mq_setup
	cp -a "$from" "$MQ_SPOOL"
}

# exits STATUS CMD...: CMD exits STATUS every time, says why on stderr
# (with its program's prefix, or the usage; nothing with QUIET set, as a
# --timeout says nothing), and never reports a leak or other sanitizer
# error.  The loop variable is not i: bats' run uses i.
exits() {
	local want=$1 rep
	shift
	for ((rep = 0; rep < REPS; rep++)); do
		run --separate-stderr "$@"
		if [[ $status != "$want" ]]; then
			echo "run $rep of: $*: status $status, expected $want" >&2
			_mq_dump
			return 1
		fi
		if [[ $stderr == *Sanitizer* || $stderr == *"runtime error"* ]]; then
			echo "run $rep of: $*: sanitizer report" >&2
			_mq_dump
			return 1
		fi
		# verify reports damage on stdout, the rest say why on stderr
		if [[ $want != 0 && -z ${QUIET-} && $stderr != "$1: "* &&
		    $stderr != usage:* && ! ($stderr == "" && -n $output) ]]; then
			echo "run $rep of: $*: no '$1: ' message, usage or report" >&2
			_mq_dump
			return 1
		fi
	done
}

# exits_in STATUS INPUT CMD...: as exits, with INPUT on stdin
exits_in() {
	local want=$1 input=$2 rep
	shift 2
	for ((rep = 0; rep < REPS; rep++)); do
		run --separate-stderr "$@" <<<"$input"
		if [[ $status != "$want" || $stderr == *Sanitizer* ]]; then
			echo "run $rep of: $* <<<'$input': status $status, expected $want" >&2
			_mq_dump
			return 1
		fi
	done
}

@test "mq-topic: every error exit, repeated" {
	exits 64 mq-topic create -P 5 t
	exits 64 mq-topic create t
	exits 64 mq-topic create 'a/b'
	exits 64 mq-topic create --config nosuchkey=1 x
	exits 64 mq-topic create --config compression=bogus x
	exits 64 mq-topic create -P 0 x
	exits 64 mq-topic --bogus list
	exits 64 mq-topic list --bogus
	exits 64 mq-topic nosuchcommand
	exits 64 mq-topic config t nosuchkey=1
	exits 64 mq-topic config t partitions=1x
	exits 64 mq-topic reset g t --to nowhere
	exits 64 mq-topic dump
	exits 64 mq-topic dump -p x t
	exits 64 mq-topic dump --bogus t
}

@test "mq-topic: no such topic or spool, damage, repeated" {
	exits 66 mq-topic describe nosuch
	exits 66 mq-topic groups nosuch
	exits 66 mq-topic verify nosuch
	exits 66 mq-topic delete nosuch
	exits 66 mq-topic gc nosuch
	exits 66 mq-topic config nosuch
	exits 66 mq-topic dump nosuch
	exits 66 mq-topic dump -p 9 t
	exits 66 mq-topic -s "$BATS_TEST_TMPDIR/nospool" list
	exits 66 mq-topic -s "$BATS_TEST_TMPDIR/nospool" describe t
	exits 65 mq-topic verify c
	exits 65 mq-topic verify
}

@test "mq-topic: the success paths that walk lists, repeated" {
	mq-recv -g g t >/dev/null
	exits 0 mq-topic list -l
	exits 0 mq-topic describe t
	exits 0 mq-topic groups t
	exits 0 mq-topic groups --json t
	exits 0 mq-topic describe --json t
	exits 0 mq-topic dump t
	exits 0 mq-topic dump --json c
	exits 0 mq-topic stats
	exits 0 mq-topic stats --json
	exits 0 mq-topic stats --prometheus
	exits 0 mq-topic gc
	exits 0 mq-topic verify t
}

@test "mq-send: every error exit, repeated" {
	exits 64 mq-send
	exits 64 mq-send --bogus t x
	exits 64 mq-send 'a/b' x
	exits 64 mq-send -D '\q' t x
	exits 64 mq-send -D '' t x
	exits 64 mq-send -K '\q' t x
	exits 64 mq-send -K '' t x
	exits 64 mq-send -D '\t' -K '\q' t x
	exits 64 mq-send -z bogus t x
}

@test "mq-send: no such topic, partition or spool; too big; bad JSON, repeated" {
	exits 64 mq-send -p -1 t x
	exits 64 mq-send -J --whole t
	exits 66 mq-send --no-create nosuch x
	exits 66 mq-send -p 9 t x
	exits 66 mq-send -s "$BATS_TEST_TMPDIR/nospool" --no-create t x
	exits 65 mq-send small 0123456789abcdefghij
	exits_in 65 '0123456789abcdefghij' mq-send small
	exits_in 65 'not json' mq-send -J t
	exits_in 65 '{"payload":1}' mq-send -J t
}

@test "mq-send: --id already stored exits 0 early, repeated" {
	mq-send --id once t x
	exits 0 mq-send --id once t x
	exits_in 0 'y' mq-send --id once t
}

@test "mq-recv: every error exit, repeated" {
	exits 64 mq-recv
	exits 64 mq-recv --bogus t
	exits 64 mq-recv -F '%z' t
	exits 64 mq-recv -F '\q' t
	exits 64 mq-recv -D '\q' t
	exits 64 mq-recv -D '\t' -F '\q' t
	exits 64 mq-recv -J -F '%s' t
	exits 64 mq-recv -o nowhere t
	exits 64 mq-recv -j 2 t
}

@test "mq-recv: no such topic, partition or spool; damage; timeouts, repeated" {
	exits 66 mq-recv nosuch
	exits 66 mq-recv -p 9 t
	exits 66 mq-recv -s "$BATS_TEST_TMPDIR/nospool" t
	exits 65 mq-recv c
	exits 65 mq-recv -J c
	QUIET=1 exits 75 mq-recv -f --timeout 10ms -o end t
	QUIET=1 exits 75 mq-recv -c 99 --timeout 10ms t
}

@test "mq-recv: -x exits (a command that keeps failing, dead letters), repeated" {
	REPS=$((REPS / 3 + 1))
	exits 75 mq-recv -g gx --retries 0 -x false t
	exits 0 mq-recv -g gd --retries 0 --dead-letter dead -x false t
	exits 0 mq-recv -g gj -j 2 -x 'cat >/dev/null' t
}

@test "mq-replicate: every error exit, repeated" {
	mkdir -p "$BATS_TEST_TMPDIR/junk"
	echo x >"$BATS_TEST_TMPDIR/junk/file"
	exits 64 mq-replicate
	exits 64 mq-replicate -s "$MQ_SPOOL" "$MQ_SPOOL" "$BATS_TEST_TMPDIR/r"
	exits 64 mq-replicate a b c
	# one operand: the destination of the local spool, here itself
	exits 69 mq-replicate "$MQ_SPOOL"
	exits 64 mq-replicate --bogus "$MQ_SPOOL" "$BATS_TEST_TMPDIR/r"
	exits 69 mq-replicate "$MQ_SPOOL" "$MQ_SPOOL"
	exits 69 mq-replicate "$MQ_SPOOL" "$BATS_TEST_TMPDIR/junk"
	exits 66 mq-replicate "$BATS_TEST_TMPDIR/nospool" "$BATS_TEST_TMPDIR/r"
	exits 66 mq-replicate "$MQ_SPOOL" "$BATS_TEST_TMPDIR/junk/file"
	exits 66 mq-replicate --promote "$BATS_TEST_TMPDIR/nospool"
	# a directory that holds no spool is not "already a primary"
	exits 66 mq-replicate --promote "$BATS_TEST_TMPDIR/junk"
	exits 64 mq-replicate --promote "$MQ_SPOOL"
	exits 74 mq-replicate -e false "host:$MQ_SPOOL" "$BATS_TEST_TMPDIR/r"
	# a colon with no host before it or no path after it names nothing
	exits 64 mq-replicate -e false "$MQ_SPOOL" "host:"
	exits 64 mq-replicate -e false ":" "$BATS_TEST_TMPDIR/r"
	exits 64 mq-replicate -e false "$MQ_SPOOL" ":x"
}
