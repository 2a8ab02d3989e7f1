#!/usr/bin/env bats
# 87-txn: mq-send --prepare / --commit / --abort: stored invisibly, made
# visible all at once across partitions, even when the committer dies

# the commit killed at every step takes a while under ASan
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-300}

load helpers

setup() {
	mq_setup
	T=$BATS_TEST_TMPDIR
}

# txn_count TOPIC PREFIX: how many visible messages start with PREFIX
txn_count() {
	mq-recv "$1" | grep -c "^$2" || true
}

# open_txns TOPIC: the open transactions describe --json lists
open_txns() {
	mq-topic describe --json "$1" | jq '.transactions | length'
}

@test "--prepare prints TOPIC.ID; nothing is visible until --commit, then all at once" {
	mq-topic create -P 3 t >/dev/null
	mq-send t before
	run mq-send --prepare t
	expect_status 0
	# stdin was /dev/null: an empty transaction is still one
	[[ $output =~ ^t\.[0-9a-f]{16}$ ]] || { echo "txid: $output" >&2; false; }
	tx=$(seq 1 30 | mq-send --prepare t)
	[[ $tx =~ ^t\.[0-9a-f]{16}$ ]]
	mq-send t between
	# keyless sends spread over the partitions: their order is per partition
	run bash -c 'mq-recv t | sort'
	expect_output $'before\nbetween'
	run mq-recv -f --timeout 0.3 t
	expect_status 75
	expect_eq "$(echo "$output" | wc -l)" 2 "a follower sees only plain messages"
	run mq-send --commit "$tx"
	expect_status 0
	expect_eq "$(mq-recv t | grep -c '^[0-9]')" 30 "committed messages"
	# every partition got some, offsets are dense: verify is happy
	for p in 0 1 2; do
		n=$(mq-recv -p $p t | grep -c '^[0-9]' || true)
		((n > 0)) || { echo "partition $p got none" >&2; false; }
	done
	run mq-topic verify t
	expect_status 0
	# committing twice is fine; aborting a committed one is not
	run mq-send --commit "$tx"
	expect_status 0
	run mq-send --abort "$tx"
	expect_status 65
	expect_contains "committed"
}

@test "arguments, keys and headers, -K and -J as for a plain send; offsets at commit" {
	mq-topic create -P 2 t >/dev/null
	tx1=$(mq-send --prepare -k user7 -H src=db t a1 a2)
	tx2=$(printf 'k1:b1\nk2:b2\n' | mq-send --prepare -K : t)
	tx3=$(printf '%s\n' '{"key":"j","headers":[["h","1"]],"payload":"c1"}' |
	    mq-send --prepare -J t)
	mq-send -k user7 t plain
	mq-send --commit "$tx2"
	mq-send --commit "$tx1"
	mq-send --commit "$tx3"
	run mq-recv -F '%k %s %h\n' t
	expect_contains "user7 a1 src=db"
	expect_contains "user7 a2 src=db"
	expect_contains "k1 b1"
	expect_contains "k2 b2"
	expect_contains "j c1 h=1"
	# the plain message came first in user7's partition: offsets are
	# given in the order messages become visible
	p=$(mq-recv -F '%p %s\n' t | awk '$2 == "plain" { print $1 }')
	run mq-recv -p "$p" -F '%o %s\n' t
	[[ ${lines[0]} == "0 plain" ]] || { echo "$output" >&2; false; }
	# a JSON copy of a topic with transactions is a plain copy
	mq-recv -J t | mq-send -J copy
	expect_eq "$(mq-recv copy | sort)" "$(mq-recv t | sort)" "copy"
}

@test "--abort drops them; a later commit exits 65; an unknown ID exits 66" {
	mq-topic create -P 2 t >/dev/null
	tx=$(mq-send --prepare t x1 x2 x3)
	run mq-send --abort "$tx"
	expect_status 0
	run mq-send --abort "$tx"
	expect_status 0
	run mq-send --commit "$tx"
	expect_status 65
	expect_contains "aborted"
	run mq-recv t
	expect_output ""
	run mq-send --commit "t.0123456789abcdef"
	expect_status 66
	run mq-send --abort "t.0123456789abcdef"
	expect_status 66
	run mq-send --commit "nosuch.0123456789abcdef"
	expect_status 66
	run mq-send --commit "garbage"
	expect_status 64
	run mq-send --commit "$tx" t
	expect_status 64
	run mq-send --txn-timeout 1m t m
	expect_status 64
	run mq-send --prepare --txn-timeout 1x t m
	expect_status 64
	run mq-send --prepare --id a t m
	expect_status 64
	run mq-send --prepare --delay 1s t m
	expect_status 64
	# no batch file is left behind by the abort
	[[ -z $(find "$MQ_SPOOL/topics/t/txn" -name '*-*-*' -type f) ]]
}

@test "consumer groups, -x and --id work beside transactions" {
	mq-topic create -P 3 t >/dev/null
	tx=$(seq 100 | mq-send --prepare t)
	mq-send --id once t idm
	mq-send --id once t idm
	run mq-recv -g g t
	expect_output "idm"
	mq-send --commit "$tx"
	# offsets come at commit: the group, past idm, gets all of them
	run mq-recv -g g -x "cat >>$T/x.out; echo >>$T/x.out" t
	expect_status 0
	expect_eq "$(grep -c '^[0-9]' "$T/x.out")" 100 "-x ran for each"
	expect_eq "$(grep -c idm "$T/x.out")" 0 "idm once"
	run mq-recv -g g t
	expect_output ""
	run mq-topic groups t
	expect_status 0
	expect_contains "g"
}

@test "a follower waiting on a commit sees it at once, across partitions" {
	mq-topic create -P 4 t >/dev/null
	tx=$(seq 40 | mq-send --prepare t)
	bg "$T/f.out" "$T/f.err" mq-recv -f t
	sleep 0.3
	[[ ! -s $T/f.out ]]
	mq-send --commit "$tx"
	wait_until 5 lines_in "$T/f.out" 40
	stop_bg "$BG_PID"
	expect_eq "$(sort -n "$T/f.out" | tr '\n' ' ')" "$(seq 40 | tr '\n' ' ')" "followed"
}

@test "a committer killed at any point: readers see all or none, then all" {
	need_strace
	local sc n i=0 st got ns=(1 2 3 4 5 6 7 8)
	# every point; a quarter of them where MQ_TEST_QUICK thins
	[[ ${MQ_TEST_QUICK:-0} == 1 ]] && ns=(1 4)
	for sc in openat pwrite64 fdatasync fsync renameat rename flock; do
		for n in "${ns[@]}"; do
			i=$((i + 1))
			mq-topic create -P 3 "k$i" >/dev/null
			mq-send "k$i" before
			tx=$(seq 1 60 | sed 's/^/tx/' | mq-send --prepare "k$i")
			MQ_IO=sync run strace -f -qq -o /dev/null \
			    -e inject="$sc:signal=KILL:when=$n" mq-send --commit "$tx"
			st=$status
			[[ $st -eq 137 || $st -eq 0 ]] || { echo "$sc $n: exit $st: $output" >&2; false; }
			# a reader meets the commit half done: it sees all or none
			got=$(txn_count "k$i" tx)
			[[ $got -eq 0 || $got -eq 60 ]] || {
				echo "$sc when=$n (exit $st): saw $got of 60" >&2; false; }
			((st != 0 || got == 60)) || { echo "$sc $n: committed, saw $got" >&2; false; }
			# another writer appends before anyone completes it
			mq-send "k$i" after
			run mq-send --commit "$tx"
			expect_status 0
			expect_eq "$(txn_count "k$i" tx)" 60 "$sc $n: after recovery"
			expect_eq "$(mq-recv "k$i" | grep -c -e before -e after)" 2 "$sc $n: others"
			run mq-topic verify "k$i"
			expect_status 0
		done
	done
}

@test "a reader that found a partition at its end before a commit reads it again when it meets the commit elsewhere: all or none" {
	mq-topic create -P 3 t >/dev/null
	# a backlog in partition 0 keeps the reader there, more than its
	# read-ahead holds (15 MB), so that it cannot find partition 0 at
	# its end before the commit; 1 and 2 are empty when it first looks
	# (keys a and g go to 1 and 0)
	seq 2000000 | mq-send --no-sync -p 0 t
	tx=$( (seq -f 'a:t1-%g' 1 1000; echo g:t0) | mq-send --prepare -K : t)
	mkfifo "$T/gate"
	# the reader fills the pipe and blocks, partitions 1 and 2 looked
	# at and found empty; the pipe is read once the commit is done
	mq-recv t > >(read -r _ <"$T/gate"; cat >"$T/out"; touch "$T/done") &
	local rp=$!
	blocked() { [[ $(cat "/proc/$rp/wchan" 2>/dev/null) == *pipe* ]]; }
	wait_until 20 blocked
	mq-send --commit "$tx"
	echo go >"$T/gate"
	wait "$rp"
	wait_until 20 test -e "$T/done"
	expect_eq "$(grep -c '^t' "$T/out")" 1001 "messages of the transaction the reader printed"
	expect_eq "$(grep -vc '^t' "$T/out")" 2000000 "the backlog"
}

@test "the next writer aborts a transaction past its --txn-timeout" {
	mq-topic create t >/dev/null
	tx=$(mq-send --prepare --txn-timeout 1s t late)
	tx2=$(mq-send --prepare t kept)
	sleep 1.2
	# committing it now is too late: it is aborted, 65
	run mq-send --commit "$tx"
	expect_status 65
	tx=$(mq-send --prepare --txn-timeout 1s t late2)
	sleep 1.2
	mq-send t plain
	run mq-send --commit "$tx"
	expect_status 65
	expect_contains "aborted"
	run mq-send --commit "$tx2"
	expect_status 0
	run mq-recv t
	expect_output $'plain\nkept'
}

@test "a TXN batch whose transaction this spool does not know is visible (a replica's)" {
	mq-send -p 0 t a
	python3 "$SEGTOOL" plant "$(seg t)" 0 0x01 0 2 >/dev/null
	mq-send -p 0 t b
	run mq-recv -F '%o %s\n' t
	expect_status 0
	expect_output $'0 a\n1 c0\n2 c1\n3 b'
	run mq-topic verify t
	expect_status 0
}

@test "describe lists open transactions with their age; mq-topic abort" {
	mq-topic create -P 2 t >/dev/null
	tx1=$(mq-send --prepare t a b c)
	sleep 0.2
	tx2=$(mq-send --prepare --check 'exit 3' t d)
	run mq-topic describe t
	expect_status 0
	expect_contains "transactions 2"
	expect_contains "$tx1"
	expect_contains "$tx2"
	run mq-topic describe --json t
	expect_status 0
	expect_eq "$(jq -r '.transactions[0].txid' <<<"$output")" "$tx1" "oldest first"
	expect_eq "$(jq -r '.transactions[0].messages' <<<"$output")" 3 "messages"
	expect_eq "$(jq -r '.transactions[1].check' <<<"$output")" "exit 3" "check"
	age=$(jq -r '.transactions[0].age_ms' <<<"$output")
	((age >= 200)) || { echo "age $age" >&2; false; }
	run mq-topic abort t "$tx1"
	expect_status 0
	run mq-topic abort t "${tx2#t.}"
	expect_status 0
	run mq-topic abort t "$tx1"
	expect_status 0
	run mq-topic abort t 0123456789abcdef
	expect_status 66
	run mq-topic abort t nonsense
	expect_status 64
	run mq-topic abort nosuch 0123456789abcdef
	expect_status 66
	expect_eq "$(open_txns t)" 0 "open after abort"
	tx3=$(mq-send --prepare t e)
	mq-send --commit "$tx3"
	run mq-topic abort t "$tx3"
	expect_status 65
	run mq-recv t
	expect_output "e"
}

@test "--check: gc runs it past the timeout; 0 commits, 1 aborts, else asks again" {
	mq-topic create -P 2 t >/dev/null
	echo 3 >"$T/answer"
	tx=$(mq-send --prepare --txn-timeout 0s --check "echo \"\$MQ_TXID \$MQ_TOPIC\" >>$T/asked; exit \$(cat $T/answer)" t c1 c2)
	txa=$(mq-send --prepare --txn-timeout 0s --check 'exit 1' t a1)
	txl=$(mq-send --prepare --txn-timeout 1h --check 'exit 0' t later)
	# a writer does not run checks: it leaves them for gc
	mq-send t plain
	expect_eq "$(open_txns t)" 3 "open before gc"
	run mq-topic gc t
	expect_status 0
	expect_eq "$(cat "$T/asked")" "$tx t" "the check ran with MQ_TXID and MQ_TOPIC"
	run mq-send --commit "$txa"
	expect_status 65
	expect_eq "$(open_txns t)" 2 "asked again later, and not yet due"
	run mq-recv t
	expect_output "plain"
	echo 0 >"$T/answer"
	run mq-topic gc t
	expect_status 0
	expect_eq "$(wc -l <"$T/asked")" 2 "asked twice"
	expect_eq "$(mq-recv t | sort | tr '\n' ' ')" "c1 c2 plain " "committed by the check"
	expect_eq "$(open_txns t)" 1 "the one not yet due"
	# a committer may still answer before any check
	run mq-send --commit "$txl"
	expect_status 0
}

@test "mq-replicate: a replica gets a commit whole, never half, at the same offsets" {
	need_strace
	local A=$T/a B=$T/b st
	mq-topic -s "$A" create -P 2 t >/dev/null
	mq-send -s "$A" t before
	tx=$(printf 'k1:x1\nk2:x2\nk3:x3\nk4:x4\n' | mq-send -s "$A" --prepare -K : t)
	tx2=$(mq-send -s "$A" --prepare -k k1 t y1)
	mq-replicate "$A" "$B"
	run mq-recv -s "$B" t
	expect_output "before"
	# the committer dies with every batch appended, before it syncs them:
	# the source's state says committing
	MQ_IO=sync run strace -f -qq -o /dev/null \
	    -e inject=fdatasync:signal=KILL:when=1 mq-send -s "$A" --commit "$tx"
	expect_status 137
	expect_eq "$(mq-topic -s "$A" describe --json t | jq -r '.transactions[] | select(.txid == "'"$tx"'") | .state')" \
	    committing "state on the source"
	mq-replicate "$A" "$B"
	run mq-recv -s "$B" t
	expect_output "before"
	expect_eq "$(mq-topic -s "$B" describe --json t | jq '[.partition[].next] | add')" 1 "offsets on the replica"
	# completed on the source: the replica gets it all, as the source has it
	mq-send -s "$A" --commit "$tx"
	mq-send -s "$A" --commit "$tx2"
	mq-send -s "$A" t after
	mq-replicate "$A" "$B"
	expect_eq "$(mq-recv -s "$B" -F '%p %o %s\n' t | sort)" \
	    "$(mq-recv -s "$A" -F '%p %o %s\n' t | sort)" "replica and source"
	expect_eq "$(mq-recv -s "$B" t | grep -c '^[xy]')" 5 "transactions on the replica"
	for f in "$A"/topics/t/[0-9]*/*.log; do
		expect_same_file "$B/${f#"$A"/}" "$f"
	done
	run mq-topic -s "$B" verify t
	expect_status 0
	# the replica has no transaction state of its own
	expect_eq "$(mq-topic -s "$B" describe --json t | jq '.transactions | length')" 0 "open on the replica"
}

@test "stats counts open transactions (--json, --prometheus)" {
	mq-send --prepare a x >/dev/null
	mq-send b y
	run mq-topic stats --json
	expect_status 0
	expect_eq "$(jq -c '[.topics[] | {topic, transactions}]' <<<"$output")" \
	    '[{"topic":"a","transactions":1},{"topic":"b","transactions":0}]' "json"
	run mq-topic stats --prometheus
	expect_status 0
	expect_contains 'mq_transactions_open{topic="a"} 1'
	expect_contains 'mq_transactions_open{topic="b"} 0'
}

# exits STATUS CMD...: CMD exits STATUS, says why (or not at all for 0),
# and under the ASan build reports no leak; a few times over
exits() {
	local want=$1 rep
	shift
	for ((rep = 0; rep < ${MQ_EXIT_REPS:-3}; rep++)); do
		run --separate-stderr "$@"
		if [[ $status != "$want" || $stderr == *Sanitizer* ||
		    $stderr == *"runtime error"* ]]; then
			echo "run $rep of: $*: status $status, expected $want" >&2
			_mq_dump
			return 1
		fi
	done
}

@test "transaction exits, repeated (no leak under ASan)" {
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
	mq-topic create -P 2 t >/dev/null
	tx=$(mq-send --prepare --check 'exit 3' --txn-timeout 0s t a b)
	txa=$(mq-send --prepare t c)
	mq-send --abort "$txa"
	exits 0 mq-topic describe t
	exits 0 mq-topic describe --json t
	exits 0 mq-topic gc t
	exits 0 mq-topic stats --json
	exits 64 mq-send --commit bogus
	exits 64 mq-send --prepare --id x t m
	exits 64 mq-send --check 'true' t m
	exits 64 mq-topic abort t bogus
	exits 66 mq-send --commit t.0123456789abcdef
	exits 66 mq-send --commit nosuch.0123456789abcdef
	exits 66 mq-topic abort t 0123456789abcdef
	exits 65 mq-send --commit "$txa"
	exits 0 mq-send --abort "$txa"
	exits 0 mq-send --commit "$tx"
	exits 65 mq-topic abort t "$tx"
	exits 65 mq-send --abort "$tx"
}

@test "a damaged prepared batch: verify says so, commit refuses (65) and changes nothing, abort works" {
	mq-topic create -P 2 t >/dev/null
	tx=$(mq-send --prepare t aaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbb)
	f=$(find "$MQ_SPOOL/topics/t/txn" -name '00000000-*' -type f)
	[[ -n $f ]]
	flip_byte "$f" $(($(fsize "$f") - 1))
	run mq-topic verify t
	expect_status 65
	expect_contains "${tx#t.}"
	run mq-send --commit "$tx"
	expect_status 65
	expect_contains "checksum"
	expect_eq "$(mq-topic describe --json t | jq -r '.transactions[0].state')" prepared "state"
	run mq-recv t
	expect_output ""
	run mq-send --abort "$tx"
	expect_status 0
	run mq-topic verify t
	expect_status 0
}

@test "a damaged state of a commit under way: mq-recv stops that partition with 65, once, and ends" {
	need_strace
	mq-topic create -P 1 t >/dev/null
	mq-send t before
	tx=$(seq 1 5 | sed 's/^/tx/' | mq-send --prepare t)
	# killed at the append's data sync: the batch is in, the state says committing
	MQ_IO=sync run strace -f -qq -o /dev/null \
	    -e inject=fdatasync:signal=KILL:when=1 mq-send --commit "$tx"
	expect_status 137
	grep -q '^committing' "$MQ_SPOOL/topics/t/txn/${tx##*.}/state"
	printf 'garbage\n' >"$MQ_SPOOL/topics/t/txn/${tx##*.}/state"
	run timeout 20 mq-recv t
	expect_status 65
	expect_eq "$(grep -c '^before$' <<<"$output")" 1 "the message before it"
	(( ${#lines[@]} <= 3 )) || { _mq_dump; false; }
	[[ $output == *state* ]] || { _mq_dump; false; }
}

@test "mq-replicate: a commit made while a copy runs is never half on the replica" {
	need_strace
	local A=$T/a B=$T/b bad p
	mq-topic -s "$A" create -P 3 t >/dev/null
	# partitions 0 and 2 big, so that the copy takes seconds and the
	# commit comes while partition 0 is copied: partition 1 then gets
	# its part at once, the others' parts come after
	for p in 0 2; do
		head -c 10000000 /dev/zero | tr '\0' a | fold -w 1000 |
		    mq-send -s "$A" --no-sync -p $p t
	done
	tx=$(printf 'x1\nx2\nx3\nx4\nx5\nx6\n' | mq-send -s "$A" --prepare t)
	# every write of the replica slowed down
	strace -f -qq -o /dev/null -e inject=pwrite64,write:delay_enter=15000 \
	    mq-replicate "$A" "$B" 2>"$T/rerr" &
	local pid=$!
	sleep 1
	mq-send -s "$A" --commit "$tx"
	kill -0 "$pid" || skip "the copy ended before the commit (machine too fast to test this)"
	# a reader of the replica while the copy goes on: all of it or none
	# (partition 1, then 2 and 0 past the filler: each look is quick)
	: >"$T/counts"
	while kill -0 "$pid" 2>/dev/null; do
		{ mq-recv -s "$B" -p 1 t; mq-recv -s "$B" -p 2 -o 10000 t
		  mq-recv -s "$B" -p 0 -o 10000 t; } 2>/dev/null |
		    grep -c '^x' >>"$T/counts" || true
	done
	wait "$pid"
	mq-recv -s "$B" t | grep -c '^x' >>"$T/counts" || true
	bad=$(grep -cvx -e 0 -e 6 "$T/counts" || true)
	[[ $bad == 0 ]] || { echo "the replica showed part of it: $(sort "$T/counts" | uniq -c | tr '\n' ' ')" >&2; false; }
	mq-replicate "$A" "$B"
	expect_eq "$(mq-recv -s "$B" t | grep -c '^x')" 6 "after the next run"
	expect_eq "$(mq-recv -s "$B" -F '%p %o %s\n' t | sort | md5sum)" \
	    "$(mq-recv -s "$A" -F '%p %o %s\n' t | sort | md5sum)" "replica and source"
}
