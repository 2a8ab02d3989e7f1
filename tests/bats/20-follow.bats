#!/usr/bin/env bats
# mq-recv -f: following, new partitions, segment rolls, --timeout, signals

load helpers

T="$BATS_TEST_TMPDIR"

# has FILE LINE: FILE has a line that is exactly LINE
has() {
	[[ -f $1 ]] && grep -qxF -- "$2" "$1"
}

@test "-f prints what is there, then a later send, and SIGTERM exits 0" {
	run mq-send t first
	expect_status 0
	bg "$T/out" "$T/err" mq-recv -f t
	local pid=$BG_PID
	wait_until 5 has "$T/out" first
	sleep 0.2
	run mq-send t second
	expect_status 0
	wait_until 5 has "$T/out" second
	run mq-send t third fourth
	wait_until 5 has "$T/out" fourth
	kill -0 "$pid"
	stop_bg "$pid" TERM
	expect_eq "$BG_STATUS" 0 "exit status after SIGTERM"
	printf 'first\nsecond\nthird\nfourth\n' | cmp - "$T/out"
	expect_eq "$(cat "$T/err")" "" "stderr"
}

@test "-f on an empty topic waits for the first message" {
	run mq-topic create t
	expect_status 0
	bg "$T/out" "$T/err" mq-recv --follow t
	sleep 0.5
	kill -0 "$BG_PID"
	run mq-send t hello
	wait_until 5 has "$T/out" hello
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
}

@test "-f -o end prints only messages sent after it started" {
	run mq-send t old
	bg "$T/out" "$T/err" mq-recv -f -o end t
	sleep 0.5
	run mq-send t new
	wait_until 5 has "$T/out" new
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$T/out")" "new" "output"
}

@test "-f follows every partition and wakes on each" {
	run mq-topic create -P 3 t
	expect_status 0
	bg "$T/out" "$T/err" mq-recv -f -F '%p %s\n' t
	sleep 0.3
	run mq-send -p 2 t two
	wait_until 5 has "$T/out" "2 two"
	run mq-send -p 0 t zero
	wait_until 5 has "$T/out" "0 zero"
	run mq-send -p 1 t one
	wait_until 5 has "$T/out" "1 one"
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
}

@test "-f sees a partition added while it runs" {
	run mq-topic create t
	expect_status 0
	bg "$T/out" "$T/err" mq-recv -f -F '%p %s\n' t
	sleep 0.3
	run mq-topic config t partitions=2
	expect_status 0
	run mq-send -p 1 t in-new-partition
	expect_status 0
	wait_until 5 has "$T/out" "1 in-new-partition"
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
}

@test "-f -p N follows one partition only" {
	run mq-topic create -P 2 t
	bg "$T/out" "$T/err" mq-recv -f -p 1 t
	sleep 0.3
	run mq-send -p 0 t not-me
	run mq-send -p 1 t me
	wait_until 5 has "$T/out" me
	sleep 0.2
	stop_bg "$BG_PID"
	expect_eq "$(cat "$T/out")" "me" "output"
}

@test "-f follows across segment rolls" {
	run mq-topic create --config segment.bytes=1024 t
	expect_status 0
	bg "$T/out" "$T/err" mq-recv -f t
	sleep 0.3
	local i
	for ((i = 0; i < 12; i++)); do
		seq $((i * 50 + 1)) $((i * 50 + 50)) | sed 's/$/ padding-padding-padding/' | mq-send --no-sync t
	done
	wait_until 10 lines_in "$T/out" 600
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
	seq 600 | sed 's/$/ padding-padding-padding/' | cmp - "$T/out"
	local n
	n=$(segments t | wc -l)
	((n > 1)) || { echo "expected several segments, got $n" >&2; false; }
	# and a reader started now reads the same across the segments
	mq-recv t | cmp - "$T/out"
}

@test "-f started on an old segment moves on to segments created later" {
	run mq-topic create --config segment.bytes=1024 t
	run mq-send t "$(printf 'x%.0s' {1..900})"
	run mq-send t "$(printf 'y%.0s' {1..900})"
	bg "$T/out" "$T/err" mq-recv -f -F '%o\n' t
	wait_until 5 lines_in "$T/out" 2
	local i
	for ((i = 0; i < 5; i++)); do
		run mq-send t "$(printf 'z%.0s' {1..900})"
	done
	wait_until 5 lines_in "$T/out" 7
	stop_bg "$BG_PID"
	expect_eq "$(tr '\n' ' ' <"$T/out")" "0 1 2 3 4 5 6 " "offsets"
	(($(segments t | wc -l) >= 3))
}

@test "--timeout with -f and no messages exits 75 within the bound" {
	run mq-topic create t
	local start end
	start=$(now_ms)
	run timeout 20 mq-recv -f --timeout 500ms t
	end=$(now_ms)
	expect_status 75
	expect_output ""
	((end - start >= 450)) || { echo "gave up too early: $((end - start)) ms" >&2; false; }
	((end - start < 5000)) || { echo "gave up too late: $((end - start)) ms" >&2; false; }
}

@test "--timeout 1s after the messages there were" {
	run mq-send t a b
	local start end
	start=$(now_ms)
	run timeout 20 mq-recv -f --timeout 1 t
	end=$(now_ms)
	expect_status 75
	expect_output $'a\nb'
	((end - start >= 900 && end - start < 6000)) || { echo "took $((end - start)) ms" >&2; false; }
}

@test "--timeout counts from the last message, not from the start" {
	run mq-topic create t
	bg "$T/out" "$T/err" mq-recv -f --timeout 2s t
	local pid=$BG_PID i
	for i in 1 2 3 4 5 6; do
		sleep 0.5
		mq-send --no-sync t "m$i"
	done
	# 3 s have passed: without the reset it would have given up at 2 s
	wait_until 5 has "$T/out" m6
	wait_bg "$pid" 10
	expect_eq "$BG_STATUS" 75 "exit status"
	expect_eq "$(tr '\n' ' ' <"$T/out")" "m1 m2 m3 m4 m5 m6 " "messages"
}

@test "-c with --timeout: enough messages -> 0, too few -> 75" {
	run mq-send t a b c
	run timeout 20 mq-recv -f -c 3 --timeout 5s t
	expect_status 0
	expect_output $'a\nb\nc'
	local start end
	start=$(now_ms)
	run timeout 20 mq-recv -f -c 5 --timeout 500ms t
	end=$(now_ms)
	expect_status 75
	expect_output $'a\nb\nc'
	((end - start < 5000))
	run timeout 20 mq-recv -c 2 --timeout 5s t
	expect_status 0
	expect_output $'a\nb'
}

@test "-c N with -f waits for messages still to come" {
	run mq-topic create t
	bg "$T/out" "$T/err" mq-recv -f -c 2 t
	local pid=$BG_PID
	sleep 0.3
	run mq-send t one
	sleep 0.3
	kill -0 "$pid"
	run mq-send t two three
	wait_bg "$pid" 5
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(tr '\n' ' ' <"$T/out")" "one two " "messages"
}

@test "-f: SIGINT exits 0" {
	run mq-send t a
	# background jobs of a script ignore SIGINT; give the follower the default
	bg "$T/out" "$T/err" python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' mq-recv -f t
	wait_until 5 has "$T/out" a
	stop_bg "$BG_PID" INT
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$T/err")" "" "stderr"
}

@test "-f with --timeout: SIGTERM still exits 0" {
	run mq-send t a
	bg "$T/out" "$T/err" mq-recv -f --timeout 60s t
	wait_until 5 has "$T/out" a
	stop_bg "$BG_PID" TERM
	expect_eq "$BG_STATUS" 0 "exit status"
}

@test "-f does not print a torn batch at the tail" {
	# a half-written batch at the tail is 'not yet written' for a follower too
	run mq-send t whole1
	bg "$T/out" "$T/err" mq-recv -f t
	wait_until 5 has "$T/out" whole1
	# the batch a crashed writer would have written next, cut short: make
	# it in a scratch spool, where it is offset 1 too
	mq-send -s "$T/scratch" t whole1
	mq-send -s "$T/scratch" t torn-torn-torn
	local s o
	o=$(MQ_SPOOL="$T/scratch" seg t)
	tail -c +"$(($(MQ_SPOOL="$T/scratch" batch_pos "$o" 2) + 1))" "$o" | head -c 70 >"$T/torn"
	s=$(seg t)
	cat "$T/torn" >>"$s"
	sleep 0.5
	expect_eq "$(cat "$T/out")" "whole1" "output"
	# the next writer cuts the torn bytes off; the follower goes on
	run mq-send t whole2
	expect_status 0
	wait_until 5 has "$T/out" whole2
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$T/out")" $'whole1\nwhole2' "output"
}

@test "-f -u N waits for offset N-1, prints it, and exits 0" {
	run bash -c 'seq 10 | mq-send t'
	bg "$T/out" "$T/err" mq-recv -f -u 12 t
	local pid=$BG_PID
	wait_until 5 lines_in "$T/out" 10
	sleep 0.3
	kill -0 "$pid" || { echo "exited before offset 11 came" >&2; false; }
	run mq-send t 11 12 13
	wait_bg "$pid" 5
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$T/out")" "$(seq 12)" "output"
}

@test "-f -o past the end waits for that offset" {
	run bash -c 'seq 10 | mq-send t'
	bg "$T/out" "$T/err" mq-recv -f -o 12 t
	sleep 0.5
	expect_eq "$(cat "$T/out")" "" "output before"
	run mq-send t 11 12 13 14
	wait_until 5 has "$T/out" 14
	stop_bg "$BG_PID"
	expect_eq "$(cat "$T/out")" $'13\n14' "output"
}

@test "an idle follower waits on inotify and does not poll" {
	need_strace
	run mq-send t first
	bg "$T/out" "$T/err" strace -f -qq -e signal=none -o "$T/trace" mq-recv -f t
	local pid=$BG_PID
	wait_until 5 has "$T/out" first
	sleep 0.5
	local n1 n2
	n1=$(wc -l <"$T/trace")
	sleep 2
	n2=$(wc -l <"$T/trace")
	grep -q 'inotify_add_watch(' "$T/trace" || { echo "no inotify watch" >&2; false; }
	((n2 - n1 < 20)) || { echo "$((n2 - n1)) system calls in 2 s of idling:" >&2; tail -n 20 "$T/trace" >&2; false; }
	run mq-send t second
	wait_until 5 has "$T/out" second
	# stop the traced mq-recv itself: strace would only detach from it
	local child
	child=$(pgrep -P "$pid" | head -n 1)
	[[ -n $child ]] && kill -TERM "$child"
	wait_bg "$pid" 5
	expect_eq "$BG_STATUS" 0 "exit status"
}

@test "a follower, plain, -p or a group member, exits 66 when its topic is deleted" {
	run mq-send t a
	bg "$T/o1" "$T/e1" mq-recv -f t
	local p1=$BG_PID
	bg "$T/o2" "$T/e2" mq-recv -f -p 0 t
	local p2=$BG_PID
	bg "$T/o3" "$T/e3" mq-recv -f -g g t
	local p3=$BG_PID
	wait_until 5 lines_in "$T/o1" 1
	wait_until 5 lines_in "$T/o2" 1
	wait_until 5 lines_in "$T/o3" 1
	run mq-topic delete --force t
	expect_status 0
	local p
	for p in "$p1" "$p2" "$p3"; do
		wait_bg "$p" 10
		expect_eq "$BG_STATUS" 66 "follower $p"
	done
	run cat "$T/e1"
	expect_output "mq-recv: t: the topic was deleted"
}

@test "--wait-topic: waits for a topic to be made, and with -f for it to be made again" {
	mkdir -p "$MQ_SPOOL"
	bg "$T/out" "$T/err" mq-recv -f --wait-topic t
	local pid=$BG_PID
	sleep 0.3
	kill -0 "$pid" || { echo "it did not wait" >&2; false; }
	run mq-send t one
	wait_until 5 lines_in "$T/out" 1
	run mq-topic delete t
	sleep 0.3
	kill -0 "$pid" || { echo "it stopped at the deletion" >&2; false; }
	run mq-send t two
	wait_until 5 lines_in "$T/out" 2
	expect_eq "$(cat "$T/out")" $'one\ntwo' "followed across the re-creation"
	stop_bg "$pid"
	grep -q "t: the topic was deleted; waiting for it to be made again" "$T/err"
	# without -f: wait, read what there is, exit; --timeout gives up with 75
	run mq-recv --wait-topic --timeout 200ms nosuch
	expect_status 75
	run mq-recv --wait-topic t
	expect_status 0
	expect_output two
	run mq-recv nosuch
	expect_status 66
}

@test "a follower at the tail lists its partition again only when a file comes, not per append" {
	need_strace
	run mq-topic create --config segment.bytes=4096 t
	run mq-send t first
	bg "$T/out" "$T/err" strace -f -qq -e trace=getdents64 -e signal=none \
	    -o "$T/trace" mq-recv -f t
	local pid=$BG_PID i n child
	wait_until 10 has "$T/out" first
	# one append at a time, each read before the next: 20 wakes
	for i in $(seq 1 20); do
		mq-send --no-sync t "m$i"
		wait_until 10 has "$T/out" "m$i"
	done
	n=$(grep -c 'getdents64(' "$T/trace")
	# a new segment (rolled at 4 KB) is still found
	for i in $(seq 1 60); do
		printf '%099d\n' "$i"
	done | mq-send --no-sync t
	mq-send --no-sync t last
	# stop the traced mq-recv itself: strace would only detach from it
	child=$(pgrep -P "$pid" | head -n 1)
	wait_until 10 has "$T/out" last || {
		# it failed once in a CI run (not reproduced since): say where
		# the follower was, what it had listed and read, what is there
		# (its stderr and whether it lives first: CI shows 12 lines)
		echo "follower ${child:-gone}: $(head -c 300 "$T/err")"
		proc_state "$child"; tail -n 4 "$T/trace"; tail -n 2 "$T/out"
		ls -l "$(partdir t)"; kill -TERM "$child"; false
	}
	[[ -n $child ]] && kill -TERM "$child"
	wait_bg "$pid" 5
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(grep -c . "$T/out")" 82 "messages read"
	((n < 20)) || { echo "$n getdents64 calls for 20 appends" >&2; false; }
}

# slow_lister TOPIC: a follower of TOPIC (BG_PID: strace; LISTER: the
# mq-recv it traces) whose every listing of a directory takes a second,
# caught up with the first message and, 0.3 s ago, listing its
# partition again because a file (not a segment) came
slow_lister() {
	bg "$T/out" "$T/err" strace -f -qq -e trace=getdents64 \
	    -e inject=getdents64:delay_enter=1000000 -o /dev/null mq-recv -f "$1"
	wait_until 10 has "$T/out" first
	# at its end, listed (two calls, two seconds): now waiting
	sleep 3
	LISTER=$(pgrep -P "$BG_PID" | head -n 1)
	[[ -n $LISTER ]]
	: >"$(partdir "$1")/x"
	sleep 0.3
}

@test "a follower at the end of a segment reads it again before it crosses to one made since" {
	need_strace
	run mq-topic create --config segment.bytes=4096 t
	run mq-send t first
	# the writer appends and rolls to a new segment while the follower,
	# at the old one's end, is listing
	slow_lister t
	mq-send --no-sync t second
	printf '%04000d\n' 3 | mq-send --no-sync t
	wait_until 10 lines_in "$T/out" 3 || true
	# stop the traced mq-recv itself, if it still runs
	kill -TERM "$LISTER" 2>/dev/null || true
	wait_bg "$BG_PID" 10
	expect_eq "$BG_STATUS" 0 "exit status"
	run cut -c 1-6 "$T/out"
	expect_output $'first\nsecond\n000000'
	expect_eq "$(segments t | wc -l)" 2 "segments"
}

@test "SIGTERM that comes while a follower is busy, not waiting, still stops it at once" {
	need_strace
	local child
	run mq-send t first
	# the signal comes during a listing, before the follower waits again
	slow_lister t
	kill -TERM "$LISTER"
	wait_bg "$BG_PID" 6
	expect_eq "$BG_STATUS" 0 "exit status"
	# the same for one waiting for its topic to be made (--wait-topic)
	bg "$T/out2" "$T/err2" strace -f -qq -e trace=inotify_add_watch \
	    -e inject=inotify_add_watch:delay_enter=1000000 -o /dev/null \
	    mq-recv -f --wait-topic u
	sleep 0.5
	child=$(pgrep -P "$BG_PID" | head -n 1)
	[[ -n $child ]]
	kill -TERM "$child"
	wait_bg "$BG_PID" 6
	expect_eq "$BG_STATUS" 0 "exit status, --wait-topic"
}

@test "a follower at the end of its segment reads each append with pread(2), not through io_uring (a line's latency)" {
	need_strace
	MQ_IO=uring "$MQ_BINDIR/mq-send" --no-sync probe x 2>/dev/null || skip "io_uring is not allowed here"
	mq-send t m0
	bg "$T/out" "$T/err" env MQ_IO=uring strace -f -qq -o "$T/trace" \
	    -e trace=pread64 "$MQ_BINDIR/mq-recv" -f -c 5 t
	wait_until 10 has "$T/out" m0
	local i n
	for i in 1 2 3 4; do
		mq-send --no-sync t "m$i"
		wait_until 10 has "$T/out" "m$i"
	done
	wait_bg "$BG_PID" 10
	expect_eq "$BG_STATUS" 0 "status"
	# the first read goes through the ring and comes back short; each
	# append after it is read by pread(2) (io_uring: none at all)
	n=$(grep -c 'pread64(.*"mqB1' "$T/trace" || true)
	[ "$n" -ge 4 ] || { cat "$T/trace" >&2; false; }
}

@test "a follower at the end reads each append once: no second read to find that nothing follows it (a line's latency)" {
	need_strace
	mq-send t m0
	bg "$T/out" "$T/err" strace -f -qq -o "$T/trace" -e trace=pread64 \
	    "$MQ_BINDIR/mq-recv" -f -c 9 t
	wait_until 10 has "$T/out" m0
	local n
	# one streaming producer, as in make bench: an append is one
	# inotify event (a one-shot mq-send's close is another)
	(for i in 1 2 3 4 5 6 7 8; do
		echo "m$i"
		wait_until 10 has "$T/out" "m$i"
	done) | mq-send --no-sync t
	wait_bg "$BG_PID" 10
	expect_eq "$BG_STATUS" 0 "status"
	# a short read took all the file held; until inotify wakes it, the
	# follower reads no more (the old code read once more per append,
	# and found nothing: a pread64 that returns 0)
	n=$(grep -cE 'pread64\(.*\) += 0$' "$T/trace" || true)
	[ "$n" -le 3 ] || { cat "$T/trace" >&2; false; }
}
