#!/usr/bin/env bats
# many writers on one partition: no loss, no duplicates, no interleaving

load helpers

T="$BATS_TEST_TMPDIR"

# check_all FILE PRODUCERS PER: every "P<id> <seq>" exactly once, and each
# producer's seq strictly increasing in FILE's order
check_all() {
	run awk -v np="$2" -v per="$3" '
		!/^P[0-9]+ [0-9]+$/ { print "garbled line " NR ": " $0; bad = 1; next }
		{
			p = substr($1, 2) + 0; s = $2 + 0
			if (s <= last[p]) { print "P" p ": " s " after " last[p] " (line " NR ")"; bad = 1 }
			last[p] = s; n[p]++
		}
		END {
			for (i = 1; i <= np; i++)
				if (n[i] != per || last[i] != per) { print "P" i ": " n[i] + 0 " messages, last " last[i] + 0; bad = 1 }
			if (NR != np * per) { print NR " lines, want " np * per; bad = 1 }
			exit bad
		}' "$1"
	if [[ $status -ne 0 ]]; then
		printf '%s\n' "${lines[@]:0:20}" >&2
		return 1
	fi
}

# producer ID PER: "P<id> 1" .. "P<id> PER" in chunks, a little slowly
producer() {
	local id=$1 per=$2 c step=1000
	for ((c = 0; c < per; c += step)); do
		seq $((c + 1)) $((c + step > per ? per : c + step)) | sed "s/^/P$id /"
		sleep 0.01
	done
}

@test "8 concurrent producers x 20,000 messages: all there once, each in order" {
	run mq-topic create t
	expect_status 0
	local i pids=()
	for i in 1 2 3 4 5 6 7 8; do
		(producer "$i" 20000 | mq-send t) 3>&- &
		pids+=($!)
	done
	local rc bad=0
	for i in "${pids[@]}"; do
		rc=0
		wait "$i" || rc=$?
		((rc == 0)) || { echo "producer pid $i exited $rc" >&2; bad=1; }
	done
	((bad == 0))
	mq-recv t >"$T/out"
	check_all "$T/out" 8 20000
	run mq-topic verify t
	expect_status 0
	# offsets are contiguous from 0
	run bash -c "mq-recv -F '%o\n' t | awk '\$1 != NR - 1 { print; exit 1 }'"
	expect_status 0
}

@test "8 producers each running many short mq-send: batches never interleave" {
	run mq-topic create t
	expect_status 0
	local i pids=()
	for i in 1 2 3 4 5 6 7 8; do
		(
			for ((j = 0; j < 30; j++)); do
				seq $((j * 10 + 1)) $((j * 10 + 10)) | sed "s/^/P$i /" | mq-send --no-sync t || exit 1
			done
		) 3>&- &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	mq-recv t >"$T/out"
	check_all "$T/out" 8 300
	# each invocation's 10 messages are adjacent
	run awk '{ p = $1; s = $2 } (s - 1) % 10 != 0 && p != prev { print "split batch at line " NR; exit 1 } { prev = p }' "$T/out"
	expect_status 0
}

@test "readers beside 8 writers never see a partial or garbled message" {
	run mq-topic create t
	expect_status 0
	# a follower for the whole run
	bg "$T/follow" "$T/follow.err" mq-recv -f --timeout 5s t
	local fpid=$BG_PID
	local i pids=()
	for i in 1 2 3 4 5 6 7 8; do
		(producer "$i" 20000 | mq-send --sync-interval 100ms t) 3>&- &
		pids+=($!)
	done
	# snapshot readers while the writers run
	local n=0 alive
	while :; do
		alive=0
		for i in "${pids[@]}"; do
			kill -0 "$i" 2>/dev/null && alive=1
		done
		mq-recv t >"$T/snap"
		run awk '
			!/^P[1-8] [0-9]+$/ { print "garbled line " NR ": " $0; exit 1 }
			{ if ($2 + 0 <= last[$1]) { print "out of order or duplicate at line " NR; exit 1 } last[$1] = $2 + 0 }' "$T/snap"
		expect_status 0
		n=$((n + 1))
		((alive)) || break
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	echo "# $n snapshots" >&3
	# the last snapshot was taken after every writer ended
	check_all "$T/snap" 8 20000
	# the follower saw everything, once, in order, then timed out
	wait_bg "$fpid" 30
	expect_eq "$BG_STATUS" 75 "follower exit status"
	check_all "$T/follow" 8 20000
}

@test "writers on 4 partitions at once with keys: per key order kept" {
	run mq-topic create -P 4 t
	expect_status 0
	local i pids=()
	for i in 1 2 3 4 5 6; do
		(producer "$i" 5000 | mq-send -k "key$i" --no-sync t) 3>&- &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	mq-recv t >"$T/out"
	check_all "$T/out" 6 5000
	run bash -c "mq-recv -F '%k %p\n' t | sort -u | awk '{ print \$1 }' | uniq -d"
	expect_output ""
}
