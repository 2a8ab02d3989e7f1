#!/usr/bin/env bats
# holes in the log, legal gaps, and batches written by a newer mq
# (mq-spool(5), Gaps and Compatibility)

load helpers

T="$BATS_TEST_TMPDIR"

# name OFFSET: the segment file of partition 0 of topic t starting there
name() {
	printf '%s/%020d.log' "$(partdir t)" "$1"
}

# thirty: topic t, 30 batches of 20 messages, 40 messages a segment
# (segments 0, 40, ..., 560; offsets 0 to 599), as 30 sends would write
# them (send_batches: one mq-send)
thirty() {
	local i j pad
	pad=$(printf 'x%.0s' {1..60})
	run mq-topic create --config segment.bytes=4096 t
	expect_status 0
	for ((i = 1; i <= 30; i++)); do
		for ((j = 1; j <= 20; j++)); do
			echo "m$i-$j-$pad"
		done
	done | send_batches 20 t
	expect_eq "$(segments t | wc -l)" 15 "segments"
	[[ -f $(name 560) ]] || { ls "$(partdir t)" >&2; false; }
}

# offsets A B [A B ...]: the offsets from A to B, each range in turn
offsets() {
	while (($# > 0)); do
		seq "$1" "$2"
		shift 2
	done
}

# reading PID FILE: process PID has FILE open
reading() {
	local f
	for f in /proc/"$1"/fd/*; do
		[[ $(readlink "$f") == "$2" ]] && return 0
	done
	return 1
}

# ---- holes: damage, never read past in silence -----------------------------

@test "a deleted middle segment: verify names the offsets, mq-recv stops there with 65" {
	thirty
	rm "$(name 200)"
	rm -f "$(partdir t)/00000000000000000200.index"
	run mq-topic verify t
	expect_status 65
	expect_contains "offsets 200 to 239"
	run --separate-stderr mq-recv -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 0 199)"
	expect_contains "offsets 200 to 239" stderr
	expect_not_contains "no longer retained" stderr
	# starting inside the hole stops at once, saying so
	run --separate-stderr mq-recv -o 210 -F '%o\n' t
	expect_status 65
	expect_output ""
	expect_contains "offsets 210 to 239" stderr
	# and describe does not count the missing messages
	run mq-topic describe t
	expect_status 0
	[[ $output =~ \ 0\ +0\ +600\ +560\  ]] || { _mq_dump; false; }
}

@test "--skip-damage reads past a hole, warning, and exits 65" {
	thirty
	rm "$(name 200)"
	run --separate-stderr mq-recv --skip-damage -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 0 199 240 599)"
	expect_contains "offsets 200 to 239" stderr
}

@test "a misnamed segment (200 renamed 203): verify 65, mq-recv stops at 200" {
	thirty
	mv "$(name 200)" "$(name 203)"
	run mq-topic verify t
	expect_status 65
	expect_contains "offsets 200 to 202"
	run --separate-stderr mq-recv -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 0 199)"
	expect_contains "00000000000000000203.log" stderr
}

@test "a segment copied over the next (120 over 160): 65, nothing twice, nothing skipped" {
	thirty
	cp "$(name 120)" "$(name 160)"
	run mq-topic verify t
	expect_status 65
	expect_contains "offsets 160 to 199"
	run --separate-stderr mq-recv -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 0 159)"
	expect_contains "00000000000000000160.log" stderr
	run --separate-stderr mq-recv --skip-damage -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 0 159 200 599)"
}

@test "swapped segment names (120 and 160): mq-recv stops at 120 with 65 and says why" {
	thirty
	mv "$(name 120)" "$T/x"
	mv "$(name 160)" "$(name 120)"
	mv "$T/x" "$(name 160)"
	run --separate-stderr mq-recv -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 0 119)"
	expect_contains "00000000000000000120.log" stderr
	expect_contains "160" stderr
	run mq-topic verify t
	expect_status 65
}

@test "a consumer group stops at a hole and keeps its place there" {
	thirty
	rm "$(name 200)"
	run --separate-stderr mq-recv -g g -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 0 199)"
	expect_contains "offsets 200 to 239" stderr
	# the next run starts at the hole again, never past it
	run --separate-stderr mq-recv -g g -F '%o\n' t
	expect_status 65
	expect_output ""
	expect_contains "offsets 200 to 239" stderr
	run --separate-stderr mq-recv -g g --skip-damage -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 240 599)"
}

@test "the newest segment deleted: its offsets are never given again; verify names them, a group reads on, a reader stops at the hole" {
	thirty
	run -0 mq-recv -g g -F '%o' t
	rm "$(name 560)" "$(partdir t)/00000000000000000560.index"
	run mq-topic verify t
	expect_status 65
	expect_contains "committed up to offset 600, past the partition's end (560): offsets 560 to 599"
	# a writer goes on past what the group read: no offset twice
	run -0 mq-send --print-offsets t new1 new2
	expect_output $'0 600\n0 601'
	run --separate-stderr mq-recv -g g -F '%o %s\n' t
	expect_status 0
	expect_output $'600 new1\n601 new2'
	# the lost offsets are a hole: verify and a reader name it
	run mq-topic verify t
	expect_status 65
	expect_contains "offsets 560 to 599 are missing"
	run --separate-stderr mq-recv -o 550 -F '%o\n' t
	expect_status 65
	expect_output "$(offsets 550 559)"
	expect_contains "offsets 560 to 599" stderr
	# the only segment deleted: a writer starts past the group's offsets
	run -0 mq-send u a b c
	run -0 mq-recv -g g u
	rm "$(partdir u)"/0*
	run mq-topic verify u
	expect_status 65
	expect_contains "offsets 0 to 2 are lost"
	run -0 mq-send --print-offsets u d
	expect_output "0 3"
	run --separate-stderr mq-recv -g g u
	expect_status 0
	expect_output "d"
}

@test "a hole inside a segment (batch offsets jump): verify 65, mq-recv stops" {
	run mq-send t a b
	python3 "$SEGTOOL" plant "$(seg t)" 0 0 3 2 >/dev/null
	run mq-topic verify t
	expect_status 65
	expect_contains "offsets 2 to 4"
	run --separate-stderr mq-recv -F '%o %s\n' t
	expect_status 65
	expect_output $'0 a\n1 b'
	expect_contains "offsets 2 to 4" stderr
}

# ---- legal gaps ------------------------------------------------------------

@test "retention's gap below the first segment is no damage" {
	thirty
	rm "$(name 0)" "$(name 40)"
	run mq-topic verify t
	expect_status 0
	run --separate-stderr mq-recv -F '%o\n' t
	expect_status 0
	expect_output "$(offsets 80 599)"
	run --separate-stderr mq-recv -o 10 -F '%o\n' t
	expect_status 0
	expect_output "$(offsets 80 599)"
	expect_contains "no longer retained" stderr
}

@test "retention deleting segments under a reader is no damage" {
	local try held=0 o old=()
	# all but the two newest segments (0 to 480) go, oldest first, as
	# gc would: what the reader reads after them is 80 messages (8 s at
	# its rate), not the 360 (36 s) that 6 segments gone would leave
	for ((o = 0; o <= 480; o += 40)); do
		old+=("$(name "$o")")
	done
	for try in 1 2 3; do
		thirty
		bg "$T/out" "$T/err" mq-recv --rate 10/s -F '%o\n' t
		# it takes 4 s over segment 0, which it holds open from the
		# start (2 s were too few for a CI run on a loaded machine)
		wait_until 10 reading "$BG_PID" "$(name 0)"
		# the reader is in segment 0 as they go
		rm "${old[@]}"
		# still in segment 0 once they are gone, or this machine
		# stalled us past its 4 s: then the premise did not hold, and
		# the trial is made again on a new topic
		if reading "$BG_PID" "$(name 0) (deleted)"; then
			held=1
			break
		fi
		kill "$BG_PID"
		wait_bg "$BG_PID" 10
		mq-topic delete --force t
	done
	((held)) || { echo "3 times the reader left segment 0 too soon" >&2; false; }
	wait_bg "$BG_PID" 60
	expect_eq "$BG_STATUS" 0 "status"
	expect_eq "$(cat "$T/out")" "$(offsets 0 39 520 599)" "offsets"
	grep -q "no longer retained" "$T/err"
}

@test "a batch flagged compacted may start past the previous one's end" {
	run mq-send t a b
	python3 "$SEGTOOL" plant "$(seg t)" 0 2 3 2 >/dev/null
	run --separate-stderr mq-recv -F '%o %s\n' t
	expect_status 0
	expect_output $'0 a\n1 b\n5 c0\n6 c1'
	expect_eq "$stderr" "" "stderr"
	run mq-topic verify t
	expect_status 0
	run mq-send --print-offsets t d
	expect_status 0
	expect_output "0 7"
}

# ---- batches written by a newer mq -------------------------------------------

@test "a batch of unknown type 7: 65, 'newer version', never called damage or cut" {
	run mq-send t a b
	python3 "$SEGTOOL" plant "$(seg t)" 7 0 0 1 >/dev/null
	local size
	size=$(fsize "$(seg t)")
	run --separate-stderr mq-recv t
	expect_status 65
	expect_output $'a\nb'
	expect_contains "newer version of mq" stderr
	expect_contains "type 7" stderr
	expect_not_contains "damage" stderr
	expect_not_contains "checksum" stderr
	run mq-send t c
	expect_status 65
	expect_contains "newer version of mq"
	run mq-topic verify t
	expect_status 65
	expect_contains "newer version of mq"
	run mq-topic verify --repair t
	expect_status 65
	expect_eq "$(fsize "$(seg t)")" "$size" "segment size after --repair"
	ls "$(partdir t)" | grep -q cut && { ls "$(partdir t)" >&2; false; }
	true
}

@test "newer magic, unknown flag bits and types 2-127: 65 'newer version'" {
	local args
	for args in "0 0x04 0 1 mqB2" "0 0x05 0 1" "0 0x08 0 1" "2 0 0 0" "127 0 0 1"; do
		run mq-topic delete t
		run mq-send t a
		# shellcheck disable=SC2086
		python3 "$SEGTOOL" plant "$(seg t)" $args >/dev/null
		run --separate-stderr mq-recv t
		expect_status 65
		expect_output "a"
		expect_contains "newer version of mq" stderr
	done
}

@test "a batch of skippable type 200 is passed; the messages around it are read" {
	run mq-send t a b
	python3 "$SEGTOOL" plant "$(seg t)" 200 0x10 0 3 >/dev/null
	run mq-send --print-offsets t c
	expect_status 0
	expect_output "0 5"
	run --separate-stderr mq-recv -F '%o %s\n' t
	expect_status 0
	expect_output $'0 a\n1 b\n5 c'
	expect_eq "$stderr" "" "stderr"
	run mq-topic verify t
	expect_status 0
	# ignorable flag bits on a data batch are ignored
	python3 "$SEGTOOL" plant "$(seg t)" 0 0xf0 0 1 >/dev/null
	run --separate-stderr mq-recv -F '%o %s\n' t
	expect_status 0
	expect_output $'0 a\n1 b\n5 c\n6 c0'
}
