#!/usr/bin/env bats
# 95-idempotent: mq-send --id stores a send once per dedup window

load helpers

setup() {
	mq_setup
	T=$BATS_TEST_TMPDIR
}

@test "--id: a retried send is stored once, and still exits 0" {
	run mq-send --id nightly-2026-11-25 t a b
	expect_status 0
	run mq-send --id nightly-2026-11-25 t a b
	expect_status 0
	run bash -c 'seq 3 | mq-send --id nightly-2026-11-25 t'
	expect_status 0
	run mq-send --id nightly-2026-11-26 t c
	expect_status 0
	run mq-recv t
	expect_output $'a\nb\nc'
}

@test "--id: concurrent sends of one ID store it exactly once" {
	local i pids=()
	for ((i = 0; i < 10; i++)); do
		mq-send --id same t "from $i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	run mq-recv t
	expect_status 0
	[[ ${#lines[@]} -eq 1 ]] || { echo "stored ${#lines[@]} times: $output" >&2; false; }
}

@test "--id: after dedup.window.ms the ID may be stored again; gc forgets it" {
	# a window a loaded machine's ASan build cannot outlast between sends
	run mq-topic create --config dedup.window.ms=2000 t
	run mq-send --id x t first
	run mq-send --id x t dropped
	sleep 2.2
	run mq-send --id x t second
	run mq-recv t
	expect_output $'first\nsecond'
	sleep 2.2
	run mq-topic -v gc t
	expect_status 0
	expect_contains "send IDs past dedup.window.ms forgotten"
}

@test "--id is carried in the records: -J shows it, mq-send -J keeps it" {
	run mq-send --id job-7 -k k t payload
	run bash -c 'mq-recv -J t'
	expect_contains '"id":"job-7"'
	run bash -c 'mq-recv -J t | mq-send -J copy && mq-recv -J copy'
	expect_contains '"id":"job-7"'
}

@test "--id: empty or longer than 120 bytes exits 64, nothing stored" {
	run mq-send --id '' t m
	expect_status 64
	run mq-send --id "$(printf '%0121d' 0)" t m
	expect_status 64
	run mq-send --id "$(printf '%0120d' 0)" t m
	expect_status 0
	run mq-recv t
	expect_output m
}

@test "--id with a failing send leaves no marker: the retry stores it" {
	run mq-send --id once -p 5 t m
	expect_status 66
	run mq-send --id once t m
	expect_status 0
	run mq-recv t
	expect_output m
}

# ---- crashes (issue 8 finding 5) -----------------------------------------

@test "--id: killed at its data sync, the retry stores nothing twice" {
	need_strace
	# the engine that makes fdatasync a system call strace can hit
	export MQ_IO=sync
	run strace -f -o /dev/null -e inject=fdatasync:signal=KILL:when=1 \
		mq-send --id job1 t a b c
	expect_status 137
	run mq-send --id job1 t a b c
	expect_status 0
	run mq-recv t
	expect_output $'a\nb\nc'
	run mq-send --id job1 t a b c
	expect_status 0
	run mq-recv t
	expect_output $'a\nb\nc'
}

# id_sweep HALF: for every other system call (HALF 0: the 1st, 3rd, ...;
# 1: the 2nd, 4th, ...; two tests, for the time limit of one) of one
# `mq-send --id` of a b c (keyless, on 3 partitions), kill a fresh send
# at that call, retry it, and check that each message is readable
# exactly once
id_sweep() {
	local log=$BATS_TEST_TMPDIR/calls name j bad=0 i=0 got n=0 stride=2
	[[ ${MQ_TEST_QUICK:-0} == 1 ]] && stride=8
	mq-topic create -P 3 ref
	mq-topic create -P 3 empty
	strace -f -qq -o "$log" mq-send --id sweep ref a b c
	# each call as NAME:J, its J-th invocation, from the first that
	# touches the spool on (what comes before is the dynamic loader)
	mapfile -t calls < <(sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1 &/p' "$log" |
		awk -v s="$MQ_SPOOL" '{ c = $1 ":" ++n[$1] } index($0, s) { on = 1 } on { print c }')
	[[ ${#calls[@]} -gt 40 ]] || { echo "only ${#calls[@]} calls traced" >&2; return 1; }
	for c in "${calls[@]}"; do
		name=${c%:*} j=${c#*:}
		i=$((i + 1))
		# every point; a quarter of them where MQ_TEST_QUICK thins
		((i % stride == $1)) || continue
		n=$((n + 1))
		cp -a "$MQ_SPOOL/topics/empty" "$MQ_SPOOL/topics/t$i"
		(strace -f -qq -o /dev/null -e inject="$name":signal=KILL:when="$j" \
			mq-send --id sweep "t$i" a b c) 2>/dev/null || true
		mq-send --id sweep "t$i" a b c || { echo "$c: retry exited $?" >&2; bad=1; }
		got=$(mq-recv "t$i" | sort | tr '\n' ' ')
		[[ $got == "a b c " ]] || { echo "killed at $c: read back '$got'" >&2; bad=1; }
	done
	mq-topic verify >&2 || { echo "verify exited $?" >&2; bad=1; }
	echo "# $n of ${#calls[@]} crash points" >&3
	return "$bad"
}

@test "--id: killed at each odd system call, a retry stores every message once" {
	need_strace
	export MQ_IO=sync
	id_sweep 1
}

@test "--id: killed at each even system call, a retry stores every message once" {
	need_strace
	export MQ_IO=sync
	id_sweep 0
}

@test "--id: a send cut short after some partitions stores the rest, once" {
	need_strace
	export MQ_IO=sync
	mq-topic create -P 4 t
	# keyed lines spread over the partitions, one batch each: the kill
	# at the second batch write leaves a send half stored
	seq 40 | awk '{ print "k" $1 ":m" $1 }' > "$BATS_TEST_TMPDIR/in"
	run strace -f -o /dev/null -e inject=pwrite64:signal=KILL:when=2 \
		mq-send --id half -K : t < "$BATS_TEST_TMPDIR/in"
	expect_status 137
	local before
	before=$(mq-recv t | wc -l)
	[[ $before -gt 0 && $before -lt 40 ]] || { echo "stored $before of 40 before the retry" >&2; false; }
	run -0 mq-send -v --id half -K : t < "$BATS_TEST_TMPDIR/in"
	local said=$output
	run bash -c 'mq-recv t | sort | uniq -c | awk "\$1 != 1" | head'
	expect_output ""
	output=$said
	expect_contains "cut short"
	run bash -c 'mq-recv t | wc -l'
	expect_output 40
}

@test "--id: a damaged marker is reported by verify and warned about by the send" {
	run -0 mq-send --id dmg t a b
	local m=$MQ_SPOOL/topics/t/ids/646d67
	[[ -f $m ]]
	head -c 40 /dev/urandom > "$m"
	run mq-topic verify t
	expect_status 65
	expect_contains "ids/646d67: damaged"
	run mq-send --id dmg t a b
	expect_status 0
	expect_contains "ids/646d67: damaged"
	run mq-recv t
	expect_output $'a\nb'
	run -0 mq-topic verify t
}

@test "--id: the marker honours --no-sync" {
	need_strace
	run strace -f -e trace=fsync,fdatasync -o "$BATS_TEST_TMPDIR/log" \
		mq-send --no-sync --id ns t a
	expect_status 0
	run grep -cE 'fsync|fdatasync' "$BATS_TEST_TMPDIR/log"
	expect_output 0
}

@test "--id: a retry after the window does not take the earlier send's records for its own" {
	need_strace
	export MQ_IO=sync
	run -0 mq-topic create --config dedup.window.ms=1000 t
	run -0 mq-send --id again t a b c
	sleep 1.2
	# past the window: stored again; killed before its batch is written
	run strace -f -o /dev/null -e inject=pwrite64:signal=KILL:when=1 \
		mq-send --id again t a b c
	expect_status 137
	run -0 mq-send --id again t a b c
	run mq-recv t
	expect_output $'a\nb\nc\na\nb\nc'
}
