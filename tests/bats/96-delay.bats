#!/usr/bin/env bats
# 96-delay: mq-send --delay / --at: stored now, visible when due, moved
# into the partition exactly once by whoever touches the topic

load helpers

setup() {
	mq_setup
	T=$BATS_TEST_TMPDIR
}

# has FILE TEXT: FILE holds a line TEXT
has() {
	grep -qxF -- "$2" "$1" 2>/dev/null
}

# scheduled TOPIC: the scheduled count describe prints
scheduled() {
	mq-topic describe "$1" | awk '$1 == "scheduled" { print $2 }'
}

# due TOPIC: the next due time (ms) describe prints
due() {
	mq-topic describe "$1" | awk '$1 == "next.due" { print $3 }'
}

# past MS: the clock has reached MS; an empty MS (describe shows no due
# time once a slow machine has moved the message) is past
past() {
	[[ -z $1 ]] || (($(now_ms) >= $1))
}

# early MS FILE TEXT: FILE holds a line TEXT though the clock has not
# reached MS; it reads FILE first, so a line written as the clock
# passes MS is not early
early() {
	local seen=0
	! has "$2" "$3" || seen=1
	((seen)) && ! past "$1"
}

@test "--delay: not visible before its time, then visible with an offset" {
	local t0 d n
	run mq-send t before
	t0=$(now_ms)
	run mq-send --delay 3s t later
	expect_status 0
	run mq-send t after
	d=$(due t)
	# none shown: already moved, its due time at least t0 + 3000
	[[ -z $d ]] || ((d >= t0 + 3000)) || { echo "due $d, sent at $t0" >&2; false; }
	d=${d:-$((t0 + 3000))}
	# read first, then the clock: what was read was read before due
	run mq-recv t
	n=$(scheduled t)
	if ! past "$d"; then
		expect_output $'before\nafter'
		expect_eq "$n" 1 "scheduled before due"
	fi
	wait_until 10 past "$d"
	run mq-recv -F '%o %s\n' t
	expect_output $'0 before\n1 after\n2 later'
	expect_eq "$(scheduled t)" 0 "scheduled after the move"
	run mq-topic verify t
	expect_status 0
}

@test "--at: an ISO time and epoch ms; a time in the past means now" {
	local d iso n
	d=$(($(now_ms) + 6000))
	iso=$(iso_ms "$d")
	run mq-send --at "$iso" t iso
	expect_status 0
	run mq-send --at "$d" t epoch
	expect_status 0
	run mq-send --at 2001-01-01T00:00:00Z t past
	expect_status 0
	expect_eq "$(due t)" "$d" "due time"
	run mq-recv t
	n=$(scheduled t)
	if ! past "$d"; then
		expect_output past
		expect_eq "$n" 2 "scheduled"
	fi
	wait_until 10 past "$d"
	run mq-recv t
	expect_output $'past\niso\nepoch'
}

@test "delivery order is due order, not send order" {
	local b
	b=$(($(now_ms) + 1000))
	run mq-send --at "$((b + 1000))" t third
	run mq-send --at "$((b + 500))" t second
	run mq-send --at "$b" t first
	wait_until 10 past "$((b + 1000))"
	run mq-recv t
	expect_output $'first\nsecond\nthird'
}

@test "a scheduled message keeps its key, headers and partition choice" {
	run mq-topic create -P 4 t
	run mq-send -k user-7 t plain
	run mq-send --delay 700ms -k user-7 -H a=1 -H b=two t delayed
	run mq-send --delay 700ms -p 3 t pinned
	sleep 1
	run mq-recv -F '%k|%h|%s\n' -o begin t
	local p1 p2
	p1=$(mq-recv -F '%p %s\n' t | awk '$2 == "plain" { print $1 }')
	p2=$(mq-recv -F '%p %s\n' t | awk '$2 == "delayed" { print $1 }')
	expect_eq "$p2" "$p1" "partition of the key"
	run mq-recv -J t
	expect_contains '"key":"user-7"'
	run bash -c "mq-recv -J t | grep delayed"
	expect_contains '"headers":[["a","1"],["b","two"]]'
	run mq-recv -F '%p %s\n' t
	expect_contains '3 pinned'
}

@test "mq-recv -f wakes for the due time with no other send" {
	run mq-topic create -P 2 t
	bg "$T/pout" "$T/perr" mq-recv -f -p 1 t
	local ppid=$BG_PID
	bg "$T/out" "$T/err" mq-recv -f t
	local pid=$BG_PID d t0 t1
	sleep 0.3
	t0=$(now_ms)
	run mq-send --delay 2s -p 1 t wake
	expect_status 0
	d=$(due t)
	# none shown: a send slower than 2 s, and it is moved already; its
	# due time is at least t0 + 2000
	! early "${d:-$((t0 + 2000))}" "$T/out" wake ||
		{ echo "visible before its time" >&2; false; }
	wait_until 10 has "$T/out" wake
	t1=$(now_ms)
	# then its timestamp + 2000 is at or after the due time mq-send took
	[[ -n $d ]] || d=$(($(mq-recv -F '%T\n' t) + 2000))
	echo "visible $((t1 - d)) ms after its due time" >&2
	# 50 ms is the claim (make bench); this machine is shared and slow
	((t1 >= d && t1 - d < 1500)) || { echo "woke at $((t1 - d)) ms" >&2; false; }
	stop_bg "$pid" TERM
	expect_eq "$BG_STATUS" 0 "follower exit"
	# a follower of one partition wakes too
	wait_until 5 has "$T/pout" wake
	stop_bg "$ppid" TERM
}

@test "a follower started after the send, and a group member, wake on time" {
	local d t0
	t0=$(now_ms)
	run mq-send --delay 2s t one
	d=$(due t)
	bg "$T/out" "$T/err" mq-recv -f t
	local p1=$BG_PID
	bg "$T/gout" "$T/gerr" mq-recv -f -g g t
	local p2=$BG_PID
	sleep 0.5
	! early "${d:-$((t0 + 2000))}" "$T/out" one ||
		{ echo "visible before its time" >&2; false; }
	wait_until 10 has "$T/out" one
	wait_until 10 has "$T/gout" one
	stop_bg "$p1" TERM
	stop_bg "$p2" TERM
	run mq-recv t
	expect_output one
}

@test "--id: a retried scheduled send is stored once" {
	run mq-send --delay 5s --id job-1 t a
	expect_status 0
	run mq-send --delay 5s --id job-1 t a
	expect_status 0
	local d n
	d=$(due t)
	n=$(scheduled t)
	past "$d" || expect_eq "$n" 1 "scheduled"
	wait_until 10 past "$d"
	run mq-send --id job-1 t a
	run mq-recv -J t
	expect_eq "${#lines[@]}" 1 "stored"
	expect_contains '"id":"job-1"'
}

@test "--id: a scheduled send cut short after some batches stores the rest on retry, each message once" {
	need_strace
	export MQ_IO=sync
	run -0 mq-topic create -P 3 t
	seq 30 >"$T/in"
	# killed at its third rename: the marker's, one batch's, the next's
	run strace -f -o /dev/null -e inject=renameat:signal=KILL:when=3 \
		mq-send --delay 1h --id job t <"$T/in"
	expect_status 137
	n=$(scheduled t)
	((n > 0 && n < 30)) || { echo "scheduled after the kill: $n" >&2; false; }
	run -0 mq-send --delay 1h --id job t <"$T/in"
	expect_eq "$(scheduled t)" 30 "scheduled after the retry"
	run -0 mq-send --delay 1h --id job t <"$T/in"
	expect_eq "$(scheduled t)" 30 "after a third send"
	# the same, moved when due: each once, and the retry adds nothing
	run -0 mq-topic create -P 3 u
	run strace -f -o /dev/null -e inject=renameat:signal=KILL:when=3 \
		mq-send --delay 1s --id job u <"$T/in"
	expect_status 137
	sleep 1.1
	run -0 mq-send --delay 1s --id job u <"$T/in"
	wait_until 10 past "$(due u)"
	run -0 mq-topic gc u
	mq-recv u | sort -n >"$T/out"
	expect_same_file "$T/out" "$T/in"
}

@test "--id: a damaged marker, then two attempts cut short: the last retry still finds the first send's batches" {
	need_strace
	export MQ_IO=sync
	run -0 mq-send --delay 1h --id job t a
	echo garbage >"$MQ_SPOOL"/topics/t/ids/6a6f62
	# warned, finds a, killed at its batch of b (renames: marker, batch)
	run strace -f -o /dev/null -e inject=renameat:signal=KILL:when=2 \
		mq-send --delay 1h --id job t a b
	expect_status 137
	run -0 mq-send --delay 1h --id job t a b
	expect_eq "$(scheduled t)" 2 "scheduled"
}

@test "--id: a damaged scheduled batch does not stop a retry's search" {
	run -0 mq-send --delay 1h t other
	local f
	f=$(find "$MQ_SPOOL"/topics/t/scheduled -type f -name '0*' | head -n 1)
	flip_byte "$f" $(($(fsize "$f") - 1))
	# an attempt of the ID was cut short a moment ago
	mkdir -p "$MQ_SPOOL"/topics/t/ids
	echo "pending $(($(now_ms) - 1000)) 0" >"$MQ_SPOOL"/topics/t/ids/6a6f62
	run -0 mq-send --id job t hello
	run mq-recv t
	expect_output hello
}

@test "cancel: removes a scheduled message sent with --id (0), then 66" {
	run mq-send --delay 30s --id order-9 t cancelled
	run mq-send --delay 1s --id order-10 t kept
	# its due time now: by the end of the cancels (slow under ASan) it
	# may have been moved already, and describe has none to show
	local d
	d=$(due t)
	run mq-topic cancel t order-9
	expect_status 0
	run mq-topic cancel t order-9
	expect_status 66
	run mq-topic cancel t never-sent
	expect_status 66
	run mq-topic cancel nosuch order-9
	expect_status 66
	run mq-topic cancel t
	expect_status 64
	wait_until 10 past "$d"
	run mq-recv t
	expect_output kept
	# once moved, it is no longer scheduled: nothing to cancel
	run mq-topic cancel t order-10
	expect_status 66
}

@test "describe and stats show scheduled counts and the next due time" {
	local due
	due=$(($(now_ms) + 60000))
	run mq-send --at "$due" t a b c
	run mq-send --at "$((due + 5000))" u d
	run mq-topic describe t
	expect_contains $'\nscheduled 3\n'
	expect_contains "next.due $(iso_ms "$due") $due"
	run mq-topic stats
	expect_status 0
	expect_contains "$(printf '%-24s %14s %s' t 3 "$(iso_ms "$due")")"
	expect_contains "$(printf '%-24s %14s %s' u 1 "$(iso_ms "$((due + 5000))")")"
	run bash -c 'mq-topic stats --json | python3 -c "
import json, sys
d = {t[\"topic\"]: t for t in json.load(sys.stdin)[\"topics\"]}
assert d[\"t\"][\"scheduled\"] == 3 and d[\"t\"][\"next_due\"] == '"$due"', d
assert d[\"u\"][\"scheduled\"] == 1
print(\"ok\")"'
	expect_output ok
	run mq-topic stats --prometheus
	expect_contains 'mq_scheduled{topic="t"} 3'
	expect_contains "mq_scheduled_next_due_ms{topic=\"t\"} $due"
}

@test "mq-topic gc moves what is due" {
	run mq-send --delay 500ms t x
	wait_until 10 past "$(due t)"
	ls "$MQ_SPOOL/topics/t/scheduled/"*/* >/dev/null
	run mq-topic gc t
	expect_status 0
	expect_eq "$(find "$MQ_SPOOL/topics/t/scheduled" -type f ! -name lock | wc -l)" 0 "files left"
	run mq-recv t
	expect_output x
}

@test "a reader that may not write the spool reads on without moving" {
	local sd=$MQ_SPOOL/topics/t/scheduled
	run mq-send t plain
	run mq-send --delay 300ms t later
	wait_until 10 past "$(due t)"
	if [[ $(id -u) -ne 0 ]]; then
		chmod a-w "$sd"
		run mq-recv t
		chmod u+w "$sd"
	elif unshare -m true 2>/dev/null; then
		# root writes anyway: a read-only bind mount stops it
		run unshare -m sh -c 'mount --bind "$1" "$1" &&
		    mount -o remount,bind,ro "$1" && exec mq-recv t' sh "$sd"
	else
		skip "root, and no mount namespace to make the spool read-only"
	fi
	expect_status 0
	expect_output plain
	run mq-recv t
	expect_output $'plain\nlater'
}

@test "bad durations and times exit 64, nothing stored" {
	local a
	for a in "--delay 1x" "--delay -5s" "--delay ''" "--at garbage" "--at 2026-13-45"; do
		eval "run mq-send $a t m"
		expect_status 64
	done
	run mq-send --delay 1s --print-offsets t m
	expect_status 64
	run mq-send --delay
	expect_status 64
	[[ ! -e $MQ_SPOOL/topics/t ]] || [[ -z $(mq-recv t) ]]
}

@test "a mover killed at any point leaves no duplicate and no loss" {
	need_strace
	local sc n i=0 want got st ns=(1 2 3 4 5 6)
	# every point; a third of them where MQ_TEST_QUICK thins (the killed
	# mover runs the sync engine in every pass, so the uring pass's whole
	# sweep covers the sync pass's points too)
	[[ ${MQ_TEST_QUICK:-0} == 1 ]] && ns=(1 4)
	# every topic gets its scheduled messages now; all are due together
	for sc in fsync fdatasync pwrite64 unlinkat renameat renameat2 openat; do
		for n in "${ns[@]}"; do
			i=$((i + 1))
			mq-topic create -P 2 "k$i" >/dev/null
			mq-send --delay 2s -k a "k$i" m1 m2
			mq-send --delay 2s -k b "k$i" m3
			mq-send --delay 2s "k$i" m4 m5
		done
	done
	sleep 2.2
	want=$(printf '%s\n' m1 m2 m3 m4 m5 other | sort)
	i=0
	for sc in fsync fdatasync pwrite64 unlinkat renameat renameat2 openat; do
		for n in "${ns[@]}"; do
			i=$((i + 1))
			MQ_IO=sync run strace -f -qq -o /dev/null \
			    -e inject="$sc:signal=KILL:when=$n" mq-recv "k$i"
			st=$status
			[[ $st -eq 137 || $st -eq 0 ]] || { echo "$sc $n: exit $st: $output" >&2; false; }
			# another writer appends before anyone recovers
			mq-send "k$i" other
			got=$(mq-recv "k$i" | sort)
			[[ $got == "$want" ]] || {
				echo "$sc when=$n (exit $st): got" $got >&2; false; }
			run mq-topic verify "k$i"
			expect_status 0
			expect_eq "$(scheduled "k$i")" 0 "$sc $n scheduled"
		done
	done
}

@test "a mover killed with its batch torn in the partition: recovery appends it again, once" {
	mq-topic create t
	local at=$(( $(date +%s%3N) + 1500 ))
	mq-send --at "$at" t moved
	local f rel
	f=$(ls "$MQ_SPOOL"/topics/t/scheduled/*/* | head -n 1)
	rel=${f#"$MQ_SPOOL"/topics/t/scheduled/}
	# the state a mover killed in the middle of its append leaves: the
	# marker (the file, partition 0, its next offset 0), and the batch's
	# header with half its body at the end of the partition's log
	printf '%s 0 0\n' "$rel" >"$MQ_SPOOL/topics/t/scheduled/moving"
	local size=$(stat -c %s "$f")
	head -c $((64 + (size - 64) / 2)) "$f" >>"$MQ_SPOOL/topics/t/0/00000000000000000000.log"
	while (( $(date +%s%3N) < at + 100 )); do sleep 0.1; done
	# the torn batch is not the move: the file is moved again, and the
	# message is delivered exactly once
	run mq-recv t
	expect_status 0
	expect_output moved
	run mq-topic verify t
	expect_status 0
	[[ -z $(ls "$MQ_SPOOL"/topics/t/scheduled/*/ 2>/dev/null) ]]
}
