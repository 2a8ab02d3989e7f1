#!/usr/bin/env bats
# consumer groups: mq-recv -g/-x/--filter/--rate, mq-topic groups/reset/delete-group

load helpers

T="$BATS_TEST_TMPDIR"

# has FILE LINE: FILE has a line that is exactly LINE
has() {
	[[ -f $1 ]] && grep -qxF -- "$2" "$1"
}

# groups_of TOPIC: `mq-topic groups` with runs of blanks squeezed to one space
groups_of() {
	mq-topic groups "$1" | awk '{ $1 = $1; print }'
}

# held TOPIC GROUP: how many partitions of GROUP a live member holds now
held() {
	mq-topic groups "$1" | awk -v g="$2" '$1 == g && $6 == "yes" { n++ } END { print n + 0 }'
}

# all_held TOPIC GROUP N: exactly N partitions are HELD yes
all_held() {
	[[ $(held "$1" "$2") == "$3" ]]
}

# union_lines N FILE...: the files together have at least N lines
union_lines() {
	local n=$1
	shift
	(($(cat -- "$@" 2>/dev/null | wc -l) >= n))
}

# union_unique N FILE...: the files together have at least N distinct lines
union_unique() {
	local n=$1
	shift
	(($(cat -- "$@" 2>/dev/null | sort -u | wc -l) >= n))
}

# parts_of FILE: the distinct partitions ("%p %o" lines) in FILE, sorted, space separated
parts_of() {
	cut -d' ' -f1 "$1" | sort -un | tr '\n' ' '
}

# expected_offsets PARTS PER: "p o" for p < PARTS, o < PER, sorted as sort(1) does
expected_offsets() {
	awk -v np="$1" -v per="$2" 'BEGIN { for (p = 0; p < np; p++) for (o = 0; o < per; o++) print p, o }' | sort
}

# check_union_once PARTS PER FILE...: every "p o" exactly once over the files
check_union_once() {
	local np=$1 per=$2
	shift 2
	local dups
	dups=$(cat -- "$@" | sort | uniq -d | head -n 5)
	if [[ -n $dups ]]; then
		echo "duplicates (first 5): $dups" >&2
		echo "duplicate count: $(cat -- "$@" | sort | uniq -d | wc -l)" >&2
		return 1
	fi
	if ! diff <(cat -- "$@" | sort) <(expected_offsets "$np" "$per") >"$T/union.diff"; then
		echo "union differs from expected (first lines of diff, < got > want):" >&2
		head -n 10 "$T/union.diff" >&2
		echo "missing: $(grep -c '^>' "$T/union.diff"), extra: $(grep -c '^<' "$T/union.diff")" >&2
		return 1
	fi
}

# timed_run CMD...: `run` CMD, setting ELAPSED (ms)
timed_run() {
	local start end
	start=$(now_ms)
	run "$@"
	end=$(now_ms)
	ELAPSED=$((end - start))
}

# sigint_ok CMD...: exec CMD with SIGINT at its default (background jobs of a
# script ignore it)
sigint_ok() {
	exec python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

# ---- resume, new groups, independence --------------------------------

@test "-g resumes after exit: -c 5 then -c 5 gives the next 5, then nothing" {
	seq 12 | mq-send t
	run timeout 10 mq-recv -g g -c 5 t
	expect_status 0
	expect_output "$(seq 1 5)"
	run timeout 10 mq-recv -g g -c 5 t
	expect_status 0
	expect_output "$(seq 6 10)"
	run timeout 10 mq-recv -g g t
	expect_status 0
	expect_output "$(seq 11 12)"
	run timeout 10 mq-recv -g g t
	expect_status 0
	expect_output ""
	# a new group starts at the beginning
	run timeout 10 mq-recv -g other t
	expect_status 0
	expect_output "$(seq 1 12)"
}

@test "-g with -o end for a new group starts at the end, then resumes from its commit" {
	seq 5 | mq-send t
	run timeout 10 mq-recv -g g -o end t
	expect_status 0
	expect_output ""
	bg "$T/out" "$T/err" mq-recv -g g -f -o end t
	wait_until 5 all_held t g 1
	run mq-send t new1 new2
	expect_status 0
	wait_until 5 has "$T/out" new2
	stop_bg "$BG_PID" TERM
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$T/out")" "$(printf 'new1\nnew2')" "output of -o end member"
	run mq-send t new3
	# committed now: -o end no longer applies, it resumes after new2
	run timeout 10 mq-recv -g g -o end t
	expect_status 0
	expect_output "new3"
}

@test "different groups each see every message, over several partitions" {
	run mq-topic create -P 3 t
	expect_status 0
	seq 30 | mq-send t
	run timeout 10 mq-recv -g a t
	expect_status 0
	expect_eq "$(printf '%s\n' "${lines[@]}" | sort -n)" "$(seq 30)" "group a"
	run timeout 10 mq-recv -g b t
	expect_status 0
	expect_eq "$(printf '%s\n' "${lines[@]}" | sort -n)" "$(seq 30)" "group b"
	# a consumes 3 more, b is not affected
	seq 31 33 | mq-send t
	run timeout 10 mq-recv -g a t
	expect_eq "$(printf '%s\n' "${lines[@]}" | sort -n)" "$(seq 31 33)" "group a, new"
	run timeout 10 mq-recv -g b -c 2 t
	expect_status 0
	expect_eq "${#lines[@]}" 2 "group b -c 2"
}

@test "-c N commits only what it printed" {
	seq 10 | mq-send t
	run timeout 10 mq-recv -g g -c 3 t
	expect_status 0
	expect_output "$(seq 3)"
	run groups_of t
	expect_output "$(printf 'GROUP PARTITION COMMITTED NEXT LAG HELD\ng 0 3 10 7 no')"
	run timeout 10 mq-recv -g g -c 1 -F '%o %s\n' t
	expect_status 0
	expect_output "3 4"
}

@test "-c N over several partitions: what was read ahead but not printed is not committed" {
	run mq-topic create -P 3 t
	expect_status 0
	local p
	for p in 0 1 2; do
		seq $((p * 100 + 1)) $((p * 100 + 10)) | mq-send -p "$p" t
	done
	run timeout 10 mq-recv -g g -c 4 t
	expect_status 0
	expect_eq "${#lines[@]}" 4 "first run"
	printf '%s\n' "${lines[@]}" >"$T/got"
	run timeout 10 mq-recv -g g -c 7 t
	expect_eq "${#lines[@]}" 7 "second run"
	printf '%s\n' "${lines[@]}" >>"$T/got"
	run timeout 10 mq-recv -g g t
	expect_status 0
	printf '%s\n' "${lines[@]}" >>"$T/got"
	expect_eq "$(sort -n "$T/got" | tr '\n' ' ')" "$({ seq 1 10; seq 101 110; seq 201 210; } | tr '\n' ' ')" "union of the runs"
}

# ---- members sharing the work ----------------------------------------

@test "3 members over 6 partitions get each of 60,000 messages exactly once" {
	run mq-topic create -P 6 t
	expect_status 0
	local i m pids=()
	for m in 1 2 3; do
		bg "$T/out$m" "$T/err$m" mq-recv -g g -f -F '%p %o\n' t
		pids+=("$BG_PID")
	done
	wait_until 10 all_held t g 6
	# all three have joined (a fresh spool: member slots 0..2), and the
	# partitions have been spread (rebalance every 200 ms)
	wait_until 10 test -e "$MQ_SPOOL/topics/t/groups/g/member.2"
	sleep 0.6
	wait_until 10 all_held t g 6
	local p sp=()
	for p in 0 1 2 3 4 5; do
		(seq 10000 | mq-send -p "$p" t) 3>&- &
		sp+=($!)
	done
	for p in "${sp[@]}"; do
		wait "$p"
	done
	wait_until 20 union_lines 60000 "$T/out1" "$T/out2" "$T/out3" || true
	for m in 0 1 2; do
		stop_bg "${pids[$m]}" TERM
		expect_eq "$BG_STATUS" 0 "member $((m + 1)) exit status"
	done
	check_union_once 6 10000 "$T/out1" "$T/out2" "$T/out3"
	# every member did a share of the work, and everything is committed
	for m in 1 2 3; do
		[[ -s $T/out$m ]] || { echo "member $m received nothing" >&2; false; }
	done
	run bash -c "mq-topic groups t | awk 'NR > 1 && (\$3 != 10000 || \$5 != 0) { print; bad = 1 } END { exit bad }'"
	expect_status 0
}

@test "two followers split four partitions evenly" {
	run mq-topic create -P 4 t
	expect_status 0
	bg "$T/a" "$T/a.err" mq-recv -g g -f -F '%p %o\n' t
	local a=$BG_PID
	bg "$T/b" "$T/b.err" mq-recv -g g -f -F '%p %o\n' t
	local b=$BG_PID
	wait_until 5 all_held t g 4
	wait_until 5 test -e "$MQ_SPOOL/topics/t/groups/g/member.1"
	sleep 1 # a few rebalance rounds (every 200 ms)
	wait_until 5 all_held t g 4
	local p
	for p in 0 1 2 3; do
		seq 10 | mq-send -p "$p" t
	done
	wait_until 10 union_lines 40 "$T/a" "$T/b"
	stop_bg "$a" TERM
	expect_eq "$BG_STATUS" 0 "member a exit status"
	stop_bg "$b" TERM
	expect_eq "$BG_STATUS" 0 "member b exit status"
	check_union_once 4 10 "$T/a" "$T/b"
	local pa pb
	pa=$(parts_of "$T/a")
	pb=$(parts_of "$T/b")
	expect_eq "$(wc -w <<<"$pa")" 2 "partitions of a ($pa; b has $pb)"
	expect_eq "$(wc -w <<<"$pb")" 2 "partitions of b ($pb; a has $pa)"
}

# producer STOPFILE TOPIC PARTS: one message per partition and mq-send, in
# rounds, until STOPFILE exists
producer() {
	local stop=$1 topic=$2 np=$3 i p
	for ((i = 1; ; i++)); do
		[[ -e $stop ]] && return 0
		for ((p = 0; p < np; p++)); do
			mq-send --no-sync -p "$p" "$topic" "r$i" || return 1
		done
		sleep 0.02
	done
}

# next_offsets TOPIC: NEXT of every partition, one "p next" per line
next_offsets() {
	mq-topic describe "$1" | awk '/^PARTITION /{ on = 1; next } on && NF == 6 { print $1, $3 } /^GROUP /{ on = 0 }'
}

# caught_up "p next" LINES -- FILE...: the files together have, for every
# partition, offset next-1
caught_up() {
	local lines=() line p n
	while [[ $1 != -- ]]; do
		lines+=("$1")
		shift
	done
	shift
	for line in "${lines[@]}"; do
		read -r p n <<<"$line"
		((n == 0)) && continue
		cat -- "$@" | grep -qxF "$p $((n - 1))" || return 1
	done
}

# took_over FILE PARTS "p next"...: FILE has, for each partition in PARTS
# (space separated), an offset at or past that partition's next
took_over() {
	local f=$1 parts=" $2 " line p n
	shift 2
	for line in "$@"; do
		read -r p n <<<"$line"
		[[ $parts == *" $p "* ]] || continue
		awk -v p="$p" -v n="$n" '$1 == p && $2 >= n { found = 1; exit } END { exit !found }' "$f" || return 1
	done
}

# sent_at_least N TOPIC: the partitions of TOPIC hold N messages or more
sent_at_least() {
	local nx
	mapfile -t nx < <(next_offsets "$2")
	(($(total_of "${nx[@]}") >= $1))
}

# total_of "p next"...: the sum of the nexts
total_of() {
	local line p n total=0
	for line in "$@"; do
		read -r p n <<<"$line"
		total=$((total + n))
	done
	echo "$total"
}

@test "a member killed with SIGKILL mid-stream loses nothing; the survivor takes over" {
	run mq-topic create -P 4 t
	expect_status 0
	bg "$T/a" "$T/a.err" mq-recv -g g -f -F '%p %o\n' t
	local a=$BG_PID
	bg "$T/b" "$T/b.err" mq-recv -g g -f -F '%p %o\n' t
	local b=$BG_PID
	wait_until 5 all_held t g 4
	wait_until 5 test -e "$MQ_SPOOL/topics/t/groups/g/member.1"
	sleep 1
	bg "$T/prod.out" "$T/prod.err" producer "$T/stop" t 4
	local prod=$BG_PID
	wait_until 10 lines_in "$T/a" 20
	wait_until 10 lines_in "$T/b" 20
	local pa pb
	pa=$(parts_of "$T/a")
	pb=$(parts_of "$T/b")
	expect_eq "$(wc -w <<<"$pa") $(wc -w <<<"$pb")" "2 2" "partitions of a ($pa) and b ($pb)"
	stop_bg "$a" KILL
	local start end nexts
	start=$(now_ms)
	mapfile -t nexts < <(next_offsets t)
	expect_eq "${#nexts[@]}" 4 "partitions in describe"
	# messages sent from now on to a's partitions reach the survivor
	wait_until 10 took_over "$T/b" "$pa" "${nexts[@]}"
	end=$(now_ms)
	# members look at each other every 200 ms; the bound leaves room for
	# the describe and the polling above (ASan runs them 3 times slower)
	local limit=1500
	[[ $MQ_BINDIR == *asan* ]] && limit=4000
	((end - start < limit)) || { echo "survivor took $((end - start)) ms to take over partitions $pa" >&2; false; }
	local at_kill
	at_kill=$(total_of "${nexts[@]}")
	# keep sending a while: 8 messages more (ASan under load sends slowly)
	wait_until 20 sent_at_least $((at_kill + 8)) t
	touch "$T/stop"
	wait_bg "$prod" 10
	expect_eq "$BG_STATUS" 0 "producer exit status"
	mapfile -t nexts < <(next_offsets t)
	wait_until 10 caught_up "${nexts[@]}" -- "$T/a" "$T/b"
	stop_bg "$b" TERM
	expect_eq "$BG_STATUS" 0 "survivor exit status"
	local total
	total=$(total_of "${nexts[@]}")
	((total >= at_kill + 8)) || { echo "only $((total - at_kill)) messages sent after the kill" >&2; false; }
	# nothing missing
	local line p n
	diff <(cat "$T/a" "$T/b" | sort -u) \
		<(for line in "${nexts[@]}"; do read -r p n <<<"$line"; seq 0 $((n - 1)) | sed "s/^/$p /"; done | sort) >&2
	# duplicates: at most one per partition, only in the killed member's partitions
	run bash -c "cat '$T/a' '$T/b' | sort | uniq -d"
	echo "duplicates: ${lines[*]} (a had partitions $pa)" >&2
	run bash -c "cat '$T/a' '$T/b' | sort | uniq -d | cut -d' ' -f1 | uniq -d"
	expect_output ""
	run bash -c "cat '$T/a' '$T/b' | sort | uniq -d | cut -d' ' -f1"
	for p in "${lines[@]}"; do
		[[ " $pa " == *" $p "* ]] || { echo "duplicate in partition $p, which a did not hold ($pa)" >&2; false; }
	done
}

@test "a member that exits on SIGTERM gives its partitions to the other, with no duplicates" {
	run mq-topic create -P 4 t
	expect_status 0
	bg "$T/a" "$T/a.err" mq-recv -g g -f -F '%p %o\n' t
	local a=$BG_PID
	bg "$T/b" "$T/b.err" mq-recv -g g -f -F '%p %o\n' t
	local b=$BG_PID
	wait_until 5 all_held t g 4
	wait_until 5 test -e "$MQ_SPOOL/topics/t/groups/g/member.1"
	sleep 1
	local p
	for p in 0 1 2 3; do
		seq 5 | mq-send -p "$p" t
	done
	wait_until 10 union_lines 20 "$T/a" "$T/b"
	[[ -s $T/a && -s $T/b ]] || { echo "a: $(parts_of "$T/a") b: $(parts_of "$T/b")" >&2; false; }
	stop_bg "$a" TERM
	expect_eq "$BG_STATUS" 0 "member a exit status"
	for p in 0 1 2 3; do
		seq 5 | mq-send -p "$p" t
	done
	wait_until 5 lines_in "$T/b" $((20 - $(wc -l <"$T/a") + 20))
	run parts_of "$T/b"
	expect_output "0 1 2 3 "
	wait_until 5 all_held t g 4
	stop_bg "$b" TERM
	expect_eq "$BG_STATUS" 0 "member b exit status"
	check_union_once 4 10 "$T/a" "$T/b"
}

# ---- -x ----------------------------------------------------------------

@test "-x: environment and payload on stdin; MQ_KEY unset without a key" {
	export OUT="$T/x"
	mkdir -p "$OUT"
	local before after
	before=$(now_ms)
	run mq-send -k k1 t "hello world"
	run mq-send t "no key here"
	run mq-send -k '' t "empty key"
	after=$(now_ms)
	run timeout 10 mq-recv -g g -x '{
		echo "T=$MQ_TOPIC"; echo "P=$MQ_PARTITION"; echo "O=$MQ_OFFSET"
		echo "K=${MQ_KEY-UNSET}"; echo "TS=$MQ_TIMESTAMP"
	} >"$OUT/env.$MQ_OFFSET"; cat >"$OUT/in.$MQ_OFFSET"' t
	expect_status 0
	expect_output ""
	local ts
	mapfile -t ts < <(mq-recv -F '%T\n' t)
	expect_eq "$(cat "$OUT/env.0")" "$(printf 'T=t\nP=0\nO=0\nK=k1\nTS=%s' "${ts[0]}")" "env of message 0"
	expect_eq "$(cat "$OUT/env.1")" "$(printf 'T=t\nP=0\nO=1\nK=UNSET\nTS=%s' "${ts[1]}")" "env of message 1"
	expect_eq "$(cat "$OUT/env.2")" "$(printf 'T=t\nP=0\nO=2\nK=\nTS=%s' "${ts[2]}")" "env of message 2 (empty key)"
	((ts[0] >= before - 1000 && ts[2] <= after + 1000)) || { echo "timestamps ${ts[*]} not in [$before, $after]" >&2; false; }
	printf 'hello world' | cmp - "$OUT/in.0"
	printf 'no key here' | cmp - "$OUT/in.1"
	printf 'empty key' | cmp - "$OUT/in.2"
	# all three committed
	run timeout 10 mq-recv -g g t
	expect_status 0
	expect_output ""
}

@test "-x: MQ_SPOOL, MQ_GROUP, MQ_ATTEMPT and MQ_HEADER_* in the environment" {
	export OUT="$T/x"
	mkdir -p "$OUT"
	run mq-send -H Content-Type=text/plain -H x.trace=abc t "with headers"
	# the handler's own mq-send, without -s, lands in the same spool
	cd "$BATS_TEST_TMPDIR"
	local rel=${MQ_SPOOL#"$BATS_TEST_TMPDIR"/}
	run env -u MQ_SPOOL timeout 10 mq-recv -s "$rel" -g g --retries 1 -x '{
		echo "S=$MQ_SPOOL"; echo "G=$MQ_GROUP"; echo "A=$MQ_ATTEMPT"
		echo "CT=$MQ_HEADER_CONTENT_TYPE"; echo "XT=$MQ_HEADER_X_TRACE"
	} >"$OUT/env.$MQ_ATTEMPT"; mq-send handled "seen $MQ_ATTEMPT"
	[ "$MQ_ATTEMPT" = 2 ]' t
	expect_status 0
	expect_eq "$(cat "$OUT/env.1")" "$(printf 'S=%s\nG=g\nA=1\nCT=text/plain\nXT=abc' "$MQ_SPOOL")" "first attempt"
	expect_eq "$(sed -n 3p "$OUT/env.2")" "A=2" "second attempt"
	run mq-recv handled
	expect_output $'seen 1\nseen 2'
	# without -g, MQ_GROUP is unset even when the caller had it
	run env MQ_GROUP=stale timeout 10 mq-recv -x 'echo "G=${MQ_GROUP-UNSET}" >"$OUT/nog"' t
	expect_eq "$(cat "$OUT/nog")" "G=UNSET" "MQ_GROUP without -g"
}

@test "-x --exec-timeout kills a hanging command and its children, a failure" {
	run mq-send t one
	local start=$(now_ms)
	run --separate-stderr timeout 20 mq-recv -g g --retries 1 --exec-timeout 300ms \
	    -x 'sleep 30 & echo $! >"$BATS_TEST_TMPDIR/child"; wait' t
	expect_status 75
	expect_contains "killed after --exec-timeout" stderr
	(($(now_ms) - start < 5000)) || { echo "took $(($(now_ms) - start)) ms" >&2; false; }
	# the command's own child went with it (gone, or a zombie whose
	# parent was killed, not yet reaped by init)
	sleep 0.2
	local child
	child=$(cat "$BATS_TEST_TMPDIR/child")
	if [[ -e /proc/$child/stat ]]; then
		run awk '{ print $3 }' "/proc/$child/stat"
		expect_output Z
	fi
	# with a dead-letter topic the group moves on, and it says why
	run timeout 20 mq-recv -g g --retries 0 --exec-timeout 200ms \
	    --dead-letter dlq -x 'sleep 30' t
	expect_status 0
	run mq-recv -F '%h\n' dlq
	expect_contains "mq-exit-status=137"
	# a command that finishes in time is not touched
	run mq-send t two
	run timeout 20 mq-recv -g g --exec-timeout 5s -x 'cat >/dev/null' t
	expect_status 0
}

@test "options that would do nothing are refused (64)" {
	run mq-send t x
	local args
	for args in "--retries 2 t" "--exec-timeout 1s t" "--timeout 1s t" \
	    "-D x -F %s t" "-0 -J t" "-j 2 t"; do
		run --separate-stderr mq-recv $args
		expect_status 64
		[[ $stderr == mq-recv:* ]] || { echo "mq-recv $args: $stderr" >&2; false; }
	done
}

@test "-x: a binary payload reaches the command byte for byte" {
	export OUT="$T/x"
	mkdir -p "$OUT"
	{
		printf 'a\0b\nc\r\n\0\0\xff\xfe'
		head -c 70000 /dev/urandom
		printf '\n'
	} >"$T/bin"
	mq-send --whole -p 0 t <"$T/bin"
	run timeout 10 mq-recv -x 'cat >"$OUT/bin.$MQ_OFFSET"' t
	expect_status 0
	expect_same_file "$OUT/bin.0" "$T/bin"
}

@test "-x: retries, then the dead-letter topic gets it with its headers; the group moves on" {
	export OUT="$T/x"
	mkdir -p "$OUT"
	run mq-send t ok1
	run mq-send -k kb -H orig=yes t bad
	run mq-send t ok2
	timed_run timeout 20 mq-recv -g g --retries 2 --dead-letter dlq \
		-x 'p=$(cat); echo "$p" >>"$OUT/log"; [ "$p" != bad ] || exit 3' t
	expect_status 0
	# 3 attempts of bad, then ok2
	expect_eq "$(cat "$OUT/log")" "$(printf 'ok1\nbad\nbad\nbad\nok2')" "commands run"
	((ELAPSED >= 300)) || { echo "retries took only $ELAPSED ms, want >= 100 + 200" >&2; false; }
	run timeout 10 mq-recv -F '%k|%s|%h\n' dlq
	expect_status 0
	expect_eq "${#lines[@]}" 1 "dead letters"
	expect_contains "kb|bad|"
	local h
	for h in orig=yes mq-source-topic=t mq-source-partition=0 mq-source-offset=1 \
		mq-exit-status=3 mq-attempts=3; do
		[[ ",${output#kb|bad|}," == *",$h,"* ]] || { echo "header $h missing in: $output" >&2; false; }
	done
	run mq-topic list
	expect_output "$(printf 'dlq\nt')"
	# committed past it: nothing left for the group
	run timeout 10 mq-recv -g g -x 'cat >>"$OUT/log2"' t
	expect_status 0
	expect_missing "$OUT/log2"
	run groups_of t
	expect_contains "g 0 3 3 0 no"
}

@test "-x: without --dead-letter a failing message stops it with 75, left uncommitted" {
	export OUT="$T/x"
	mkdir -p "$OUT"
	run mq-send t ok1 ok2 bad after
	run --separate-stderr timeout 20 mq-recv -g g --retries 1 \
		-x 'p=$(cat); echo "$p" >>"$OUT/log"; [ "$p" != bad ]' t
	expect_status 75
	[[ -n $stderr ]] || { echo "expected a message on stderr" >&2; false; }
	expect_eq "$(cat "$OUT/log")" "$(printf 'ok1\nok2\nbad\nbad')" "commands run"
	run groups_of t
	expect_contains "g 0 2 4 2 no"
	# the next run starts with it
	run timeout 10 mq-recv -g g -c 2 -F '%o %s\n' t
	expect_status 0
	expect_output "$(printf '2 bad\n3 after')"
	# no dead-letter topic appeared
	run mq-topic list
	expect_output "t"
}

@test "-x -j 4: order kept within each partition, every message once" {
	export OUT="$T/x"
	mkdir -p "$OUT"
	run mq-topic create -P 4 t
	expect_status 0
	local p
	for p in 0 1 2 3; do
		awk -v s=$((p + 7)) 'BEGIN { srand(s); for (i = 0; i < 15; i++) printf "0.0%d\n", int(rand() * 4) }' |
			mq-send -p "$p" t
	done
	run timeout 30 mq-recv -g g -j 4 \
		-x 'read d; sleep "$d"; echo "$MQ_PARTITION $MQ_OFFSET" >>"$OUT/log"' t
	expect_status 0
	run awk '{ if ($2 != n[$1]) { print "partition " $1 ": offset " $2 " after " n[$1] - 1; bad = 1 } n[$1] = $2 + 1 }
		END { for (p = 0; p < 4; p++) if (n[p] != 15) { print "partition " p ": " n[p] + 0 " done"; bad = 1 }
		exit bad }' "$OUT/log"
	expect_status 0
	expect_eq "$(wc -l <"$OUT/log")" 60 "commands run"
	run bash -c "mq-topic groups t | awk 'NR > 1 && \$5 != 0'"
	expect_output ""
}

@test "-x -j 4 runs commands of 4 partitions at once" {
	run mq-topic create -P 4 t
	expect_status 0
	local p
	for p in 0 1 2 3; do
		mq-send -p "$p" t "m$p"
	done
	timed_run timeout 20 mq-recv -g g -j 4 -x 'sleep 1' t
	expect_status 0
	((ELAPSED >= 1000 && ELAPSED < 2500)) || { echo "4 x sleep 1 with -j 4 took $ELAPSED ms" >&2; false; }
}

@test "-x -g -f: SIGTERM lets the running command finish and commits it" {
	export OUT="$T/x"
	mkdir -p "$OUT"
	run mq-send t one
	bg "$T/out" "$T/err" mq-recv -g g -f -x 'touch "$OUT/started"; sleep 0.7; cat >>"$OUT/log"; echo >>"$OUT/log"' t
	wait_until 5 test -e "$OUT/started"
	stop_bg "$BG_PID" TERM
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$OUT/log")" "one" "command output"
	run groups_of t
	expect_contains "g 0 1 1 0 no"
}

# ---- filters and rate --------------------------------------------------

@test "--filter GLOB on keys; skipped messages count as consumed" {
	printf '%s\n' apple:1 banana:2 avocado:3 nokey-4 b:5 a:6 | mq-send -K : t
	run timeout 10 mq-recv -g g --filter 'a*' -F '%k %s\n' t
	expect_status 0
	expect_output "$(printf 'apple 1\navocado 3\na 6')"
	run timeout 10 mq-recv -g g t
	expect_status 0
	expect_output ""
	# a keyless message matches as the empty key
	run timeout 10 mq-recv -g h --filter '' t
	expect_status 0
	expect_output "nokey-4"
}

@test "--filter NAME=GLOB on a header; two filters must both match; -c counts only matches" {
	run mq-send -H type=signup -k a1 t s1
	run mq-send -H type=login -k a2 t l1
	run mq-send -H type=signup -k b3 t s2
	run mq-send -H x=1 -H type=signup -k a4 t s3
	run mq-send -k a5 t plain
	run timeout 10 mq-recv -g g --filter type=signup t
	expect_status 0
	expect_output "$(printf 's1\ns2\ns3')"
	run timeout 10 mq-recv -g both --filter type=signup --filter 'a*' t
	expect_status 0
	expect_output "$(printf 's1\ns3')"
	run timeout 10 mq-recv -g both t
	expect_output ""
	run timeout 10 mq-recv -g g t
	expect_output ""
	run timeout 10 mq-recv -g c --filter 'type=s*' -c 2 t
	expect_status 0
	expect_output "$(printf 's1\ns2')"
	run timeout 10 mq-recv -g c -F '%o %s\n' t
	expect_output "$(printf '3 s3\n4 plain')"
}

@test "--rate 20/s holds its cap; a bad rate exits 64" {
	seq 30 | mq-send t
	timed_run timeout 20 mq-recv --rate 20/s t
	expect_status 0
	expect_output "$(seq 30)"
	((ELAPSED >= 1350)) || { echo "30 messages at 20/s took only $ELAPSED ms" >&2; false; }
	((ELAPSED < 5000)) || { echo "30 messages at 20/s took $ELAPSED ms" >&2; false; }
	run mq-recv --rate bad t
	expect_status 64
	run mq-recv --rate 5/x t
	expect_status 64
}

@test "--rate: each message is out before the wait, and SIGTERM ends the wait" {
	printf 'a\nb\n' | mq-send t
	bg "$T/out" "$T/err" mq-recv -g w --rate 1/m t
	# a reaches the reader now, not when a MiB of output has gathered
	wait_until 10 lines_in "$T/out" 1
	# b is due in a minute; the signal ends the wait at once
	kill -TERM "$BG_PID"
	wait_bg "$BG_PID" 5
	expect_eq "$BG_STATUS" 0 "status"
	expect_eq "$(cat "$T/out")" a "delivered"
	# b, not delivered, is the group's next; a was committed
	run timeout 10 mq-recv -g w t
	expect_status 0
	expect_output b
}

# ---- mq-topic groups / reset / delete-group / describe ------------------

@test "mq-topic groups: columns, never-committed partitions, HELD" {
	run mq-topic create t
	seq 3 | mq-send t
	run mq-topic groups t
	expect_status 0
	expect_output ""
	run timeout 10 mq-recv -g g -c 2 t
	run mq-topic config t partitions=2
	expect_status 0
	seq 4 | mq-send -p 1 t
	run groups_of t
	expect_status 0
	expect_output "$(printf 'GROUP PARTITION COMMITTED NEXT LAG HELD\ng 0 2 3 1 no\ng 1 - 4 4 no')"
	bg "$T/out" "$T/err" mq-recv -g g -f t
	wait_until 5 all_held t g 2
	wait_until 5 lines_in "$T/out" 5
	run groups_of t
	expect_output "$(printf 'GROUP PARTITION COMMITTED NEXT LAG HELD\ng 0 3 3 0 yes\ng 1 4 4 0 yes')"
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "member exit status"
	run groups_of t
	expect_output "$(printf 'GROUP PARTITION COMMITTED NEXT LAG HELD\ng 0 3 3 0 no\ng 1 4 4 0 no')"
}

@test "mq-topic reset --to beginning|end|N|@TIME, then -g resumes there" {
	seq 10 | mq-send t
	run timeout 10 mq-recv -g g t
	expect_eq "${#lines[@]}" 10 "first read"
	run mq-topic reset g t --to beginning
	expect_status 0
	run timeout 10 mq-recv -g g -c 1 t
	expect_output "1"
	run mq-topic reset g t --to 7
	expect_status 0
	run timeout 10 mq-recv -g g t
	expect_output "$(seq 8 10)"
	run mq-topic reset g t --to beginning
	run mq-topic reset g t --to end
	expect_status 0
	run groups_of t
	expect_contains "g 0 10 10 0 no"
	run timeout 10 mq-recv -g g t
	expect_output ""
	local mid
	sleep 0.02
	mid=$(now_ms)
	sleep 0.02
	run mq-send t late1 late2
	run mq-topic reset g t --to "@$mid"
	expect_status 0
	run timeout 10 mq-recv -g g -F '%o %s\n' t
	expect_output "$(printf '10 late1\n11 late2')"
	run mq-topic reset g t --to "@$(iso_ms "$mid")"
	expect_status 0
	run timeout 10 mq-recv -g g t
	expect_output "$(printf 'late1\nlate2')"
	run mq-topic reset g t --to bogus
	expect_status 64
}

@test "mq-topic reset applies to every partition" {
	run mq-topic create -P 2 t
	seq 3 | mq-send -p 0 t
	seq 4 | mq-send -p 1 t
	run timeout 10 mq-recv -g g t
	expect_eq "${#lines[@]}" 7 "first read"
	run mq-topic reset g t --to 1
	expect_status 0
	run groups_of t
	expect_output "$(printf 'GROUP PARTITION COMMITTED NEXT LAG HELD\ng 0 1 3 2 no\ng 1 1 4 3 no')"
	run timeout 10 mq-recv -g g -F '%p %o\n' t
	expect_eq "$(printf '%s\n' "${lines[@]}" | sort)" "$(printf '0 1\n0 2\n1 1\n1 2\n1 3')" "after reset --to 1"
}

@test "reset and delete-group while a member is live exit 75; delete-group removes the group" {
	seq 5 | mq-send t
	bg "$T/out" "$T/err" mq-recv -g g -f t
	local pid=$BG_PID
	wait_until 5 all_held t g 1
	wait_until 5 lines_in "$T/out" 5
	run mq-topic reset g t --to beginning
	expect_status 75
	run mq-topic delete-group g t
	expect_status 75
	stop_bg "$pid"
	expect_eq "$BG_STATUS" 0 "member exit status"
	run groups_of t
	expect_contains "g 0 5 5 0 no"
	run mq-topic delete-group g t
	expect_status 0
	run mq-topic groups t
	expect_status 0
	expect_output ""
	run mq-topic describe t
	expect_not_contains "GROUP"
	# a group of the same name starts again at the beginning
	run timeout 10 mq-recv -g g t
	expect_output "$(seq 5)"
}

@test "delete of a topic whose group has a live member exits 75 unless --force" {
	seq 5 | mq-send t
	bg "$T/out" "$T/err" mq-recv -g g -f t
	local pid=$BG_PID
	wait_until 5 all_held t g 1
	run --separate-stderr mq-topic delete t
	expect_status 75
	expect_contains "group g has a live member" stderr
	expect_contains "--force" stderr
	run mq-recv t
	expect_output "$(seq 5)"
	# a finished member holds nothing: delete goes through
	run mq-topic delete --force t
	expect_status 0
	expect_missing "$MQ_SPOOL/topics/t"
	stop_bg "$pid"
	seq 3 | mq-send u
	run timeout 10 mq-recv -g g u
	run mq-topic delete u
	expect_status 0
}

@test "reset and delete-group of a missing group or topic exit 66" {
	run mq-send t a
	run mq-topic reset nog t --to beginning
	expect_status 66
	run mq-topic delete-group nog t
	expect_status 66
	run mq-topic reset g nosuch --to end
	expect_status 66
	run mq-topic delete-group g nosuch
	expect_status 66
	run mq-topic groups nosuch
	expect_status 66
}

@test "describe shows the lag of each group" {
	seq 10 | mq-send t
	run timeout 10 mq-recv -g g -c 4 t
	expect_status 0
	run timeout 10 mq-recv -g done t
	run bash -c "mq-topic describe t | awk '/^GROUP /{ on = 1 } on { \$1 = \$1; print }'"
	expect_output "$(printf 'GROUP PARTITION COMMITTED LAG\ndone 0 10 0\ndone all 0\ng 0 4 6\ng all 6')"
}

# ---- signals -------------------------------------------------------------

@test "-g -f: SIGTERM exits 0 and what was printed is committed" {
	seq 5 | mq-send t
	bg "$T/out" "$T/err" mq-recv -g g -f t
	wait_until 5 lines_in "$T/out" 5
	stop_bg "$BG_PID" TERM
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$T/out")" "$(seq 5)" "output"
	seq 6 8 | mq-send t
	run timeout 10 mq-recv -g g t
	expect_output "$(seq 6 8)"
}

@test "-g -f: SIGINT exits 0 and what was printed is committed" {
	seq 5 | mq-send t
	bg "$T/out" "$T/err" sigint_ok mq-recv -g g -f t
	wait_until 5 lines_in "$T/out" 5
	run mq-send t six
	wait_until 5 has "$T/out" six
	stop_bg "$BG_PID" INT
	expect_eq "$BG_STATUS" 0 "exit status"
	expect_eq "$(cat "$T/out")" "$(seq 5; echo six)" "output"
	seq 7 8 | mq-send t
	run timeout 10 mq-recv -g g t
	expect_output "$(seq 7 8)"
}

# ---- usage errors --------------------------------------------------------

@test "group usage errors exit 64" {
	run mq-send t a
	run mq-recv -g g -p 0 t
	expect_status 64
	run mq-recv -x true -J t
	expect_status 64
	run mq-recv -x true -F '%s' t
	expect_status 64
	run mq-recv --dead-letter dlq t
	expect_status 64
	run mq-recv -j 2 t
	expect_status 64
	run mq-recv -x true -j 0 t
	expect_status 64
	run mq-recv -x true --dead-letter t t
	expect_status 64
	local g
	for g in a/b .. . '' "$(printf 'x%.0s' {1..250})" 'sp ace'; do
		run mq-recv -g "$g" t
		expect_status 64
	done
	# nothing was consumed or created by the refused runs
	run mq-topic groups t
	expect_output ""
	run mq-topic list
	expect_output "t"
}

# ---- damaged state files (issue 8 finding 7) -----------------------------

@test "garbage in a group offset file: verify exits 65 naming it, mq-recv -g warns and says where it restarts" {
	run -0 mq-send t a b c
	run -0 mq-recv -g g t
	local f=$MQ_SPOOL/topics/t/groups/g/0.offset
	head -c 64 /dev/urandom > "$f"
	run mq-topic verify t
	expect_status 65
	expect_contains "$f: damaged"
	run mq-topic verify
	expect_status 65
	run mq-recv -g g t
	expect_status 0
	expect_contains "$f: damaged"
	expect_contains "partition 0 starts again at offset 0"
	expect_contains $'a\nb\nc'
	# the group's own commit stands again: no warning, nothing redelivered
	run mq-recv -g g t
	expect_status 0
	expect_output ""
	run -0 mq-topic verify t
}

@test "an offset file of zeros (a first commit lost to a power cut) is no commit, without a warning" {
	run -0 mq-send t a
	mkdir -p "$MQ_SPOOL/topics/t/groups/g"
	head -c 64 /dev/zero > "$MQ_SPOOL/topics/t/groups/g/0.offset"
	run -0 mq-topic verify t
	run mq-recv -g g t
	expect_status 0
	expect_output a
}

@test "a damaged topic config: verify exits 65 naming it and checks the other topics; readers exit 65" {
	run -0 mq-send t a
	run -0 mq-send u b
	printf 'partitions=1\n\0\377garbage\n' > "$MQ_SPOOL/topics/t/config"
	run mq-topic verify
	expect_status 65
	expect_contains "$MQ_SPOOL/topics/t/config: damaged"
	run mq-recv t
	expect_status 65
	expect_contains "topics/t/config: damaged"
	run -0 mq-topic verify u
}
