#!/usr/bin/env bats
# mq-topic gc removes what crashed topic creations and deletions left in
# SPOOL/tmp, and nothing that is in use or young (issue 8)

load helpers

# leftovers: a creation killed at its publishing rename, a deletion killed
# in the middle of removing the files
leftovers() {
	need_strace
	run mq-topic create keep
	expect_status 0
	run mq-send keep kept-message
	expect_status 0
	run strace -f -qq -o /dev/null -e inject=renameat2:signal=KILL mq-topic create t1
	expect_status 137
	run mq-send t2 a b c
	expect_status 0
	run strace -f -qq -o /dev/null -e inject=unlinkat:signal=KILL:when=3 mq-topic delete t2
	expect_status 137
	expect_eq "$(ls "$MQ_SPOOL/tmp" | sed 's/\..*//' | sort | tr '\n' ' ')" "del new " "tmp/"
	expect_eq "$(ls "$MQ_SPOOL/topics")" keep "topics/"
}

# age ENTRY SECONDS: make tmp/ENTRY look made and last changed SECONDS ago
# (its name carries its creation time); prints the new name
age() {
	local e=$1 s=$2 kind pid sec nsec new
	IFS=. read -r kind pid sec nsec <<<"$e"
	new=$kind.$pid.$((sec - s)).$nsec
	mv "$MQ_SPOOL/tmp/$e" "$MQ_SPOOL/tmp/$new"
	touch -d "@$(($(date +%s) - s))" "$MQ_SPOOL/tmp/$new"
	echo "$new"
}

@test "gc removes a crashed creation's and a crashed deletion's leftovers from tmp/ once they are old" {
	leftovers
	local e
	for e in $(ls "$MQ_SPOOL/tmp"); do
		age "$e" 7200 >/dev/null
	done
	mkdir "$MQ_SPOOL/tmp/not-a-stage"
	run mq-topic -v gc
	expect_status 0
	expect_contains "tmp/new."
	expect_contains "tmp/del."
	expect_contains "removed (left by a crash)"
	expect_eq "$(ls "$MQ_SPOOL/tmp")" not-a-stage "tmp/ after gc"
	run mq-recv keep
	expect_status 0
	expect_output kept-message
	# a second gc finds nothing
	run mq-topic -v gc
	expect_status 0
	expect_not_contains "removed"
}

@test "gc leaves young leftovers in tmp/ alone (a creation may be a moment from its lock)" {
	leftovers
	run mq-topic -v gc
	expect_status 0
	expect_not_contains "removed"
	expect_eq "$(ls "$MQ_SPOOL/tmp" | wc -l)" 2 "entries in tmp/"
	# old by its name, but changed a moment ago: still young
	local e
	for e in $(ls "$MQ_SPOOL/tmp"); do
		e=$(age "$e" 7200)
		touch "$MQ_SPOOL/tmp/$e"
	done
	run mq-topic gc
	expect_status 0
	expect_eq "$(ls "$MQ_SPOOL/tmp" | wc -l)" 2 "entries in tmp/"
}

@test "gc never removes a stage that a live process holds locked, however old" {
	command -v flock >/dev/null || skip "flock(1) not installed"
	leftovers
	local e old=()
	for e in $(ls "$MQ_SPOOL/tmp"); do
		old+=("$(age "$e" 7200)")
	done
	# a slow creation: its stage is locked by the process making it
	bg "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" flock -x -o "$MQ_SPOOL/tmp/${old[0]}" sleep 60
	wait_until 10 bash -c "! flock -xn '$MQ_SPOOL/tmp/${old[0]}' true"
	run mq-topic -v gc
	expect_status 0
	[[ -d $MQ_SPOOL/tmp/${old[0]} ]]
	expect_missing "$MQ_SPOOL/tmp/${old[1]}"
	stop_bg "$BG_PID"
	run mq-topic -v gc
	expect_status 0
	expect_missing "$MQ_SPOOL/tmp/${old[0]}"
}

@test "a topic created or deleted beside a looping gc is never harmed" {
	local i
	run mq-topic create keep
	expect_status 0
	bg "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/err" bash -c 'while :; do mq-topic gc || exit 1; done'
	for i in 1 2 3 4 5 6 7 8 9 10; do
		run mq-topic create -P 4 "c$i"
		expect_status 0
		run mq-send "c$i" "m$i"
		expect_status 0
		run mq-recv "c$i"
		expect_output "m$i"
		run mq-topic delete "c$i"
		expect_status 0
	done
	if ! kill -0 "$BG_PID"; then
		cat "$BATS_TEST_TMPDIR/err" >&2
		return 1
	fi
	stop_bg "$BG_PID"
	expect_eq "$(ls "$MQ_SPOOL/tmp" | wc -l)" 0 "entries in tmp/"
	expect_eq "$(ls "$MQ_SPOOL/topics")" keep "topics/"
}
