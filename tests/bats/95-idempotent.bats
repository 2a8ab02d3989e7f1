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
	run mq-topic create --config dedup.window.ms=300 t
	run mq-send --id x t first
	run mq-send --id x t dropped
	sleep 0.5
	run mq-send --id x t second
	run mq-recv t
	expect_output $'first\nsecond'
	sleep 0.5
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
