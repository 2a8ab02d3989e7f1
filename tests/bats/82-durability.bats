#!/usr/bin/env bats
# mq-spool(5) DURABILITY, checked against the syscalls: the order of
# writes, syncs and renames in an strace log (tests/tools/durorder.py says
# which promise each rule is)

load helpers

setup() {
	mq_setup
	need_strace
	# the sync engine: every write and sync is a syscall of its own
	export MQ_IO=sync
	TRACE="$BATS_TEST_TMPDIR/trace"
}

# traced CMD...: run CMD under strace -f -y into $TRACE
traced() {
	strace -f -y -qq -o "$TRACE" -e trace=openat,write,pwrite64,fsync,fdatasync,rename,renameat,renameat2,ftruncate,mkdir,mkdirat,io_uring_enter "$@"
}

# check_order [--expect WHAT]...: the log keeps every promise
check_order() {
	run python3 "$MQ_TOOLS/durorder.py" "$@" "$TRACE" "$BATS_TEST_TMPDIR"
	if [[ $status != 0 ]]; then
		echo "--- broken promises ---" >&2
		printf '%s\n' "$output" >&2
		echo "--- trace (spool only) ---" >&2
		grep -F "$BATS_TEST_TMPDIR" "$TRACE" | cut -c1-240 >&2
		return 1
	fi
}

@test "durability: a send that creates the spool and the topic" {
	run traced mq-send t hello
	expect_status 0
	check_order --expect publish --expect datasync
}

@test "durability: a send that rolls a segment syncs the END before the next segment exists" {
	run mq-topic create --config segment.bytes=1024 t
	expect_status 0
	local i
	for i in 1 2 3 4 5; do
		seq 20 | mq-send t
	done
	expect_eq "$(segments t | wc -l)" 1 "segments before"
	seq 20 >"$BATS_TEST_TMPDIR/in"
	run traced mq-send t <"$BATS_TEST_TMPDIR/in"
	expect_status 0
	expect_eq "$(segments t | wc -l)" 2 "segments after"
	check_order --expect roll --expect datasync
}

@test "durability: a send that finds a closed segment without its successor" {
	run mq-topic create --config segment.bytes=1024 t
	expect_status 0
	local i
	for i in 1 2 3 4 5 6; do
		seq 20 | mq-send t
	done
	# the state a crash between the END and the next segment's creation
	# leaves (the batch in the new segment goes too: it was never there)
	rm "$(last_seg t)" "${MQ_SPOOL}/topics/t/0/00000000000000000100.index"
	expect_eq "$(segments t | wc -l)" 1 "segments before"
	run traced mq-send t x
	expect_status 0
	expect_eq "$(segments t | wc -l)" 2 "segments after"
	check_order --expect datasync
}

@test "durability: a group commit (mq-recv -g) syncs its offset file before it leaves" {
	run mq-send t a b c
	expect_status 0
	run traced mq-recv -g g -c 2 t
	expect_status 0
	expect_output $'a\nb'
	check_order --expect offset
}

@test "durability: an idempotent send (--id) syncs its messages before the id is recorded and before it exits" {
	run mq-send t first
	expect_status 0
	run traced mq-send --id job1 t a b c
	expect_status 0
	check_order --expect datasync
	# and when the ID is recorded by a rename into ids/, the data came first
	if grep -q 'rename.*/ids>' "$TRACE"; then
		check_order --expect id
	fi
}

@test "durability: --no-sync makes no fsync and no fdatasync, even when it rolls" {
	run mq-topic create --config segment.bytes=1024 t
	expect_status 0
	local i
	for i in 1 2 3 4 5; do
		seq 20 | mq-send t
	done
	seq 20 >"$BATS_TEST_TMPDIR/in"
	run traced mq-send --no-sync t <"$BATS_TEST_TMPDIR/in"
	expect_status 0
	expect_eq "$(segments t | wc -l)" 2 "segments after"
	run grep -E '(fsync|fdatasync)\(' "$TRACE"
	expect_status 1
}

@test "durability: verify --repair syncs the segments it cuts (torn tail, damaged tail)" {
	local s p
	run mq-send t alpha-message bravo-message
	expect_status 0
	run mq-send t charlie-message
	expect_status 0
	s=$(seg t)
	cut_bytes "$s" 3
	run traced mq-topic verify --repair t
	expect_status 0
	expect_contains "torn tail cut off"
	check_order
	grep -q 'ftruncate(' "$TRACE"

	run mq-send d alpha-message
	expect_status 0
	run mq-send d bravo-message
	expect_status 0
	s=$(seg d)
	p=$(batch_pos "$s" 2)
	flip_byte "$s" $((p + 20))
	run traced mq-topic verify --repair d
	expect_status 0
	expect_contains "damaged tail moved to"
	check_order
	grep -q 'ftruncate(' "$TRACE"
}

@test "durability: a topic deletion makes its stage durable in tmp/ (where gc finds it after a crash)" {
	run mq-send t a
	expect_status 0
	run traced mq-topic delete t
	expect_status 0
	check_order
	grep -q 'renameat.*/tmp>, "del\.' "$TRACE"
}
