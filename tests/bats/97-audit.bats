#!/usr/bin/env bats
# a new user's tour of DESIGN.md and the man pages: each test here is a
# place where the programs or their pages did not do what they said

load helpers

# render PAGE: the man page as plain text
render() {
	mandoc -Tascii "$MQ_REPO/man/$1" | col -b
}

@test "man pages: no macro swallows the prose after it" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	local p bad=()
	for p in mq-send.1 mq-recv.1 mq-topic.1 mq-replicate.1 mq-spool.5 mq.7; do
		# an Fl inside a Pq turns every later word into a flag
		while read -r l; do bad+=("$p: $l"); done < <(render "$p" |
			grep -E '(^| )-[a-z]+ -[a-z]+ -[a-z]+ ')
		# a macro name left in the text, or quotes that never closed
		while read -r l; do bad+=("$p: $l"); done < <(render "$p" |
			grep -E "(^| )(Xr|Sx|Fl|Pq) |'''|\.\.It|\(or run, or\)|while was|fail with \"such")
	done
	if ((${#bad[@]})); then
		printf '%s\n' "${bad[@]}" >&2
		false
	fi
}

@test "list --json stays JSON when a listed topic cannot be opened (deleted since the listing)" {
	mq-send b x
	# a name listed whose topic does not open: what a delete between
	# the listing and the open leaves
	mkdir "$MQ_SPOOL/topics/a"
	run --separate-stderr mq-topic list --json
	expect_status 0
	jq -e . <<<"$output" >/dev/null || { _mq_dump; false; }
	expect_eq "$(jq -c 'map(.topic)' <<<"$output")" '["b"]' "topics"
}

@test "a date that does not exist is refused, not moved to the next month" {
	mq-send t x
	local d
	for d in 2026-02-30 2026-02-29 2026-04-31 2100-02-29 2026-06-31T10:00:00Z; do
		run --separate-stderr mq-recv -o "@$d" t
		expect_status 64
		run --separate-stderr mq-send --at "$d" t y
		expect_status 64
		expect_contains "invalid time" stderr
		run --separate-stderr mq-topic reset g t --to "@$d"
		expect_status 64
	done
	# the last day of each month, a leap day and a leap second still are
	for d in 2024-02-29 2000-02-29 2026-04-30 2026-12-31T23:59:60Z; do
		run --separate-stderr mq-recv -o "@$d" t
		expect_status 0
	done
}

@test "an empty spool or output path is a usage error that says so, not ': Invalid argument'" {
	mq-send t x
	local c
	for c in "mq-send -s '' t x" "mq-recv -s '' t" "mq-topic -s '' list" \
	    "mq-topic stats -o ''" "mq-replicate '' $BATS_TEST_TMPDIR/r" \
	    "mq-replicate $MQ_SPOOL ''" "mq-replicate --promote ''"; do
		eval "run --separate-stderr $c"
		expect_status 64
		expect_contains "empty" stderr
		expect_not_contains ": :" stderr
	done
}

@test "mq-topic: output lost to a full device is exit 74, not 0" {
	[[ -w /dev/full ]] || skip "no /dev/full"
	mq-send t a b
	mq-recv -g g t >/dev/null
	local c
	for c in "list" "list -l" "list --json" "describe t" "describe --json t" \
	    "groups t" "groups --json t" "config t" "config --json t" \
	    "stats" "stats --json" "stats --prometheus"; do
		run --separate-stderr mq-topic $c
		expect_status 0
		run --separate-stderr bash -c "mq-topic $c >/dev/full"
		expect_status 74
		expect_output ""
		expect_contains "mq-topic: stdout: No space left on device" stderr
	done
}

@test "the limits of partitions and max.message.bytes are those mq-topic(1) names" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	render mq-topic.1 | tr -s ' \t\n' ' ' | grep -q 'The number of partitions, 1 to 4096' ||
		{ echo "mq-topic(1) names no partition limit" >&2; false; }
	render mq-topic.1 | tr -s ' \t\n' ' ' | grep -q 'accepts, 0 to 268435456' ||
		{ echo "mq-topic(1) names no max.message.bytes limit" >&2; false; }
	run --separate-stderr mq-topic create -P 4097 t
	expect_status 64
	mq-topic create t
	run --separate-stderr mq-topic config t partitions=4097
	expect_status 64
	run --separate-stderr mq-topic config t max.message.bytes=268435457
	expect_status 64
	run --separate-stderr mq-topic config t max.message.bytes=268435456
	expect_status 0
	run --separate-stderr mq-topic config t max.message.bytes=0
	expect_status 0
	run --separate-stderr mq-send t ''
	expect_status 0
	run --separate-stderr mq-send t x
	expect_status 65
}

@test "mq(7) lists exit 69, which mq-send, mq-topic and mq-replicate return" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	render mq.7 | sed -n '/^EXIT STATUS/,/^EXAMPLES/p' | grep -qE '^ +69[[:space:]]' ||
		{ echo "mq(7) EXIT STATUS has no 69" >&2; false; }
}

@test "a duration is digits, a fraction and a unit: no hex, no exponent" {
	mq-send t x
	local d
	for d in 0x10 1e3 1E2s 0x1p4 1e-3ms; do
		run --separate-stderr mq-recv -f --timeout "$d" t
		expect_status 64
		expect_contains "invalid duration" stderr
		run --separate-stderr mq-send --delay "$d" t y
		expect_status 64
	done
	for d in 1. .5 0.05s 50ms; do
		run --separate-stderr mq-recv -f -o end --timeout "$d" t
		expect_status 75
	done
}

@test "list -l names the topic of a partition it cannot read" {
	mq-send t x
	rm -r "$(partdir t 0)"
	touch "$(partdir t 0)"
	run --separate-stderr mq-topic list -l
	expect_status 66
	expect_contains "mq-topic: t: partition 0: " stderr
}

@test "mq-send -H: the limit of 64 is the one mq-send(1) names" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	render mq-send.1 | tr -s ' \t\n' ' ' | grep -q 'May be given up to 64 times' ||
		{ echo "mq-send(1) names no limit for -H" >&2; false; }
	local h=() i
	for ((i = 0; i < 64; i++)); do h+=(-H "n$i=v"); done
	run --separate-stderr mq-send "${h[@]}" t x
	expect_status 0
	run --separate-stderr mq-send "${h[@]}" -H n64=v t x
	expect_status 64
}

@test "mq-topic(1): each command's heading is its SYNOPSIS line" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	local page syn bad=()
	page=$(render mq-topic.1)
	while read -r syn; do
		grep -qxF "     $syn" <<<"$page" || bad+=("$syn")
	done < <(sed -n 's/^ *mq-topic \[-qv\] \[-s spool\] //p' <<<"$page" |
	    grep -v -e '--if-not-exists' -e '^create ')
	if ((${#bad[@]})); then
		printf 'no heading: %s\n' "${bad[@]}" >&2
		false
	fi
}

@test "reset --to N outside the retained offsets goes to the nearest end, as mq-topic(1) says" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	render mq-topic.1 | tr -s ' \t\n' ' ' |
		grep -q 'where it is past the end, the end' ||
		{ echo "mq-topic(1) reset does not say" >&2; false; }
	mq-topic create --config segment.bytes=1024 --config retention.ms=1 t
	local i
	for i in 1 2 3; do
		head -c 1500 /dev/zero | tr '\0' a | mq-send t
	done
	sleep 0.05
	mq-topic gc
	mq-recv -g g -c 1 t >/dev/null
	mq-topic reset g t --to 0
	expect_eq "$(mq-topic groups --json t | jq '.[0].partitions[0].committed')" 2 "below"
	mq-topic reset g t --to 99
	expect_eq "$(mq-topic groups --json t | jq '.[0].partitions[0].committed')" 3 "past"
}

@test "mq-replicate names the end that refused by its part, not 'remote:' when both are here" {
	run mq-replicate "$T/nonexist" "$T/r"
	expect_status 66
	expect_contains "mq-replicate: source: $T/nonexist: No such spool"
	expect_not_contains "remote:"
}

@test "an empty delimiter, command or header name is refused with 64, naming the option" {
	mq-send t x
	local c
	for c in "mq-recv -D '' t:-D" "mq-send -D '' t y:-D" "mq-send -K '' t y:-K" \
	    "mq-recv -x '' t:-x" "mq-send -H =v t y:-H" "mq-send --header==v t y:-H" \
	    "mq-recv --filter =x t:--filter" "mq-recv --filter==x t:--filter"; do
		eval "run --separate-stderr ${c%:*}"
		expect_status 64
		expect_contains "${c##*:} " stderr
		expect_contains "empty" stderr
		expect_not_contains ": :" stderr
	done
	# an empty key glob is no empty name: it matches the keyless
	run --separate-stderr mq-recv --filter '' t
	expect_status 0
	expect_output "x"
}

@test "mq-send refuses what makes no sense together: --timeout without --replicas, two record delimiters" {
	run --separate-stderr mq-send --timeout 5s t x
	expect_status 64
	expect_contains "mq-send: --timeout goes with --replicas" stderr
	local c
	for c in "-0 -D ," "-D , -0" "--whole -0" "-D , --whole" "--null --delimiter=,"; do
		run --separate-stderr bash -c "printf 'a,b' | mq-send $c t"
		expect_status 64
		expect_contains "mq-send: " stderr
	done
	expect_missing "$MQ_SPOOL/topics/t"
	# one of each still works; -K splits a --whole input
	printf 'a,b' | mq-send -D , t
	printf 'k:v' | mq-send --whole -K : t
	run --separate-stderr mq-recv -F '%k=%s\n' t
	expect_output $'=a\n=b\nk=v'
}

@test "mq-topic: a wrong number of operands prints that command's one usage line, exit 64" {
	local c cmd
	for c in "create" "delete" "delete a b" "list x" "describe" "config" \
	    "verify a b" "groups" "reset g" "delete-group g" "gc a b" \
	    "cancel t" "abort t" "dump" "stats x" "create --bogus t"; do
		cmd=${c%% *}
		run --separate-stderr mq-topic $c
		expect_status 64
		expect_output ""
		# getopt's own complaint may come first; then the one line
		expect_eq "$(grep -c '^usage:' <<<"$stderr")" 1 "usage lines for $c"
		expect_eq "$(grep -v "^mq-topic: " <<<"$stderr" | wc -l)" 1 "lines for $c"
		expect_contains "usage: mq-topic $cmd " stderr
		expect_not_contains "[-s spool]" stderr
	done
	run --separate-stderr mq-topic create
	expect_eq "$stderr" "usage: mq-topic create [-P partitions] [--config key=value]... [--if-not-exists] topic"
	# --help is still the whole synopsis, on stdout
	run --separate-stderr mq-topic create --help
	expect_status 0
	expect_contains "delete-group group topic"
}

@test "stats -o into a directory that does not exist is an I/O error (74), not 'no such spool'" {
	mq-send t x
	run --separate-stderr mq-topic stats -o "$BATS_TEST_TMPDIR/nodir/x"
	expect_status 74
	expect_output ""
	expect_eq "$stderr" "mq-topic: $BATS_TEST_TMPDIR/nodir/x: No such file or directory"
	touch "$BATS_TEST_TMPDIR/file"
	run --separate-stderr mq-topic stats -o "$BATS_TEST_TMPDIR/file/x"
	expect_status 74
	expect_eq "$stderr" "mq-topic: $BATS_TEST_TMPDIR/file/x: Not a directory"
	# a missing spool is still 66
	run --separate-stderr mq-topic -s "$BATS_TEST_TMPDIR/nospool" stats -o "$BATS_TEST_TMPDIR/y"
	expect_status 66
	expect_missing "$BATS_TEST_TMPDIR/y"
}

@test "a directory under topics/ without a config is no topic: list and stats pass over it, verify reports it, delete removes it" {
	mq-send a x
	mq-send z y
	mkdir "$MQ_SPOOL/topics/junk"
	run --separate-stderr mq-topic list
	expect_status 0
	expect_output $'a\nz'
	run --separate-stderr mq-topic list -l
	expect_status 0
	expect_not_contains junk
	local m
	for m in "" --json --prometheus; do
		run --separate-stderr mq-topic stats $m
		expect_status 0
		expect_contains z
		expect_not_contains junk
	done
	run --separate-stderr mq-topic gc
	expect_status 0
	# verify names it, checks the others (z after junk is damaged), exits 65
	local seg
	seg=$(segments z | head -1)
	printf 'garbage' >>"$seg"
	run --separate-stderr mq-topic verify
	expect_status 65
	expect_contains "mq-topic: junk: not a topic (no config); mq-topic delete removes it" stderr
	expect_contains "z"
	run --separate-stderr mq-topic verify a
	expect_status 0
	run --separate-stderr mq-topic delete junk
	expect_status 0
	expect_missing "$MQ_SPOOL/topics/junk"
	run --separate-stderr mq-topic delete junk
	expect_status 66
	mq-topic verify --repair >/dev/null
	run --separate-stderr mq-topic verify
	expect_status 0
}

@test "an empty MQ_SPOOL is unset and a relative XDG_STATE_HOME ignored, as the pages say" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	local p
	for p in mq-send.1 mq-recv.1 mq-topic.1 mq-replicate.1 mq.7; do
		render "$p" | tr -s ' \t\n' ' ' | grep -q 'empty, it counts as unset' ||
			{ echo "$p: empty MQ_SPOOL not described" >&2; false; }
		render "$p" | tr -s ' \t\n' ' ' | grep -q 'relative .*ignored' ||
			{ echo "$p: relative XDG_STATE_HOME not described" >&2; false; }
	done
	MQ_SPOOL= mq-send t x
	MQ_SPOOL= XDG_STATE_HOME=rel mq-send t y
	expect_eq "$(MQ_SPOOL= mq-recv t | tr '\n' ' ')" "x y " "default spool"
	expect_missing rel
}

@test "closed pipes: mq-send --print-offsets dies of SIGPIPE keeping what it stored; mq-recv -x exits 75" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	render mq-send.1 | tr -s ' \t\n' ' ' | grep -q 'what it had stored stays stored' ||
		{ echo "mq-send(1) says nothing of a closed pipe" >&2; false; }
	render mq-recv.1 | tr -s ' \t\n' ' ' | grep -q 'stops with exit 75 as for any command that fails' ||
		{ echo "mq-recv(1) says nothing of -x and a closed pipe" >&2; false; }
	run bash -c 'seq 200000 | mq-send --print-offsets t | head -1; echo "${PIPESTATUS[1]}"'
	expect_output $'0 0\n141'
	(($(mq-recv t | wc -l) >= 1))
	seq 50 | mq-send u
	run --separate-stderr bash -c 'mq-recv -g g -x "echo \$MQ_OFFSET" u | head -1; echo "${PIPESTATUS[0]}"'
	expect_output $'0\n75'
	expect_contains "exit 141 after 4 attempts" stderr
}

@test "mq-recv -x --dead-letter: a command failing on mq-recv's closed stdout is no dead letter" {
	seq 50 | mq-send u
	run --separate-stderr bash -c 'mq-recv -g g --dead-letter dl -x "echo \$MQ_OFFSET" u | head -1; echo "${PIPESTATUS[0]}"'
	expect_output $'0\n75'
	expect_contains "stdout closed; stopping, not committed" stderr
	expect_not_contains "to dl" stderr
	expect_missing "$MQ_SPOOL/topics/dl"
	# a command that fails on its own still goes there
	run --separate-stderr mq-recv -g h --retries 0 --dead-letter dl -c 1 -x "exit 3" u
	expect_status 0
	expect_eq "$(mq-recv -c 1 dl)" "1"
}
