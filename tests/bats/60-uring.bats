#!/usr/bin/env bats
# the I/O engine: io_uring, the plain-syscall fallback, MQ_IO

load helpers

T="$BATS_TEST_TMPDIR"

setup_file() {
	# prefer the one the Makefile built; else build a private copy
	if [[ -x $BATS_TEST_DIRNAME/../tools/nouring ]]; then
		export NOURING="$BATS_TEST_DIRNAME/../tools/nouring"
	else
		export NOURING="$BATS_FILE_TMPDIR/nouring"
		cc -o "$NOURING" "$BATS_TEST_DIRNAME/../tools/nouring.c"
	fi
}

setup() {
	mq_setup
	unset MQ_IO
	[[ -x $NOURING ]]
}

@test "nouring itself runs commands and passes their status" {
	run "$NOURING" true
	expect_status 0
	run "$NOURING" sh -c 'exit 3'
	expect_status 3
	run "$NOURING"
	expect_status 64
}

@test "nouring really blocks io_uring_setup (EPERM)" {
	run "$NOURING" python3 -c '
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
r = libc.syscall(425, 4, params)
sys.exit(0 if r == -1 and ctypes.get_errno() == errno.EPERM else 1)'
	expect_status 0
}

@test "nouring really blocks memfd_create (EPERM)" {
	run "$NOURING" python3 -c '
import errno, os, sys
try:
    os.memfd_create("x")
except OSError as e:
    sys.exit(0 if e.errno == errno.EPERM else 1)
sys.exit(1)'
	expect_status 0
}

@test "no memfd_create under nouring: a reader's buffer is plain memory, and batches larger than it or across its edges read whole" {
	python3 -c '
import sys
for i in range(400):
    n = [1500000, 300000, 7][i % 3] if i < 12 else 100 + i % 50
    sys.stdout.write("%d:" % i + chr(97 + i % 26) * n + "\n")' >"$T/in"
	head -n 1 "$T/in" | mq-send --no-sync -z none t
	tail -n +2 "$T/in" | mq-send --no-sync -z none t
	expect_reads_whole "$T/in" "$NOURING" mq-recv t
	tail -n +6 "$T/in" >"$T/in5"
	expect_reads_whole "$T/in5" "$NOURING" mq-recv -o 5 t
}

@test "MQ_IO unset under nouring: send and receive fall back to syscalls" {
	seq 100000 >"$T/in"
	run "$NOURING" mq-send t <"$T/in"
	expect_status 0
	run --separate-stderr "$NOURING" mq-send -z zlib t tail
	expect_status 0
	"$NOURING" mq-recv t >"$T/out"
	(cat "$T/in"; echo tail) | cmp - "$T/out"
	# and the spool it wrote is the same to a reader with io_uring
	mq-recv t | cmp - "$T/out"
	run "$NOURING" mq-topic verify t
	expect_status 0
	run "$NOURING" mq-topic describe t
	expect_status 0
}

@test "MQ_IO unset under nouring: follow works too" {
	run mq-send t first
	bg "$T/out" "$T/err" "$NOURING" mq-recv -f t
	wait_until 5 grep -qx first "$T/out"
	run "$NOURING" mq-send t second
	expect_status 0
	wait_until 5 grep -qx second "$T/out"
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
}

@test "MQ_IO=sync under nouring works" {
	run env MQ_IO=sync "$NOURING" mq-send t a b
	expect_status 0
	run env MQ_IO=sync "$NOURING" mq-recv t
	expect_status 0
	expect_output $'a\nb'
}

@test "MQ_IO=uring under nouring fails with a clear error" {
	run mq-send t stored-before
	run --separate-stderr env MQ_IO=uring "$NOURING" mq-send t m
	[[ $status -ne 0 ]] || { echo "forced io_uring 'worked' under seccomp" >&2; _mq_dump; false; }
	[[ $stderr == mq-send:* ]] || { _mq_dump; false; }
	[[ ${stderr,,} == *uring* ]] || { echo "error does not name io_uring" >&2; _mq_dump; false; }
	run --separate-stderr env MQ_IO=uring "$NOURING" mq-recv t
	[[ $status -ne 0 ]] || { _mq_dump; false; }
	[[ $stderr == mq-recv:* ]] || { _mq_dump; false; }
	expect_eq "$output" "" "stdout"
	# nothing was stored by the failed send
	run mq-recv t
	expect_output "stored-before"
}

@test "MQ_IO=uring works where io_uring is allowed" {
	run env MQ_IO=uring mq-send t a b
	expect_status 0
	run env MQ_IO=uring mq-recv t
	expect_status 0
	expect_output $'a\nb'
}

@test "by default a bulk durable mq-send uses io_uring when the kernel allows it" {
	need_strace
	seq 200000 > "$T/in"
	run strace -f -qq -e signal=none -e trace=io_uring_setup -o "$T/trace" mq-send t < "$T/in"
	expect_status 0
	grep -q 'io_uring_setup(' "$T/trace" || { cat "$T/trace" >&2; false; }
	grep -v 'io_uring_setup(.*= -1' "$T/trace" | grep -q 'io_uring_setup(' ||
		{ echo "io_uring_setup failed:" >&2; cat "$T/trace" >&2; false; }
}

@test "left to choose, writes with no sync are pwrite(2) at any size, and a one-shot durable send sets up no ring" {
	need_strace
	"$MQ_BINDIR/mq-send" --no-sync probe x 2>/dev/null
	MQ_IO=uring "$MQ_BINDIR/mq-send" --no-sync probe x 2>/dev/null || skip "io_uring is not allowed here"
	# a buffered write through the ring goes to a kernel worker thread
	# and the writer waits for it: pwrite(2) is the same copy, sooner
	# (io.c).  Old builds wrote large batches through the ring.
	seq 200000 > "$T/in"
	run strace -f -qq -e signal=none -e trace=pwrite64 -o "$T/trace" mq-send --no-sync t < "$T/in"
	expect_status 0
	run grep -Ec 'pwrite64\(.*, [0-9]{5,}, [0-9]+\) += [0-9]{5,}$' "$T/trace"
	(( output > 0 )) || { cat "$T/trace" >&2; false; }
	# one small message with its sync: pwrite and fdatasync, no ring
	run strace -f -qq -e signal=none -e trace=io_uring_setup,pwrite64,fdatasync -o "$T/trace2" mq-send t m </dev/null
	expect_status 0
	run grep -c 'io_uring_setup(' "$T/trace2"
	expect_output "0"
	grep -q '^[0-9]* *fdatasync(' "$T/trace2" || { cat "$T/trace2" >&2; false; }
	run mq-recv t
	expect_status 0
	[[ ${lines[-1]} == m ]]
}

@test "left to choose, a one-shot --no-sync send and a one-shot read set up no ring they would not use; -v still names io_uring" {
	need_strace
	"$MQ_BINDIR/mq-send" --no-sync probe x 2>/dev/null
	MQ_IO=uring "$MQ_BINDIR/mq-send" --no-sync probe x 2>/dev/null || skip "io_uring is not allowed here"
	run strace -f -qq -e signal=none -e trace=io_uring_setup -o "$T/trace" mq-send --no-sync t m
	expect_status 0
	run grep -c 'io_uring_setup(' "$T/trace"
	expect_output "0"
	run strace -f -qq -e signal=none -e trace=io_uring_setup -o "$T/trace2" mq-recv -c 1 t
	expect_status 0
	expect_output "m"
	run grep -c 'io_uring_setup(' "$T/trace2"
	expect_output "0"
	# a bulk send still goes through the ring, and -v says which engine
	seq 200000 > "$T/in"
	run strace -f -qq -e signal=none -e trace=io_uring_setup -o "$T/trace3" mq-send --no-sync t < "$T/in"
	expect_status 0
	grep -v 'io_uring_setup(.*= -1' "$T/trace3" | grep -q 'io_uring_setup(' || { cat "$T/trace3" >&2; false; }
	run --separate-stderr mq-send -v --no-sync t m2
	expect_status 0
	[[ $stderr == *"io uring"* ]] || { _mq_dump; false; }
}

@test "MQ_IO=sync makes no io_uring calls" {
	need_strace
	run strace -f -qq -e signal=none -e trace=io_uring_setup,io_uring_enter -o "$T/trace" env MQ_IO=sync mq-send t m
	expect_status 0
	run grep -c io_uring "$T/trace"
	expect_output "0"
}

@test "MQ_IO=bogus exits 64" {
	run env MQ_IO=bogus mq-send t m
	expect_status 64
	expect_contains "MQ_IO"
	expect_missing "$MQ_SPOOL/topics/t"
	run mq-send t m
	expect_status 0
	run env MQ_IO=bogus mq-recv t
	expect_status 64
	expect_contains "MQ_IO"
}
