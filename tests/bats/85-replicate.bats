#!/usr/bin/env bats
# 85-replicate: mq-replicate copies spools, locally and through a pipe
# command (the remote path without ssh; 86-replicate-ssh runs real sshd)

load helpers

setup() {
	mq_setup
	T=$BATS_TEST_TMPDIR
	A=$T/a
	B=$T/b
	R=$MQ_BINDIR/mq-replicate
	[[ -x $R ]] || { echo "# $R: not built" >&2; return 1; }
	# a pipe command: runs the server here, ignoring the host, as ssh
	# would run it there (the words joined and given to a shell)
	cat >"$T/pipe" <<-'EOF'
	#!/bin/sh
	shift
	if [ -n "$MQ_COUNT" ]; then
		sh -c "$*" | tee -a "$MQ_COUNT"
	else
		exec sh -c "$*"
	fi
	EOF
	chmod +x "$T/pipe"
	E=(-e "$T/pipe" --remote-path "$R")
	# a lock holder for flock(1): it says it holds, then holds until the
	# test touches release (30 s at most, so that a failure cannot hang)
	HOLD="touch '$T/held'; i=0; while [ ! -e '$T/release' ] &&
	    [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done"
}

# same_logs A B: every segment file of spool A is byte-identical in B
same_logs() {
	local f n=0
	for f in "$1"/topics/*/[0-9]*/*.log; do
		expect_same_file "$2/${f#"$1"/}" "$f" || return 1
		n=$((n + 1))
	done
	((n > 0))
}

@test "a full copy, then an incremental one: same offsets, keys, headers, times, bytes" {
	seq 1000 | mq-send -s "$A" -k k1 -H h=v jobs
	mq-topic -s "$A" create -P 3 --config segment.bytes=4096 multi
	seq 2000 | mq-send -s "$A" multi
	run "$R" "$A" "$B"
	expect_status 0
	same_logs "$A" "$B"
	seq 1001 1010 | mq-send -s "$A" -k k2 jobs
	seq 500 | mq-send -s "$A" multi
	run "$R" "$A" "$B"
	expect_status 0
	same_logs "$A" "$B"
	mq-recv -s "$A" -J jobs >"$T/a.json"
	mq-recv -s "$B" -J jobs >"$T/b.json"
	expect_same_file "$T/b.json" "$T/a.json"
	run mq-topic -s "$B" verify
	expect_status 0
	run mq-topic -s "$B" config multi
	expect_contains "segment.bytes=4096"
}

@test "an incremental run moves what was appended plus a small constant" {
	seq 200000 | mq-send -s "$A" big
	run "$R" "${E[@]}" "host:$A" "$B"
	expect_status 0
	printf 'x%.0s' {1..100} | mq-send -s "$A" --whole big
	: >"$T/count"
	MQ_COUNT=$T/count run "$R" "${E[@]}" "host:$A" "$B"
	expect_status 0
	local n
	n=$(wc -c <"$T/count")
	echo "bytes from the source: $n" >&2
	((n < 100 + 64 + 1024))
	same_logs "$A" "$B"
}

@test "consumer group offsets travel, never past the replica's data" {
	seq 100 | mq-send -s "$A" t
	mq-recv -s "$A" -g g1 -c 40 t >/dev/null
	run "$R" "$A" "$B"
	expect_status 0
	run mq-recv -s "$B" -g g1 -c 1 t
	expect_output "41"
	# a commit the replica could not have the data for is clamped
	seq 101 200 | mq-send -s "$A" t
	run "$R" -t other "$A" "$B"
	mq-recv -s "$A" -g g2 -c 150 t >/dev/null
	run "$R" "$A" "$B"
	run mq-topic -s "$B" groups t
	expect_contains "g2"
	expect_contains "150"
}

@test "a replica refuses mq-send with 69 until promoted; promotion starts an epoch" {
	mq-send -s "$A" t one
	run "$R" "$A" "$B"
	expect_status 0
	run mq-send -s "$B" t two
	expect_status 69
	expect_contains "is a replica of"
	expect_contains "mq-replicate --promote"
	run mq-recv -s "$B" t
	expect_status 0
	expect_output "one"
	run "$R" --promote "$B"
	expect_status 0
	expect_contains "epoch 1"
	run mq-send -s "$B" t two
	expect_status 0
	# the new batch carries epoch 1 (header bytes 52..55)
	run python3 -c 'import sys,struct
d=open(sys.argv[1],"rb").read()
p=0; e=[]
while p+64<=len(d):
    bl=struct.unpack_from("<I",d,p+20)[0]; e.append(struct.unpack_from("<I",d,p+52)[0]); p+=64+bl
print(e)' "$B/topics/t/0/00000000000000000000.log"
	expect_output "[0, 1]"
}

@test "swapped arguments: a primary holding data is refused with 69, naming --demote" {
	mq-send -s "$A" t a1
	run "$R" "$A" "$B"
	mq-send -s "$A" t a2
	cp -r "$B" "$T/b.before"
	run "$R" "$B" "$A"
	expect_status 69
	expect_contains "--demote"
	run mq-recv -s "$A" t
	expect_output $'a1\na2'
	# a directory that is not a spool is refused too
	mkdir "$T/junk"
	echo precious >"$T/junk/file"
	run "$R" "$A" "$T/junk"
	expect_status 69
	expect_contains "not a spool"
	expect_missing "$T/junk/topics"
}

@test "divergence: the old primary is cut back, its messages kept aside and re-sendable" {
	seq 10 | mq-send -s "$A" t
	run "$R" "$A" "$B"
	run "$R" --promote "$B"
	mq-send -s "$B" t b1 b2
	mq-send -s "$A" t lost1 lost2 lost3
	run "$R" -v --demote "$B" "$A"
	expect_status 0
	expect_contains "3 messages kept in"
	# -v names what was copied after the cut, from where it was cut
	expect_contains "t/0: 10 to 12"
	local f
	f=$(ls "$A"/diverged/*.json)
	run mq-recv -s "$A" t
	expect_output "$(seq 10; echo b1; echo b2)"
	run mq-topic -s "$A" verify
	expect_status 0
	same_logs "$B" "$A"
	run mq-send -s "$B" -J t <"$f"
	expect_status 0
	run mq-recv -s "$B" -o 12 t
	expect_output $'lost1\nlost2\nlost3'
}

@test "--follow streams new messages and new topics, and mq-send --replicas 1 returns" {
	mq-send -s "$A" t first
	bg "$T/f.out" "$T/f.err" "$R" --follow "$A" "$B"
	local fp=$BG_PID
	run mq-send -s "$A" --replicas 1 --timeout 10s t second
	expect_status 0
	run mq-recv -s "$B" t
	expect_output $'first\nsecond'
	run mq-send -s "$A" --replicas 1 --timeout 10s newtopic hello
	expect_status 0
	run mq-recv -s "$B" newtopic
	expect_output "hello"
	# inotify, not a poll: a message appears without a pass being due
	mq-send -s "$A" t third
	wait_until 5 bash -c "mq-recv -s '$B' t | grep -q third"
	stop_bg "$fp"
}

@test "mq-send --replicas times out with 75 without a follower, messages kept" {
	mq-send -s "$A" t one
	run "$R" "$A" "$B"
	run mq-send -s "$A" --replicas 1 --timeout 300ms t two
	expect_status 75
	expect_contains "0 of 1 replicas"
	run mq-recv -s "$A" t
	expect_output $'one\ntwo'
	# two replicas: one acknowledged, the second not yet
	run "$R" "$A" "$T/c"
	run mq-send -s "$A" --replicas 2 --timeout 300ms t three
	expect_status 75
	run "$R" "$A" "$B"
	run "$R" "$A" "$T/c"
	run mq-send -s "$A" --replicas 2 --timeout 300ms t four
	expect_status 75
	expect_contains "0 of 2"
}

@test "--replicas 2 with two followers succeeds" {
	mq-send -s "$A" t zero
	bg "$T/f1.out" "$T/f1.err" "$R" --follow "$A" "$B"
	bg "$T/f2.out" "$T/f2.err" "$R" --follow "$A" "$T/c"
	run mq-send -s "$A" --replicas 2 --timeout 10s t one
	expect_status 0
	run mq-recv -s "$T/c" t
	expect_output $'zero\none'
}

@test "--delete propagates topic deletion and retention; without it nothing goes" {
	local i
	mq-topic -s "$A" create --config segment.bytes=4096 t
	for ((i = 0; i < 20; i++)); do seq 200 | mq-send -s "$A" t; done
	mq-send -s "$A" gone x
	run "$R" "$A" "$B"
	mq-topic -s "$A" delete gone
	mq-topic -s "$A" config t retention.bytes=8000
	mq-topic -s "$A" gc
	local na nb
	na=$(ls "$A"/topics/t/0/*.log | wc -l)
	nb=$(ls "$B"/topics/t/0/*.log | wc -l)
	((na < nb))
	run "$R" "$A" "$B"
	expect_status 0
	[[ -d $B/topics/gone ]]
	(($(ls "$B"/topics/t/0/*.log | wc -l) == nb))
	run "$R" --delete "$A" "$B"
	expect_status 0
	expect_missing "$B/topics/gone"
	(($(ls "$B"/topics/t/0/*.log | wc -l) == na))
	run mq-topic -s "$B" verify
	expect_status 0
}

@test "a replica ending where the source's oldest retained segment begins goes on from there, not taken for diverged" {
	local how dst
	for how in local pipe; do
		rm -rf "$A" "$B"
		dst=$B
		[[ $how == pipe ]] && dst=(x:"$B")
		mq-topic -s "$A" create --config segment.bytes=1024 t
		seq 20 | mq-send -s "$A" t
		run "$R" "${E[@]}" "$A" "${dst[@]}"
		expect_status 0
		# one batch of 180 past the segment's size: 0 closed at 20
		seq 21 200 >"$T/in"
		mq-send -s "$A" t <"$T/in"
		mq-topic -s "$A" config t retention.bytes=1024
		mq-topic -s "$A" gc t
		[[ $(ls "$A"/topics/t/0/*.log) == */00000000000000000020.log ]]
		run "$R" "${E[@]}" "$A" "${dst[@]}"
		expect_status 0
		expect_not_contains "diverged"
		expect_missing "$B/diverged"
		mq-recv -s "$B" t >"$T/out"
		seq 200 >"$T/want"
		expect_same_file "$T/out" "$T/want"
		run mq-topic -s "$B" verify
		expect_status 0
		mq-send -s "$A" t 201
		run "$R" "${E[@]}" --delete "$A" "${dst[@]}"
		expect_status 0
		[[ $(mq-recv -s "$B" t | head -n 1) == 21 ]]
		[[ $(mq-recv -s "$B" t | tail -n 1) == 201 ]]
		run mq-topic -s "$B" verify
		expect_status 0
	done
}

@test "an old primary ending where the new primary's oldest segment begins is still diverged: its own batches go aside" {
	mq-topic -s "$A" create --config segment.bytes=1024 t
	seq 20 | mq-send -s "$A" t
	run "$R" "$A" "$B"
	run "$R" --promote "$B"
	expect_status 0
	# the old primary goes on alone; the new one too, and retention
	# leaves it one segment that starts where the old primary ends
	seq 21 200 | sed 's/^/lost/' >"$T/lost"
	mq-send -s "$A" t <"$T/lost"
	seq 21 200 | sed 's/^/new/' >"$T/new"
	mq-send -s "$B" t <"$T/new"
	mq-send -s "$B" t <"$T/new"
	mq-topic -s "$B" config t retention.bytes=2000
	mq-topic -s "$B" gc t
	[[ $(ls "$B"/topics/t/0/*.log) == */00000000000000000200.log ]]
	run "$R" --demote "$B" "$A"
	expect_status 0
	expect_contains "diverged from the source"
	run mq-recv -s "$A" t
	expect_not_contains "lost"
	run bash -c "cat '$A'/diverged/*.json"
	expect_contains '"lost200"'
}

@test "--delete with -n says how many old segments it would delete, with -v how many it did" {
	local i
	mq-topic -s "$A" create --config segment.bytes=1024 t
	seq 21 200 >"$T/in"
	for i in 1 2 3 4; do mq-send -s "$A" t <"$T/in"; done
	run "$R" "$A" "$B"
	expect_status 0
	mq-topic -s "$A" config t retention.bytes=2000
	mq-topic -s "$A" gc t
	[[ $(ls "$A"/topics/t/0/*.log) == */00000000000000000540.log ]]
	(($(ls "$B"/topics/t/0/*.log | wc -l) == 4))
	(cd "$B" && find . -printf '%p %s\n' | sort) >"$T/before"
	run "$R" -n --delete "$A" "$B"
	expect_status 0
	expect_contains "t/0: would delete 3 segments below offset 540"
	(cd "$B" && find . -printf '%p %s\n' | sort) >"$T/after"
	expect_same_file "$T/after" "$T/before"
	run "$R" -n "$A" "$B"
	expect_not_contains "would delete"
	run "$R" -v --delete "$A" "$B"
	expect_status 0
	expect_contains "t/0: 3 segments below offset 540 deleted"
	(($(ls "$B"/topics/t/0/*.log | wc -l) == 1))
	# a replica ending where the source's oldest segment begins: its
	# head goes too, and the dry run counts it
	mq-topic -s "$A" create --config segment.bytes=1024 u
	for i in 1 2 3; do mq-send -s "$A" u <"$T/in"; done
	run "$R" "$A" "$B"
	mq-send -s "$A" u <"$T/in"
	mq-topic -s "$A" config u retention.bytes=2000
	mq-topic -s "$A" gc u
	[[ $(ls "$A"/topics/u/0/*.log) == */00000000000000000540.log ]]
	run "$R" -n --delete "$A" "$B"
	expect_contains "u/0: would delete 3 segments below offset 540"
	run "$R" -v --delete "$A" "$B"
	expect_contains "u/0: 3 segments below offset 540 deleted"
}

@test "a replica the source's retention left behind: said once, 65, the rest copied; --delete starts it over" {
	local n
	mq-topic -s "$A" create --config segment.bytes=1024 t
	seq 20 | mq-send -s "$A" t
	run "$R" "$A" "$B"
	expect_status 0
	seq 21 200 >"$T/in"
	mq-send -s "$A" t <"$T/in"
	mq-send -s "$A" t <"$T/in"
	mq-send -s "$A" other x
	mq-topic -s "$A" config t retention.bytes=2000
	mq-topic -s "$A" gc t
	run --separate-stderr "$R" "$A" "$B"
	expect_status 65
	n=$(grep -c 'no longer holds offsets 20 to 199' <<<"$stderr")
	expect_eq "$n" 1 "times said"
	[[ $stderr == *"1 partition behind what the source still holds"* ]]
	[[ $(mq-recv -s "$B" other) == x ]]
	run "$R" -n "$A" "$B"
	expect_status 65
	run "$R" -n --delete "$A" "$B"
	expect_status 0
	expect_contains "would delete the replica's segments and copy"
	# a follower says it once, not at each pass
	bg "$T/fout" "$T/ferr" "$R" -f "$A" "$B"
	local pid=$BG_PID
	wait_until 30 grep -q 'no longer holds offsets' "$T/ferr"
	mq-send -s "$A" other y
	wait_until 30 bash -c "[[ \$(mq-recv -s '$B' other | wc -l) == 2 ]]"
	stop_bg "$pid"
	n=$(grep -c 'no longer holds offsets' "$T/ferr")
	expect_eq "$n" 1 "times a follower said it"
	run "$R" -v --delete "$A" "$B"
	expect_status 0
	expect_contains "t/0: 200 to 380"
	[[ $(mq-recv -s "$B" t | head -n 1) == 21 ]]
}

# ids_have_markers SPOOL TOPIC: every send ID the topic's records carry
# has a marker in its ids/
ids_have_markers() {
	local id hex n=0
	while read -r id; do
		hex=$(printf '%s' "$id" | od -An -tx1 | tr -d ' \n')
		[[ -f $1/topics/$2/ids/$hex ]] || {
			echo "no marker for $id ($hex)" >&2
			return 1
		}
		n=$((n + 1))
	done < <(mq-recv -s "$1" -J "$2" | jq -r 'select(.id) | .id' | sort -u)
	((n > 0))
}

@test "after --promote a retried --id send stores nothing twice; one the replica holds in part stores the rest, once" {
	mq-topic -s "$A" create -P 3 t
	seq 10 >"$T/ten"
	seq 5 >"$T/five"
	mq-send -s "$A" --id job-1 t <"$T/ten"
	# the old primary stored five of job-2's ten before it was lost
	mq-send -s "$A" --id job-2 t <"$T/five"
	mq-send -s "$A" --id job-3 -k k t x y
	run "$R" "$A" "$B"
	expect_status 0
	run "$R" --promote "$B"
	expect_status 0
	ids_have_markers "$B" t
	run mq-send -s "$B" --id job-1 t <"$T/ten"
	expect_status 0
	run mq-send -s "$B" --id job-3 -k k t x y
	expect_status 0
	expect_eq "$(mq-recv -s "$B" t | wc -l)" 17 "messages after the retries"
	run mq-send -s "$B" --id job-2 t <"$T/ten"
	expect_status 0
	expect_eq "$(mq-recv -s "$B" t | wc -l)" 22 "with the rest of job-2"
	# 1 to 10 once in job-1, once in job-2
	(seq 10; seq 10; echo x; echo y) | sort >"$T/want"
	mq-recv -s "$B" t | sort >"$T/got"
	expect_same_file "$T/got" "$T/want"
	run mq-send -s "$B" --id job-4 t new
	expect_eq "$(mq-recv -s "$B" t | wc -l)" 23 "a new ID"
	# a second promotion changes nothing; the new primary's sends go on
	run "$R" --promote "$B"
	expect_status 64
}

@test "after --promote the send IDs past a hole in the log have markers too" {
	mq-topic -s "$A" create --config segment.bytes=1024 t
	seq 20 >"$T/j1"
	seq 21 200 >"$T/j"
	mq-send -s "$A" --id j1 t <"$T/j1"
	mq-send -s "$A" --id j2 t <"$T/j"
	mq-send -s "$A" --id j3 t <"$T/j"
	mq-send -s "$A" --id j4 t <"$T/j"
	[[ -f $A/topics/t/0/00000000000000000200.log ]]
	rm "$A"/topics/t/0/00000000000000000200.*
	run "$R" "$A" "$B"
	expect_status 65
	run "$R" --promote "$B"
	expect_status 0
	n=$(mq-recv -s "$B" --skip-damage t 2>/dev/null | wc -l)
	run mq-send -s "$B" --id j4 t <"$T/j"
	expect_status 0
	expect_eq "$(mq-recv -s "$B" --skip-damage t 2>/dev/null | wc -l)" "$n" \
		"messages after retrying the send past the hole"
}

@test "after --promote a retried scheduled --id send stores nothing twice" {
	mq-topic -s "$A" create -P 3 t
	seq 30 >"$T/in"
	mq-send -s "$A" --delay 1h --id later t <"$T/in"
	run "$R" "$A" "$B"
	expect_status 0
	run "$R" --promote "$B"
	expect_status 0
	run mq-send -s "$B" --delay 1h --id later t <"$T/in"
	expect_status 0
	run mq-topic -s "$B" describe t
	expect_contains "scheduled 30"
	# a damaged scheduled batch on the replica does not stop a promotion
	rm -rf "$B"
	run "$R" "$A" "$B"
	local f
	f=$(find "$B"/topics/t/scheduled -type f -name '0*' | head -n 1)
	flip_byte "$f" $(($(fsize "$f") - 1))
	run "$R" --promote "$B"
	expect_status 0
}

@test "after --promote a retry does not take an earlier send of the ID, past its window, for its own" {
	mq-topic -s "$A" create t
	# an earlier send of the ID, stamped two hours ago, its marker gone
	# with its window
	echo '{"payload":"old","ts":'$(($(now_ms) - 7200000))'}' |
		mq-send -s "$A" -J --id again t
	rm "$A"/topics/t/ids/*[0-9a-f]
	mq-send -s "$A" --id again t new1 new2
	run "$R" "$A" "$B"
	expect_status 0
	run "$R" --promote "$B"
	expect_status 0
	# a retry with other messages stores those not found in this send
	printf 'old\nnew1\nnew2\n' >"$T/in"
	run mq-send -s "$B" --id again t <"$T/in"
	expect_status 0
	run mq-recv -s "$B" t
	expect_output $'old\nnew1\nnew2\nold'
}

@test "a promotion cut short leaves a replica that names no source; a second --promote finishes it" {
	mq-send -s "$A" --id j t a b
	run "$R" "$A" "$B"
	expect_status 0
	# what a promotion killed after its first step leaves
	printf 'promoting\n' >"$B/replica"
	run mq-send -s "$B" t c
	expect_status 69
	expect_contains "no source (a promotion under way or cut short)"
	run "$R" --promote "$B"
	expect_status 0
	expect_missing "$B/replica"
	ids_have_markers "$B" t
	run mq-send -s "$B" --id j t a b
	expect_status 0
	expect_eq "$(mq-recv -s "$B" t | wc -l)" 2 "messages"
}

@test "--promote while a follower copies: the follower stops with 69, and every ID it copied has a marker" {
	local fp sp n i
	mq-topic -s "$A" create -P 2 t
	mq-send -s "$A" --id first t a
	bg "$T/f.out" "$T/f.err" "$R" -f "$A" "$B"
	fp=$BG_PID
	wait_until 30 test -f "$B/topics/t/config"
	bg /dev/null "$T/s.err" bash -c 'for ((i = 0; ; i++)); do
		mq-send -s "$1" --id "job-$i" t "m$i" "n$i" || exit 1; done' \
		sh "$A"
	sp=$BG_PID
	wait_until 30 bash -c "(( \$(mq-recv -s '$B' t 2>/dev/null | wc -l) > 20 ))"
	run "$R" --promote "$B"
	expect_status 0
	wait_bg "$fp" 30
	expect_eq "$BG_STATUS" 69 "the follower's exit"
	stop_bg "$sp"
	ids_have_markers "$B" t
	# what the follower copied is stored once by a retry
	n=$(mq-recv -s "$B" t | wc -l)
	for i in 0 1 2 3; do
		mq-send -s "$B" --id "job-$i" t "m$i" "n$i"
	done
	expect_eq "$(mq-recv -s "$B" t | wc -l)" "$n" "messages after retries"
}

@test "a server serves its own spool only; --read-only refuses a push" {
	mq-send -s "$A" t one
	# a forced command (authorized_keys command=) ignores what was asked
	cat >"$T/forced" <<-EOF
	#!/bin/sh
	exec "$R" --server --read-only "$A"
	EOF
	chmod +x "$T/forced"
	run "$R" -e "$T/forced" "host:/etc" "$B"
	expect_status 77
	expect_contains "serves $A only"
	expect_missing "$B/topics/t"
	run "$R" -e "$T/forced" "host:$A" "$B"
	expect_status 0
	run mq-recv -s "$B" t
	expect_output "one"
	# the served directory however spelt: a trailing slash, "//", ".."
	local p
	for p in "$A/" "${A%/*}//${A##*/}" "$A/../${A##*/}"; do
		run "$R" -e "$T/forced" "host:$p" "$B"
		expect_status 0
	done
	mq-send -s "$T/c" t intruder
	run "$R" -e "$T/forced" "$T/c" "host:$A"
	expect_status 77
	expect_contains "read-only"
	run mq-recv -s "$A" t
	expect_output "one"
}

@test "push and pull through a pipe command" {
	seq 100 | mq-send -s "$A" t
	run "$R" "${E[@]}" "$A" "host:$B"
	expect_status 0
	run "$R" "${E[@]}" "host:$A" "$T/c"
	expect_status 0
	same_logs "$A" "$B"
	same_logs "$A" "$T/c"
	run "$R" "${E[@]}" --remote-path /nonexistent "$A" "host:$B"
	expect_status 74
}

@test "a malformed stream is an error, not a crash or a hang" {
	mq-send -s "$A" t one
	printf 'garbage that is not a frame at all' >"$T/junk"
	printf '#!/bin/sh\ncat %s; sleep 1\n' "$T/junk" >"$T/liar"
	chmod +x "$T/liar"
	run "$R" -e "$T/liar" "host:$A" "$B"
	[[ $status == 65 || $status == 74 ]]
	# a peer that says nothing: the timeout ends it (the peer's stderr,
	# which is mq-replicate's, closed: a sleep left behind holding it
	# made run wait the full 30 s for its output)
	printf '#!/bin/sh\nexec sleep 30 2>/dev/null 3>&-\n' >"$T/mute"
	chmod +x "$T/mute"
	run timeout 20 "$R" --timeout 1s -e "$T/mute" "host:$A" "$B"
	expect_status 75
	# a server fed garbage exits 65
	run bash -c "head -c 1000 /dev/urandom | '$R' --server '$A' >/dev/null"
	[[ $status == 65 || $status == 74 ]]
}

@test "a compressed topic is copied byte for byte" {
	mq-topic -s "$A" create --config compression=zlib z
	seq 5000 | mq-send -s "$A" z
	run "$R" "$A" "$B"
	expect_status 0
	same_logs "$A" "$B"
	run mq-recv -s "$B" z
	expect_output "$(seq 5000)"
}

@test "-n: a dry run says what it would do and changes nothing, on either side" {
	seq 10 | mq-send -s "$A" t
	(cd "$A" && find . -printf '%p %s %T@\n' | sort) >"$T/before"
	run "$R" -n "$A" "$B"
	expect_status 0
	expect_contains "would"
	expect_missing "$B"
	run "$R" "${E[@]}" -n x:"$A" "$B"
	expect_status 0
	expect_contains "would"
	expect_missing "$B"
	(cd "$A" && find . -printf '%p %s %T@\n' | sort) >"$T/after"
	expect_same_file "$T/after" "$T/before"
}

@test "kill -9 at random moments, then resume: verify clean and identical" {
	local i
	mq-topic -s "$A" create -P 2 --config segment.bytes=20000 t
	seq 100000 | mq-send -s "$A" t
	for i in 1 2 3 4 5 6; do
		"$R" "$A" "$B" 2>/dev/null &
		local p=$!
		sleep "0.0$((RANDOM % 9 + 1))"
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
		if [[ -d $B/topics ]]; then
			run mq-topic -s "$B" verify
			expect_status 0
		fi
		seq 100 | mq-send -s "$A" t
	done
	run "$R" "$A" "$B"
	expect_status 0
	same_logs "$A" "$B"
	run mq-topic -s "$B" verify
	expect_status 0
}

@test "usage: --help, --version, bad options, both sides remote" {
	run --separate-stderr "$R" --help
	expect_status 0
	local o
	expect_contains "[-fnqv]"
	for o in -e -f -n -q -s -t -v --delete --demote --progress --promote \
	    --read-only --remote-path --sender --server --timeout; do
		[[ $o == -? ]] || expect_contains "$o"
		grep -q -- "Fl ${o#-}" "$MQ_REPO/man/mq-replicate.1"
		grep -q -- "$o" "$MQ_REPO/completions/mq.bash"
		grep -q -- "${o#-}" "$MQ_REPO/completions/_mq"
		grep -q -- "${o##*-}" "$MQ_REPO/completions/mq.fish"
	done
	run --separate-stderr "$R" --version
	expect_status 0
	[[ $output =~ ^mq-replicate\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	run --separate-stderr "$R" --bogus a b
	expect_status 64
	run "$R" -s "$A" a b
	expect_status 64
	run "$R" a b c
	expect_status 64
	run "$R" h1:/a h2:/b
	expect_status 64
	run "$R" --promote "$A"
	expect_status 66
}

@test "mq-topic describe and stats show each replica's acknowledged offset and lag" {
	seq 10 | mq-send -s "$A" t
	run "$R" "$A" "$B"
	mq-send -s "$A" t eleven
	local id
	id=$(cat "$B/id")
	run mq-topic -s "$A" describe t
	expect_contains "REPLICA"
	[[ $output =~ $id\ +0\ +10\ +1 ]] || { _mq_dump; false; }
	run mq-topic -s "$A" stats --prometheus
	expect_contains "mq_replica_lag{topic=\"t\",replica=\"$id\",partition=\"0\"} 1"
	run mq-topic -s "$A" stats --json
	expect_contains "\"replicas\":[{\"replica\":\"$id\",\"partition\":0,\"acked\":10,\"lag\":1}]"
}

@test "partitions added later and config changes travel" {
	mq-send -s "$A" t one
	run "$R" "$A" "$B"
	mq-topic -s "$A" config t partitions=3 retention.ms=1000000
	mq-send -s "$A" -p 2 t two
	run "$R" "$A" "$B"
	expect_status 0
	run mq-topic -s "$B" config t
	expect_contains "partitions=3"
	expect_contains "retention.ms=1000000"
	run mq-recv -s "$B" -p 2 t
	expect_output "two"
}

@test "a hostile sender naming ../ gets 65 and writes nothing outside the spool" {
	mkdir -p "$T/srv"
	python3 - "$T/srv" >"$T/frames" <<-'PY'
	import struct, sys
	def s(x): x = x.encode(); return struct.pack('<H', len(x)) + x
	def fr(t, p=b''): return struct.pack('<I', len(p) + 1) + bytes([t]) + p
	hello = b'mqRP' + struct.pack('<IBI', 1, 0, 0) + s('0' * 32) + \
	    struct.pack('<I', 0) + s(sys.argv[1]) + struct.pack('<I', 0)
	sys.stdout.buffer.write(fr(1, hello) + fr(4, s('../evil') + s('partitions=1\n')) + fr(5))
	PY
	run bash -c "'$R' --server '$T/srv' <'$T/frames' >/dev/null"
	expect_status 65
	expect_missing "$T/evil"
	expect_missing "$T/srv/evil"
}

@test "a replica refuses create, delete, config changes, gc and cancel with 69; a promoted one takes them" {
	mq-send -s "$A" t one
	mq-send -s "$A" --delay 1h --id job t later
	run "$R" "$A" "$B"
	expect_status 0
	cp -r "$B" "$T/b.before"
	local c
	for c in "create u" "delete t" "delete --force t" \
	    "config t retention.ms=1000" "gc" "gc t" "cancel t job"; do
		# shellcheck disable=SC2086
		run mq-topic -s "$B" $c
		expect_status 69
		expect_contains "is a replica of"
		expect_contains "mq-replicate --promote"
	done
	diff -r "$T/b.before" "$B"
	# reading stays allowed: config, describe, verify, mq-recv, groups
	run mq-topic -s "$B" config t
	expect_status 0
	run mq-topic -s "$B" verify
	expect_status 0
	run mq-recv -s "$B" -g g t
	expect_status 0
	expect_output "one"
	run "$R" --promote "$B"
	expect_status 0
	run mq-topic -s "$B" create u
	expect_status 0
	run mq-topic -s "$B" config t retention.ms=1000
	expect_status 0
	run mq-topic -s "$B" cancel t job
	expect_status 0
	run mq-topic -s "$B" gc
	expect_status 0
	run mq-topic -s "$B" delete t
	expect_status 0
}

# sched_files SPOOL TOPIC: the names of the topic's scheduled files
sched_files() {
	find "$1/topics/$2/scheduled" -mindepth 2 -type f ! -name '*.tmp' \
	    -printf '%f\n' 2>/dev/null | sort
}

@test "scheduled messages: copied, never moved by the replica, the source's moves at the same offsets" {
	mq-topic -s "$A" create -P 2 t
	mq-send -s "$A" -p 0 t now
	mq-send -s "$A" --delay 1s -p 1 -k k t soon
	mq-send -s "$A" --delay 1h -p 0 t later
	run "$R" "$A" "$B"
	expect_status 0
	[[ $(sched_files "$A" t) == "$(sched_files "$B" t)" ]]
	[[ $(sched_files "$B" t | wc -l) == 2 ]]
	sleep 1.2
	# due, but a replica's readers do not move it: the source will
	run mq-recv -s "$B" -F '%p %o %s\n' t
	expect_output "0 0 now"
	run mq-recv -s "$B" -f --timeout 300ms t
	expect_output "now"
	[[ $(sched_files "$B" t | wc -l) == 2 ]]
	run mq-topic -s "$B" describe t
	expect_status 0
	# the source moves it; the next run brings the append and the removal
	mq-send -s "$A" -p 0 t after
	run "$R" "$A" "$B"
	expect_status 0
	mq-recv -s "$A" -J t >"$T/a.json"
	mq-recv -s "$B" -J t >"$T/b.json"
	expect_same_file "$T/b.json" "$T/a.json"
	grep -q '"soon"' "$T/b.json"
	[[ $(sched_files "$A" t) == "$(sched_files "$B" t)" ]]
	[[ $(sched_files "$B" t | wc -l) == 1 ]]
	same_logs "$A" "$B"
	# a cancel on the source goes too
	mq-topic -s "$A" cancel t nothing-such || true
	run mq-topic -s "$B" verify
	expect_status 0
}

@test "scheduled messages after a promotion: the rest delivered once by the new primary" {
	mq-send -s "$A" t now
	local at=$(( $(date +%s%3N) + 8000 ))
	mq-send -s "$A" --at "$at" t later
	mq-send -s "$A" --delay 1s t moved
	run "$R" "$A" "$B"
	expect_status 0
	# the state a run leaves when the source moved a file after listing
	# it: the file is copied and its batch arrives too (kept as a pass
	# left it, with the offsets noted before that listing)
	cp -a "$B/topics/t/scheduled" "$T/sched.before"
	sleep 1.1
	mq-recv -s "$A" t >/dev/null
	run "$R" "$A" "$B"
	expect_status 0
	[[ $(sched_files "$B" t | wc -l) == 1 ]]
	rm -rf "$B/topics/t/scheduled"
	cp -a "$T/sched.before" "$B/topics/t/scheduled"
	[[ $(sched_files "$B" t | wc -l) == 2 ]]
	run "$R" --promote "$B"
	expect_status 0
	# reconciled: the moved one is not delivered a second time (and
	# "later" not before its time: under a slow build it may be due)
	run mq-recv -s "$B" t
	expect_status 0
	[[ $output == $'now\nmoved' || $output == $'now\nmoved\nlater' ]]
	while (( $(date +%s%3N) < at + 100 )); do sleep 0.1; done
	run mq-recv -s "$B" t
	expect_output $'now\nmoved\nlater'
	run mq-recv -s "$B" t
	expect_output $'now\nmoved\nlater'
	[[ -z $(sched_files "$B" t) ]]
	run mq-topic -s "$B" verify
	expect_status 0
}

@test "a follower on a replica that is promoted delivers a scheduled message when due, with nothing else sent" {
	mq-send -s "$A" t first
	local at=$(( $(date +%s%3N) + 4000 ))
	mq-send -s "$A" --at "$at" t later
	run "$R" "$A" "$B"
	expect_status 0
	bg "$T/out" "$T/err" mq-recv -s "$B" -f t
	wait_until 10 lines_in "$T/out" 1
	run "$R" --promote "$B"
	expect_status 0
	# due, then a second of the replica's look-again, and some slack
	while (( $(date +%s%3N) < at + 2500 )); do sleep 0.1; done
	wait_until 2 lines_in "$T/out" 2
	stop_bg "$BG_PID"
	run cat "$T/out"
	expect_output $'first\nlater'
}

@test "an acknowledgement past the partition's end counts only up to it" {
	mq-send -s "$A" t one
	run "$R" "$A" "$B"
	expect_status 0
	# a receiver that sends no data request, only an ACK far ahead
	run python3 - "$R" "$A" <<-'EOF'
	import struct, subprocess, sys
	def s(b): return struct.pack("<H", len(b)) + b
	def frame(t, p): return struct.pack("<IB", len(p) + 1, t) + p
	srv = subprocess.Popen([sys.argv[1], "--server", "--sender", sys.argv[2]],
	    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
	hello = (b"mqRP" + struct.pack("<IBI", 3, 1, 0) + s(b"f" * 32) +
	    struct.pack("<I", 0) + s(sys.argv[2].encode()) + struct.pack("<I", 0))
	srv.stdin.write(frame(1, hello)); srv.stdin.flush()
	n = struct.unpack("<I", srv.stdout.read(4))[0]
	assert srv.stdout.read(n)[0] == 1, "no HELLO"
	srv.stdin.write(frame(11, s(b"t") + struct.pack("<IQ", 0, 1000)))
	srv.stdin.write(frame(18, b"")); srv.stdin.close()
	sys.exit(srv.wait())
	EOF
	expect_status 0
	grep -q '^t 0 1$' "$A/replicas/ffffffffffffffffffffffffffffffff"
	run mq-send -s "$A" --replicas 2 --timeout 300ms t two
	expect_status 75
	# (a forged 1000 taken at its word would cover it: "1 of 2")
	expect_contains "0 of 2"
	run mq-send -s "$A" --replicas 1 --timeout 300ms t three
	expect_status 75
}

@test "--follow looks only at what changed: one send to one of 200 partitions moves a few hundred bytes" {
	mq-topic -s "$A" create -P 200 wide
	mq-send -s "$A" -p 0 wide zero
	: >"$T/count"
	MQ_COUNT=$T/count bg "$T/f.out" "$T/f.err" "$R" --follow "${E[@]}" \
	    "host:$A" "$B"
	local fp=$BG_PID
	wait_until 10 bash -c "mq-recv -s '$B' wide 2>/dev/null | grep -q zero"
	# the first pass done: the count holds still
	local before=-1 after
	while [[ $before != $(wc -c <"$T/count") ]]; do
		before=$(wc -c <"$T/count")
		sleep 0.5
	done
	run mq-recv -s "$B" wide
	expect_output "zero"
	mq-send -s "$A" -p 137 wide one
	wait_until 10 bash -c "mq-recv -s '$B' -p 137 wide | grep -q one"
	sleep 0.3
	after=$(wc -c <"$T/count")
	stop_bg "$fp"
	# a whole pass answers 200 PSTATEs: thousands of bytes
	echo "# $((after - before)) bytes for one message" >&3
	((after - before < 1000))
}

@test "--follow carries scheduled messages, group commits and the source's moves as they happen" {
	mq-topic -s "$A" create -P 2 t
	mq-send -s "$A" -p 0 t zero
	bg "$T/f.out" "$T/f.err" "$R" --follow "$A" "$B"
	local fp=$BG_PID
	wait_until 10 bash -c "mq-recv -s '$B' t | grep -q zero"
	mq-send -s "$A" --delay 1s -p 1 t later
	wait_until 10 bash -c "[[ -n \$(find '$B/topics/t/scheduled' -mindepth 2 -type f ! -name '*.tmp' 2>/dev/null) ]]"
	run mq-recv -s "$B" t
	expect_output "zero"
	mq-recv -s "$A" -g g t >/dev/null
	wait_until 10 bash -c "mq-topic -s '$B' groups t | grep -q g"
	sleep 1
	# the source moves it (its reader does); the replica gets the append
	# and drops its copy of the file
	mq-recv -s "$A" t >/dev/null
	wait_until 10 bash -c "mq-recv -s '$B' t | grep -q later"
	wait_until 10 bash -c "[[ -z \$(find '$B/topics/t/scheduled' -mindepth 2 -type f 2>/dev/null) ]]"
	stop_bg "$fp"
	mq-recv -s "$A" -J t >"$T/a.json"
	mq-recv -s "$B" -J t >"$T/b.json"
	expect_same_file "$T/b.json" "$T/a.json"
}

@test "a local copy reads the source's segments itself: batches larger than its buffer, several segments, then an increment" {
	mq-topic -s "$A" create --config segment.bytes=4000000 big
	head -c 3000000 /dev/urandom | base64 -w0 | mq-send -s "$A" --whole big
	seq 20000 | mq-send -s "$A" big
	head -c 5000000 /dev/urandom | base64 -w0 | mq-send -s "$A" --whole big
	run "$R" -v "$A" "$B"
	expect_status 0
	same_logs "$A" "$B"
	(($(ls "$B"/topics/big/0/*.log | wc -l) > 1))
	seq 5 | mq-send -s "$A" big
	run "$R" "$A" "$B"
	expect_status 0
	same_logs "$A" "$B"
	run mq-topic -s "$B" verify
	expect_status 0
}

@test "a demoted primary keeps its own scheduled messages aside, never drops them" {
	mq-send -s "$A" t one
	run "$R" "$A" "$B"
	run "$R" --promote "$B"
	mq-send -s "$B" t two
	# the old primary, written to after the failover, is demoted
	mq-send -s "$A" --delay 1h --id mine t kept
	run "$R" --demote "$B" "$A"
	expect_status 0
	expect_contains "its own scheduled messages kept in"
	local d
	d=$(ls -d "$A"/diverged/t.scheduled.*)
	[[ $(find "$d" -type f | wc -l) == 1 ]]
	[[ -z $(sched_files "$A" t) ]]
	run mq-topic -s "$A" verify
	expect_status 0
}

@test "a committed transaction's batches cost the sender one look at its state, not one a batch" {
	need_strace
	mq-topic -s "$A" create -P 1 t >/dev/null
	tx=$(seq 200000 | mq-send -s "$A" --prepare t)
	mq-send -s "$A" --commit "$tx"
	(($(mq-topic -s "$A" dump t | grep -c ' data ') >= 5))
	# through a pipe: the sender looks at every batch (a local receiver
	# reads the files itself while no commit is under way)
	strace -f -qq -e trace=openat -o "$T/trace" "$R" "${E[@]}" "host:$A" "$B"
	same_logs "$A" "$B"
	# once for any commit under way, once for this one (one a batch: 9)
	local looks
	looks=$(grep -c '"txn"' "$T/trace")
	((looks <= 3)) || { echo "txn/ opened $looks times" >&2; false; }
}

@test "--follow holds a commit under way back and sends it once it is done (settled is remembered, under way never)" {
	need_strace
	mq-topic -s "$A" create -P 2 t >/dev/null
	mq-send -s "$A" t before
	tx=$(printf 'k1:x1\nk2:x2\nk3:x3\nk4:x4\n' | mq-send -s "$A" --prepare -K : t)
	# the committer dies with every batch appended: the state says committing
	MQ_IO=sync run strace -f -qq -o /dev/null \
	    -e inject=fdatasync:signal=KILL:when=1 mq-send -s "$A" --commit "$tx"
	expect_status 137
	bg "$T/f.out" "$T/f.err" "$R" --follow "${E[@]}" "$A" "host:$B"
	local fp=$BG_PID
	wait_until 10 bash -c "mq-recv -s '$B' t 2>/dev/null | grep -qx before"
	# the first pass met it under way and sent none of it (a send, a
	# reader of the source or a tick would complete it: none ran)
	expect_eq "$(mq-recv -s "$B" t | grep -c '^x')" 0 "while under way"
	# done: the next pass of each partition sends it all
	mq-send -s "$A" --commit "$tx"
	mq-send -s "$A" -p 0 t after0
	mq-send -s "$A" -p 1 t after1
	wait_until 30 bash -c "[[ \$(mq-recv -s '$B' t | grep -c '^x') == 4 ]]"
	wait_until 10 bash -c "mq-recv -s '$B' t | grep -qx after1"
	wait_until 10 bash -c "mq-recv -s '$B' t | grep -qx after0"
	stop_bg "$fp"
	expect_eq "$(mq-recv -s "$B" -F '%p %o %s\n' t | sort)" \
	    "$(mq-recv -s "$A" -F '%p %o %s\n' t | sort)" "replica and source"
}

@test "-s DIR (or MQ_SPOOL, as for the other programs) is the local spool: the source of one operand, the directory of --promote" {
	mq-send -s "$A" t one
	run --separate-stderr "$R" -s "$A" "$B"
	expect_status 0
	expect_eq "$(mq-recv -s "$B" t)" "one"
	mq-send -s "$A" t two
	run --separate-stderr "$R" --spool="$A" "$B"
	expect_status 0
	expect_eq "$(mq-recv -s "$B" t | tr '\n' ' ')" "one two "
	# no -s: $MQ_SPOOL, as mq-send resolves it
	mq-send t three
	run --separate-stderr "$R" "$T/c"
	expect_status 0
	expect_eq "$(mq-recv -s "$T/c" t)" "three"
	run --separate-stderr "$R" -s "$A" "$A" "$B"
	expect_status 64
	expect_contains "give SRC or -s, not both" stderr
	run --separate-stderr "$R" -s '' "$B"
	expect_status 64
	run --separate-stderr "$R" -s "$A" --promote "$B"
	expect_status 64
	run --separate-stderr "$R" -s "$B" --server "$B"
	expect_status 64
	run --separate-stderr "$R" -s "$B" --promote
	expect_status 0
	expect_contains "epoch 1"
	run --separate-stderr "$R" -s "$T/c" "$T/d"
	expect_status 0
	MQ_SPOOL=$T/d run --separate-stderr "$R" --promote
	expect_status 0
	run mq-send -s "$T/d" t four
	expect_status 0
}

@test "-t naming a topic the source lacks: the others copied, the name said, 66; --follow waits for it" {
	seq 3 | mq-send -s "$A" t
	run --separate-stderr "$R" -t nosuch -t t "$A" "$B"
	expect_status 66
	expect_contains "nosuch: no such topic on the source" stderr
	run mq-recv -s "$B" t
	expect_output $'1\n2\n3'
	run --separate-stderr "$R" "${E[@]}" -t nosuch "$A" "host:$T/c"
	expect_status 66
	expect_contains "nosuch: no such topic on the source" stderr
	bg "$T/f.out" "$T/f.err" "$R" --follow -t later "$A" "$B"
	local fp=$BG_PID
	wait_until 10 grep -q "later: no such topic on the source yet" "$T/f.err"
	mq-send -s "$A" later hello
	wait_until 10 bash -c "mq-recv -s '$B' later 2>/dev/null | grep -q hello"
	stop_bg "$fp"
}

@test "a follower whose destination is promoted under it stops with 69; it never cuts back or writes into the new primary" {
	seq 10 | mq-send -s "$A" t
	bg "$T/f.out" "$T/f.err" "$R" --follow "$A" "$B"
	local fp=$BG_PID
	wait_until 10 bash -c "[ \"\$(mq-recv -s '$B' t | wc -l)\" = 10 ]"
	run -0 "$R" --promote "$B"
	run -0 mq-send -s "$B" t new-on-b
	seq 11 15 | mq-send -s "$A" t
	wait_bg "$fp" 10
	expect_eq "$BG_STATUS" 69 "the follower's status"
	grep -q "no longer a replica" "$T/f.err"
	run mq-recv -s "$B" t
	expect_eq "${lines[10]-}" "new-on-b" "the new primary's write"
	expect_eq "${#lines[@]}" 11 "messages on the new primary"
	expect_missing "$B/diverged"
	# the same through a pipe command (the receiver is the server)
	seq 3 | mq-send -s "$A" u
	rm -rf "$T/c"
	bg "$T/g.out" "$T/g.err" "$R" --follow "${E[@]}" "$A" "host:$T/c"
	fp=$BG_PID
	wait_until 10 bash -c "mq-recv -s '$T/c' u 2>/dev/null | grep -q 3"
	run -0 "$R" --promote "$T/c"
	run -0 mq-send -s "$T/c" u new-on-c
	echo 4 | mq-send -s "$A" u
	wait_bg "$fp" 10
	expect_eq "$BG_STATUS" 69 "the pushing follower's status"
	run mq-recv -s "$T/c" u
	expect_output $'1\n2\n3\nnew-on-c'
}

@test "--promote marks the spool, then waits for a follower's write outside the partitions (it holds SPOOL/lock shared)" {
	seq 3 | mq-send -s "$A" t
	run -0 "$R" "$A" "$B"
	# a follower in the middle of such a write holds the role lock
	bg "$T/l.out" "$T/l.err" flock -s "$B/lock" sh -c "$HOLD"
	local lp=$BG_PID
	wait_until 10 test -e "$T/held"
	bg "$T/p.out" "$T/p.err" "$R" --promote "$B"
	local pp=$BG_PID
	# marked at once: no follower starts a write from now on...
	wait_until 10 grep -qx promoting "$B/replica"
	# ...but the one under way is not cut short: the promotion waits
	sleep 1
	kill -0 "$pp"
	run mq-send -s "$B" t early
	expect_status 69
	touch "$T/release"
	wait_bg "$lp" 10
	wait_bg "$pp" 10
	expect_eq "$BG_STATUS" 0 "the promotion's status"
	expect_missing "$B/replica"
	run -0 mq-send -s "$B" t late
}

@test "a follower writes a topic, a config or group offsets only under SPOOL/lock: promoted meanwhile, it writes none" {
	seq 3 | mq-send -s "$A" t
	run -0 "$R" "$A" "$B"
	# news on the source: a group's commit, a config, a topic
	mq-recv -s "$A" -g news t >/dev/null
	run -0 mq-topic -s "$A" config t retention.ms=3600000
	mq-send -s "$A" u one
	# the role lock is held (as a promotion holds it, a moment)
	bg "$T/l.out" "$T/l.err" flock -x "$B/lock" sh -c "$HOLD"
	local lp=$BG_PID
	wait_until 10 test -e "$T/held"
	bg "$T/f.out" "$T/f.err" "$R" "$A" "$B"
	local fp=$BG_PID
	# the pass waits before its first such write...
	sleep 1
	kill -0 "$fp"
	# ...and the spool is marked for promotion before it gets the lock
	bg "$T/p.out" "$T/p.err" "$R" --promote "$B"
	local pp=$BG_PID
	wait_until 10 grep -qx promoting "$B/replica"
	touch "$T/release"
	wait_bg "$lp" 10
	wait_bg "$pp" 10
	expect_eq "$BG_STATUS" 0 "the promotion's status"
	wait_bg "$fp" 10
	expect_eq "$BG_STATUS" 69 "the follower's status"
	grep -q "no longer a replica" "$T/f.err"
	run -0 mq-topic -s "$B" groups t
	expect_not_contains "news"
	run -0 mq-topic -s "$B" config t
	expect_not_contains "retention.ms=3600000"
	expect_missing "$B/topics/u"
}

@test "a destination that is a dangling symbolic link: an error, no copy to a stand-in, no acknowledgement" {
	seq 3 | mq-send -s "$A" t
	ln -s "$T/nowhere" "$T/dangling"
	local tmp=$T/tmp
	mkdir "$tmp"
	TMPDIR=$tmp run --separate-stderr "$R" "$A" "$T/dangling"
	expect_status 66
	expect_contains "dangling: No such file or directory" stderr
	expect_missing "$T/nowhere"
	run ls -A "$tmp"
	expect_output ""
	expect_missing "$A/replicas"
	run mq-send -s "$A" --replicas 1 --timeout 1s t more
	expect_status 75
}

@test "a primary holding only scheduled messages or an open transaction is a primary holding data: 69 without --demote" {
	seq 3 | mq-send -s "$A" t
	echo later | mq-send -s "$T/sched" --delay 1h s
	run --separate-stderr "$R" "$A" "$T/sched"
	expect_status 69
	expect_contains "primary holding data" stderr
	expect_missing "$T/sched/replica"
	run mq-topic -s "$T/sched" describe s
	expect_contains "scheduled 1"
	local tx
	tx=$(echo s | mq-send -s "$T/txn" --prepare x)
	run --separate-stderr "$R" "$A" "$T/txn"
	expect_status 69
	run mq-send -s "$T/txn" --commit "$tx"
	expect_status 0
	run mq-recv -s "$T/txn" x
	expect_output "s"
	# --demote takes them over, the scheduled messages kept aside
	run -0 "$R" --demote "$A" "$T/sched"
	[[ -n $(ls "$T/sched/diverged") ]]
}

@test "a cut-back stopped at any moment leaves whole files in diverged/, each cut-off message in exactly one" {
	seq 10 | mq-send -s "$A" t
	run -0 "$R" "$A" "$B"
	run -0 "$R" --promote "$B"
	run -0 mq-send -s "$B" t on-b
	seq 11 50000 | mq-send -s "$A" t
	cp -a "$A" "$T/a0"
	# whole: what a run leaves, and the reference; where the messages
	# went is said even under -q
	run --separate-stderr "$R" -q --demote "$B" "$A"
	expect_status 0
	expect_contains "49990 messages kept in $A/diverged/" stderr
	local ref
	ref=$(ls "$A"/diverged/*.json)
	[[ $(wc -l <"$ref") == 49990 ]]
	# a run stopped after it named its file, before it cut: the next
	# keeps that file instead of writing a second one
	rm -rf "$T/a1"
	cp -a "$T/a0" "$T/a1"
	mkdir "$T/a1/diverged"
	cp "$ref" "$T/a1/diverged/"
	run --separate-stderr "$R" --demote "$B" "$T/a1"
	expect_status 0
	expect_contains "by an earlier run" stderr
	run ls "$T/a1/diverged"
	expect_output "${ref##*/}"
	# a stopped run's .partial goes; a whole file of the same cut with
	# other messages (another divergence) stays beside the new one
	rm -rf "$T/a2"
	cp -a "$T/a0" "$T/a2"
	mkdir "$T/a2/diverged"
	head -n 100 "$ref" >"$T/a2/diverged/t.0.10.1.json.partial"
	head -n 3 "$ref" >"$T/a2/diverged/t.0.10.2.json"
	run -0 "$R" --demote "$B" "$T/a2"
	run ls "$T/a2/diverged"
	expect_eq "${#lines[@]}" 2 "files in diverged/"
	expect_not_contains ".partial"
	# kill -9 at a few moments: every file whole, each message once
	local d
	for d in 0.02 0.08 0.2; do
		rm -rf "$T/a3"
		cp -a "$T/a0" "$T/a3"
		"$R" --demote "$B" "$T/a3" 2>/dev/null &
		sleep "$d"
		kill -9 $! 2>/dev/null || true
		wait $! 2>/dev/null || true
		run -0 "$R" --demote "$B" "$T/a3"
		run bash -c "ls '$T/a3/diverged' 2>/dev/null | grep -c partial"
		expect_output "0"
		run bash -c "cat '$T/a3'/diverged/*.json | sort | uniq -d | wc -l; cat '$T/a3'/diverged/*.json | wc -l"
		expect_output $'0\n49990'
		run mq-recv -s "$T/a3" t
		expect_eq "${#lines[@]}" 11 "$d: messages left"
	done
}

@test "a run that fails before it copies anything leaves no destination it made; one it found stays" {
	run --separate-stderr "$R" "$T/none" "$T/x"
	expect_status 66
	expect_missing "$T/x"
	run --separate-stderr "$R" "${E[@]}" "host:$T/none" "$T/y"
	expect_status 66
	expect_missing "$T/y"
	mkdir "$T/empty"
	run --separate-stderr "$R" "$T/none" "$T/empty"
	expect_status 66
	[[ -d $T/empty ]]
	# a replica that failed later (a damaged source) is kept: it resumes
	seq 200 | mq-send -s "$A" t
	seq 200 | mq-send -s "$A" t
	flip_byte "$A/topics/t/0/00000000000000000000.log" 700
	run "$R" "$A" "$T/z"
	expect_status 65
	[[ -f $T/z/replica ]]
}

@test "a destination whose topics hold no message (an aborted transaction's lock and leftovers) is no primary holding data" {
	seq 3 | mq-send -s "$A" t
	local tx
	tx=$(echo s | mq-send -s "$T/d" --prepare x)
	run -0 mq-send -s "$T/d" --abort "$tx"
	run -0 "$R" "$A" "$T/d"
	run mq-recv -s "$T/d" t
	expect_output $'1\n2\n3'
}

@test "a follower stopped by a promotion leaves the new primary whole, though it made it" {
	seq 3 | mq-send -s "$A" t
	bg "$T/f.out" "$T/f.err" "$R" --follow -t orders "$A" "$T/n"
	local fp=$BG_PID
	wait_until 10 test -f "$T/n/replica"
	run -0 "$R" --promote "$T/n"
	echo o | mq-send -s "$A" orders
	wait_bg "$fp" 10
	expect_eq "$BG_STATUS" 69 "the follower's status"
	[[ -f $T/n/id && -d $T/n/topics ]]
	run -0 mq-send -s "$T/n" mine m
	run mq-recv -s "$T/n" mine
	expect_output "m"
}
