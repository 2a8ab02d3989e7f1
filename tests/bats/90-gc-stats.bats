#!/usr/bin/env bats
# 90-gc-stats: retention (mq-topic gc) and monitoring (mq-topic stats)

load helpers

setup() {
	mq_setup
	T=$BATS_TEST_TMPDIR
	run mq-topic create -P 2 --config segment.bytes=1024 t
	local i
	# a batch each, as many sends would write them (send_each: one mq-send)
	for ((i = 0; i < 60; i++)); do
		printf '{"payload":"message number %d, padded to about forty bytes"}\n' "$i"
	done | send_each t -p 0
}

# has FILE STR: FILE contains STR
has() { grep -qF -- "$2" "$1" 2>/dev/null; }

segs() { ls "$MQ_SPOOL/topics/t/0/" | grep -c '\.log$'; }

@test "gc by retention.bytes deletes the oldest segments, never the newest" {
	local before
	before=$(segs)
	((before > 3))
	run mq-topic config t retention.bytes=1500
	run mq-topic -v gc t
	expect_status 0
	expect_contains "deleted (retention.bytes)"
	(($(segs) < before))
	# what is left is the newest messages, in order, up to the last
	run mq-recv -p 0 t
	expect_status 0
	[[ ${lines[-1]} == "message number 59, padded to about forty bytes" ]]
	# down to one segment at most, never none
	run mq-topic config t retention.bytes=0
	run mq-topic gc
	[[ $(segs) -eq 1 ]]
	run mq-send -p 0 t after
	run mq-recv -p 0 -o -1 t
	expect_output after
}

@test "cleanup.policy=compact: gc deletes nothing by age or size; compact,delete is retention" {
	local before
	before=$(segs)
	run mq-topic config t cleanup.policy=compact retention.bytes=0 retention.ms=0
	expect_status 0
	run mq-topic gc t
	expect_status 0
	expect_eq "$(segs)" "$before" "segments of a compact topic"
	run mq-topic config t cleanup.policy=compact,delete
	expect_status 0
	run mq-topic config t
	expect_contains "cleanup.policy=compact,delete"
	run mq-topic gc t
	[[ $(segs) -eq 1 ]] || { echo "compact,delete kept $(segs) segments" >&2; false; }
	run mq-topic create --config cleanup.policy=delete,compact u
	expect_status 0
	run mq-topic config u
	expect_contains "cleanup.policy=compact,delete"
}

@test "gc by retention.ms; -1 keeps everything; a reader below the first offset starts there with a warning" {
	run mq-topic config t retention.ms=-1 retention.bytes=-1
	run mq-topic gc t
	[[ $(mq-topic describe t | awk '$1 == "0" { print $2 }') -eq 0 ]]
	sleep 1.1
	run mq-send -p 0 t fresh
	run mq-topic config t retention.ms=1000
	run mq-topic gc t
	expect_status 0
	local first
	first=$(mq-topic describe t | awk '$1 == "0" && NF == 6 { print $2 }')
	((first > 0))
	run --separate-stderr mq-recv -p 0 -o 0 t
	expect_status 0
	expect_contains "no longer retained" stderr
	[[ ${lines[-1]} == fresh ]]
	run mq-topic verify t
	expect_status 0
}

@test "gc is safe beside a reader that holds a deleted segment open" {
	mq-topic config t retention.bytes=0
	# slow enough (60 messages in 2 s) that gc, 0.5 s in, finds the
	# reader in the middle of the segments
	bg "$T/out" "$T/err" mq-recv -f -p 0 --rate 30/s t
	sleep 0.5
	run mq-topic gc t
	expect_status 0
	wait_until 20 has "$T/out" "message number 59,"
	stop_bg "$BG_PID"
	expect_eq "$BG_STATUS" 0 "exit status"
	# what it read is in order, ends with the last message, and says
	# which offsets it could no longer read
	awk '{ n = $3 + 0; if (NR > 1 && n <= last) exit 1; last = n }' "$T/out"
	grep -q "no longer retained" "$T/err"
}

@test "stats: a table, --json and --prometheus agree" {
	run mq-recv -g g -c 10 t
	run mq-topic stats
	expect_status 0
	[[ ${lines[0]} == TOPIC*PARTITION*FIRST*NEXT*MESSAGES*BYTES*SEGMENTS ]]
	[[ $(awk '$1 == "t" && $2 == 0 { print $4 }' <<<"$output") -eq 60 ]]
	run bash -c 'mq-topic stats --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
t = d[\"topics\"][0]
assert t[\"topic\"] == \"t\"
assert t[\"partitions\"][0][\"next\"] == 60, t
assert t[\"partitions\"][0][\"messages\"] == 60
g = t[\"groups\"][0]
assert g[\"group\"] == \"g\" and g[\"partitions\"][0][\"lag\"] == 50, g
assert g[\"partitions\"][0][\"committed\"] == 10
print(\"ok\")"'
	expect_output ok
	run mq-topic stats --prometheus
	expect_status 0
	expect_contains 'mq_messages{topic="t",partition="0"} 60'
	expect_contains 'mq_group_lag{topic="t",group="g",partition="0"} 50'
	expect_contains '# TYPE mq_bytes gauge'
	run mq-topic stats --json --prometheus
	expect_status 64
}

@test "stats --prometheus: each family whole, HELP and TYPE first, counters end in _total" {
	run mq-send -p 0 u x
	run mq-recv -g g2 -c 1 u
	run mq-topic stats --prometheus
	expect_status 0
	# the exposition rules promtool checks: a family's lines together,
	# its TYPE before its samples, a counter's name ends in _total
	run awk '
	    /^# TYPE / { if (seen[$3]++) { print "family " $3 " twice"; bad = 1 }
		type[$3] = $4; cur = $3; next }
	    /^# HELP / { next }
	    { name = $0; sub(/[{ ].*/, "", name)
	      if (name != cur) { print "sample " name " outside its family"; bad = 1 }
	      if (type[name] == "counter" && name !~ /_total$/) {
		print "counter " name " without _total"; bad = 1 } }
	    END { exit bad }' <<<"$output"
	expect_status 0
	if command -v promtool >/dev/null; then
		run bash -c "mq-topic stats --prometheus | promtool check metrics"
		expect_status 0
	fi
}

@test "stats -o FILE: written whole, then renamed; on an error FILE is left alone" {
	run mq-topic stats --prometheus -o "$T/mq.prom"
	expect_status 0
	run cat "$T/mq.prom"
	expect_contains 'mq_messages{topic="t",partition="0"} 60'
	echo old >"$T/keep.prom"
	run mq-topic -s "$T/none" stats -o "$T/keep.prom"
	expect_status 66
	expect_eq "$(cat "$T/keep.prom")" old "the file after a failed stats"
	run bash -c "ls '$T' | grep -c tmp"
	expect_output 0
}

@test "stats and gc on a missing spool exit 66; gc of a missing topic 66" {
	run mq-topic -s "$T/none" stats
	expect_status 66
	run mq-topic gc nosuch
	expect_status 66
}
