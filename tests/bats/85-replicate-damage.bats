#!/usr/bin/env bats
# 85-replicate-damage: damage on the source stops its partition there,
# is said, and ends the run in 65; every other partition and topic is
# copied whole, and nothing is ever passed in silence

load helpers

setup() {
	mq_setup
	T=$BATS_TEST_TMPDIR
	R=$MQ_BINDIR/mq-replicate
	[[ -x $R ]] || { echo "# $R: not built" >&2; return 1; }
	# a pipe command: runs the server here, as ssh would run it there
	cat >"$T/pipe" <<-'EOF'
	#!/bin/sh
	shift
	exec sh -c "$*"
	EOF
	chmod +x "$T/pipe"
	E=(-e "$T/pipe" --remote-path "$R")
}

# copy HOW DST [OPTION...]: replicate $MQ_SPOOL to DST, locally, by a
# push or by a pull through the pipe command; run's status and stderr
copy() {
	local how=$1 dst=$2
	shift 2
	case $how in
	local) run --separate-stderr "$R" "$@" "$MQ_SPOOL" "$dst" ;;
	push) run --separate-stderr "$R" "${E[@]}" "$@" "$MQ_SPOOL" "host:$dst" ;;
	pull) run --separate-stderr "$R" "${E[@]}" "$@" "host:$MQ_SPOOL" "$dst" ;;
	esac
}

# count SPOOL TOPIC [PART]: the messages a reader of SPOOL gets
count() {
	if [[ -n ${3-} ]]; then
		mq-recv -s "$1" -p "$3" "$2" | wc -l
	else
		mq-recv -s "$1" "$2" | wc -l
	fi
}

# hundreds TOPIC N [OPTION...]: N sends of 100 lines each
hundreds() {
	local topic=$1 n=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		seq $((i * 100)) $((i * 100 + 99)) | mq-send "$@" "$topic"
	done
}

@test "damage in a sealed segment: its partition copied up to it, the rest whole, 65 naming it (local, push, pull)" {
	mq-topic create -P 2 --config segment.bytes=4096 h
	hundreds h 20 -p 0
	seq 50 | mq-send -p 1 h
	seq 5 | mq-send a
	seq 5 | mq-send z
	local s0 how
	s0=$(seg h 0)
	# the second batch's header, in the first (sealed) segment
	flip_byte "$s0" $(($(batch_pos "$s0" 2) + 10))
	[[ $(segments h 0 | wc -l) -gt 1 ]]
	for how in local push pull; do
		copy $how "$T/r-$how"
		expect_status 65
		expect_contains "h/0: " stderr
		expect_contains "a bad batch header; not copied past offset 100" stderr
		expect_contains "1 partition stopped at damage" stderr
		expect_eq "$(count "$T/r-$how" h 0)" 100 "$how: h/0"
		expect_eq "$(count "$T/r-$how" h 1)" 50 "$how: h/1"
		expect_eq "$(count "$T/r-$how" a)" 5 "$how: a"
		expect_eq "$(count "$T/r-$how" z)" 5 "$how: z"
		run mq-topic -s "$T/r-$how" verify
		expect_status 0
	done
}

@test "damage in the head segment is never passed in silence: a bad header, a body checksum" {
	hundreds h 5
	hundreds b 5
	flip_byte "$(seg h)" $(($(batch_pos "$(seg h)" 2) + 10))
	# a body byte of b's third batch: the two before it, read in the
	# same chunk, are copied; nothing from it on
	flip_byte "$(seg b)" $(($(batch_pos "$(seg b)" 3) + 100))
	local how
	for how in local push pull; do
		copy $how "$T/r-$how"
		expect_status 65
		expect_contains "h/0: " stderr
		expect_contains "a bad batch header" stderr
		expect_contains "b/0: " stderr
		expect_contains "a body checksum mismatch" stderr
		expect_contains "2 partitions stopped at damage" stderr
		expect_eq "$(count "$T/r-$how" h)" 100 "$how: h"
		expect_eq "$(count "$T/r-$how" b)" 200 "$how: b"
	done
	# what is appended after the damage never crosses it either
	seq 10 | mq-send h
	copy local "$T/r-local"
	expect_status 65
	expect_contains "not copied past offset 100" stderr
	expect_eq "$(count "$T/r-local" h)" 100 "h after a second run"
	run mq-topic -s "$T/r-local" verify
	expect_status 0
}

@test "a batch a newer mq wrote stops its partition: 65, 'newer version of mq', the rest copied" {
	seq 3 | mq-send t
	seq 3 | mq-send u
	python3 "$SEGTOOL" plant "$(seg t)" 7 0 0 1 >/dev/null
	local how
	for how in local push pull; do
		copy $how "$T/r-$how"
		expect_status 65
		expect_contains "t/0: " stderr
		expect_contains "newer version of mq" stderr
		expect_not_contains "checksum" stderr
		expect_eq "$(count "$T/r-$how" t)" 3 "$how: t"
		expect_eq "$(count "$T/r-$how" u)" 3 "$how: u"
	done
}

@test "a torn tail and zeros at the end are not damage: 0, copied up to them, the rest once written" {
	seq 3 | mq-send t
	seq 3 | mq-send t
	cut_bytes "$(seg t)" 5
	seq 3 | mq-send u
	head -c 100 /dev/zero >>"$(seg u)"
	local how
	for how in local push pull; do
		copy $how "$T/r-$how"
		expect_status 0
		expect_eq "${stderr-}" "" "$how: stderr"
		expect_eq "$(count "$T/r-$how" t)" 3 "$how: t"
		expect_eq "$(count "$T/r-$how" u)" 3 "$how: u"
	done
	# the next writers cut both tails; what they write is copied
	seq 4 6 | mq-send t
	seq 4 6 | mq-send u
	for how in local push pull; do
		copy $how "$T/r-$how"
		expect_status 0
		expect_eq "$(count "$T/r-$how" t)" 6 "$how: t"
		expect_eq "$(count "$T/r-$how" u)" 6 "$how: u"
	done
}

@test "--follow goes on past a damaged partition: the others keep streaming, the damage said once" {
	hundreds h 5
	seq 3 | mq-send z
	flip_byte "$(seg h)" $(($(batch_pos "$(seg h)" 3) + 100))
	bg "$T/f.out" "$T/f.err" "$R" --follow "$MQ_SPOOL" "$T/r"
	local fp=$BG_PID
	wait_until 10 bash -c "[ \"\$(mq-recv -s '$T/r' z | wc -l)\" = 3 ]"
	echo more | mq-send h
	seq 4 6 | mq-send z
	wait_until 10 bash -c "[ \"\$(mq-recv -s '$T/r' z | wc -l)\" = 6 ]"
	echo more | mq-send h
	run mq-send --replicas 1 --timeout 10s z 7
	expect_status 0
	kill -0 "$fp"
	stop_bg "$fp"
	expect_eq "$(grep -c 'h/0: .*a body checksum mismatch' "$T/f.err")" 1 \
	    "damage reports"
	expect_eq "$(count "$T/r" h)" 200 "h"
}

@test "a hole in the source's log (a deleted middle segment) is copied as the same hole: said, 65, then the copy goes on" {
	mq-topic create --config segment.bytes=1024 h
	hundreds h 10
	seq 3 | mq-send z
	rm "$(segments h | sed -n 3p)"
	local how
	for how in local push pull; do
		copy $how "$T/r-$how"
		expect_status 65
		expect_contains "are missing on the source" stderr
		expect_contains "copied as the same hole" stderr
		expect_eq "$(mq-recv -s "$T/r-$how" --skip-damage h 2>/dev/null | wc -l)" \
		    "$(mq-recv --skip-damage h 2>/dev/null | wc -l)" "$how: h"
		expect_eq "$(count "$T/r-$how" z)" 3 "$how: z"
	done
	# an incremental run past the hole copies what follows, quietly
	seq 5 | mq-send h
	copy local "$T/r-local"
	expect_status 0
	expect_eq "$(mq-recv -s "$T/r-local" --skip-damage h 2>/dev/null | wc -l)" \
	    "$(mq-recv --skip-damage h 2>/dev/null | wc -l)" "h after"
	# a follower copies past such a hole too (a newest segment deleted
	# past a group's commit leaves one when the next send comes)
	run mq-recv -g g --skip-damage h
	expect_status 65
	rm "$(last_seg h)"
	bg "$T/f.out" "$T/f.err" "$R" --follow "$MQ_SPOOL" "$T/r-local"
	local fp=$BG_PID
	echo after-hole | mq-send h
	wait_until 10 bash -c "mq-recv -s '$T/r-local' --skip-damage h 2>/dev/null | grep -q after-hole"
	kill -0 "$fp"
	stop_bg "$fp"
}
