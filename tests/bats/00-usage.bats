#!/usr/bin/env bats
# options, usage, exit codes, topic names, spool resolution

load helpers

NAME_RULE='invalid topic name'

# a spool that exists, holding one topic "t"
mkspool() {
	run mq-topic create t
	expect_status 0
}

# ---- help and version --------------------------------------------------

@test "-h and --help print usage on stdout and exit 0, for every program" {
	local p opt
	for p in mq-send mq-recv mq-topic; do
		for opt in -h --help; do
			run --separate-stderr "$p" "$opt"
			expect_status 0
			[[ ${output,,} == *usage:* ]] || { echo "$p $opt: no 'usage:' on stdout" >&2; _mq_dump; false; }
			expect_contains "$p"
			expect_eq "$stderr" "" "$p $opt stderr"
		done
	done
}

@test "mq-send usage names its options" {
	run mq-send --help
	expect_status 0
	local o
	for o in -0 -D -H -K -k -p -s -z --no-create --no-sync --print-offsets --sync-interval --whole -J; do
		expect_contains "$o"
	done
}

@test "mq-recv usage names its options" {
	run mq-recv --help
	expect_status 0
	local o
	for o in -0 -c -D -F -o -p -s -u --timeout; do
		expect_contains "$o"
	done
}

@test "mq-topic usage names its commands" {
	run mq-topic --help
	expect_status 0
	local c
	for c in create delete list describe config verify; do
		expect_contains "$c"
	done
}

@test "--version prints the program name and a version, exit 0" {
	local p
	for p in mq-send mq-recv mq-topic; do
		run --separate-stderr "$p" --version
		expect_status 0
		[[ $output =~ ^$p\ [0-9]+\.[0-9]+\.[0-9]+ ]] || { _mq_dump; false; }
		expect_eq "${#lines[@]}" 1 "$p --version lines"
	done
}

@test "--help and --version that cannot be written (a full disk) exit 74, saying so" {
	local p o
	for p in mq-send mq-recv mq-topic mq-replicate; do
		[[ -x $MQ_BINDIR/$p ]] || continue
		for o in --help --version; do
			run --separate-stderr "$MQ_BINDIR/$p" "$o"
			expect_status 0
			run --separate-stderr bash -c '"$0" "$1" >/dev/full' "$MQ_BINDIR/$p" "$o"
			expect_status 74
			expect_contains "$p: stdout: No space left on device" stderr
		done
	done
}

# ---- usage errors ------------------------------------------------------

@test "mq-topic COMMAND -s DIR: 64, saying the common options go before the command" {
	run --separate-stderr mq-topic list -s "$MQ_SPOOL"
	expect_status 64
	expect_contains "-s goes before the command: mq-topic -s spool list" stderr
	run --separate-stderr mq-topic describe -v t
	expect_status 64
	expect_contains "-v goes before the command" stderr
	# an option no command takes gets no such hint
	run --separate-stderr mq-topic list -Z
	expect_status 64
	expect_not_contains "goes before" stderr
}

@test "an unknown option exits 64 with usage on stderr and nothing on stdout" {
	local p
	for p in mq-send mq-recv mq-topic; do
		run --separate-stderr "$p" --no-such-option t
		expect_status 64
		expect_eq "$output" "" "$p stdout"
		[[ ${stderr,,} == *usage* ]] || { _mq_dump; false; }
		run --separate-stderr "$p" -Y t
		expect_status 64
	done
	run mq-topic create --bogus t
	expect_status 64
}

@test "a missing option argument exits 64" {
	run mq-send t -k
	expect_status 64
	run mq-recv t -c
	expect_status 64
	run mq-recv -o
	expect_status 64
	run mq-topic create t -P
	expect_status 64
}

@test "a missing topic argument exits 64" {
	mkspool
	run mq-send
	expect_status 64
	run mq-recv
	expect_status 64
	run mq-topic create
	expect_status 64
	run mq-topic delete
	expect_status 64
	run mq-topic describe
	expect_status 64
	run mq-topic config
	expect_status 64
}

@test "mq-topic without a command, or with an unknown one, exits 64" {
	run mq-topic
	expect_status 64
	run mq-topic frobnicate t
	expect_status 64
}

@test "mq-recv takes exactly one topic" {
	mkspool
	run mq-recv t t
	expect_status 64
}

# ---- topic names -------------------------------------------------------

bad_names() {
	BAD_NAMES=("" "." ".." "a/b" "$(printf 'x%.0s' {1..250})" "x y" "../etc" "a:b" "é" $'a\nb' "a*")
}

@test "invalid topic names are refused by mq-send with 64 and the rule" {
	bad_names
	local n
	for n in "${BAD_NAMES[@]}"; do
		run mq-send -- "$n" hello
		expect_status 64
		expect_contains "$NAME_RULE"
		expect_contains "249"
	done
	expect_missing "$BATS_TEST_TMPDIR/etc"
	expect_missing "$MQ_SPOOL/etc"
	expect_missing "$MQ_SPOOL/topics/a"
}

@test "invalid topic names are refused by mq-recv with 64 and the rule" {
	mkspool
	bad_names
	local n
	for n in "${BAD_NAMES[@]}"; do
		run mq-recv -- "$n"
		expect_status 64
		expect_contains "$NAME_RULE"
	done
}

@test "invalid topic names are refused by mq-topic create with 64 and the rule" {
	mkspool
	bad_names
	local n
	for n in "${BAD_NAMES[@]}"; do
		run mq-topic create -- "$n"
		expect_status 64
		expect_contains "$NAME_RULE"
	done
	expect_missing "$MQ_SPOOL/etc"
	expect_missing "$MQ_SPOOL/topics/a"
	run mq-topic list
	expect_status 0
	expect_output "t"
}

@test "the error message for a bad name follows the spec's form" {
	run mq-send a/b hello
	expect_status 64
	expect_output "mq-send: a/b: invalid topic name (1 to 249 characters of [A-Za-z0-9._-], not . or ..)"
}

@test "a 249-character name, and every allowed character, are accepted" {
	local long
	long=$(printf 'n%.0s' {1..249})
	run mq-send "$long" hello
	expect_status 0
	run mq-recv "$long"
	expect_status 0
	expect_output "hello"
	run mq-topic create "${long%?}X"
	expect_status 0
	run mq-send A-Z_a.z-0.9 ok
	expect_status 0
	run mq-send ... dots
	expect_status 0
	run mq-recv ...
	expect_status 0
	expect_output "dots"
	run mq-topic list
	expect_status 0
	expect_eq "${#lines[@]}" 4 "topics listed"
}

# ---- missing spool, topic, partition -------------------------------------

@test "readers exit 66 on a missing spool and do not create it" {
	local gone="$BATS_TEST_TMPDIR/nospool"
	run mq-recv -s "$gone" t
	expect_status 66
	expect_missing "$gone"
	run mq-recv t
	expect_status 66
	expect_missing "$MQ_SPOOL"
	run mq-topic -s "$gone" list
	expect_status 66
	expect_missing "$gone"
	run mq-topic describe t
	expect_status 66
	expect_missing "$MQ_SPOOL"
	run mq-topic verify
	expect_status 66
	expect_missing "$MQ_SPOOL"
}

@test "a missing topic exits 66 with a message naming it" {
	mkspool
	run mq-recv nosuch
	expect_status 66
	expect_contains "nosuch"
	expect_missing "$MQ_SPOOL/topics/nosuch"
	run mq-topic describe nosuch
	expect_status 66
	run mq-topic config nosuch
	expect_status 66
	run mq-topic delete nosuch
	expect_status 66
	run mq-send --no-create nosuch m
	expect_status 66
	expect_missing "$MQ_SPOOL/topics/nosuch"
}

@test "a partition beyond the topic's exits 66" {
	mkspool
	run mq-send -p 1 t m
	expect_status 66
	expect_contains "partition"
	run mq-send -p 7 t m
	expect_status 66
	run mq-recv -p 1 t
	expect_status 66
	run mq-send -p 0 t m
	expect_status 0
	run mq-recv -p 0 t
	expect_status 0
	expect_output "m"
}

# ---- bad numbers and durations ------------------------------------------

@test "bad numbers for -c -p -o -u --timeout --sync-interval exit 64" {
	mkspool
	run mq-send t ok
	expect_status 0
	local v
	for v in abc 12x "" -1 1.5 99999999999999999999999; do
		run mq-recv -c "$v" t
		expect_status 64
		run mq-recv -p "$v" t
		expect_status 64
		run mq-send -p "$v" t m
		expect_status 64
	done
	for v in abc 12x "" 1.5 @ @notatime @2026-13-45 --3 99999999999999999999999; do
		run mq-recv -o "$v" t
		expect_status 64
	done
	for v in abc 12x "" @notatime; do
		run mq-recv -u "$v" t
		expect_status 64
	done
	for v in abc 12x "" -1 1y 5xs ms; do
		run mq-recv -f --timeout "$v" t
		expect_status 64
		run mq-send --sync-interval "$v" t m
		expect_status 64
	done
	# none of the refused sends stored anything
	run mq-recv t
	expect_status 0
	expect_output "ok"
}

@test "durations accept the documented forms" {
	mkspool
	local d
	for d in 1 500ms 2s 1m 1h 1d 1.5s 0.5; do
		run mq-send --sync-interval "$d" t "$d"
		expect_status 0
	done
	run mq-recv -c 8 --timeout 1.5s t
	expect_status 0
	expect_eq "${#lines[@]}" 8 "messages"
}

@test "invalid -z codec exits 64" {
	run mq-send -z lz4 t m
	expect_status 64
	run mq-send -z zlib:10 t m
	expect_status 64
	run mq-send -z zlib:x t m
	expect_status 64
	expect_missing "$MQ_SPOOL/topics/t"
}

@test "-H without '=' exits 64" {
	run mq-send -H novalue t m
	expect_status 64
}

@test "unknown -F token exits 64" {
	mkspool
	run mq-send t m
	run mq-recv -F '%Q' t
	expect_status 64
}

# ---- spool resolution ----------------------------------------------------

@test "spool: without HOME, the home directory in the password database" {
	local pw
	pw=$(getent passwd "$(id -u)" | cut -d: -f6)
	[[ $pw == /* ]] || skip "no home directory in the password database"
	run --separate-stderr env -u HOME -u MQ_SPOOL -u XDG_STATE_HOME mq-topic -v list
	[[ $status == 0 || $status == 66 ]] || { _mq_dump; false; }
	expect_contains "$pw/.local/state/mq" stderr
	expect_not_contains "no spool" stderr
}

@test "spool: -s beats MQ_SPOOL beats XDG_STATE_HOME beats HOME" {
	local a="$BATS_TEST_TMPDIR/a" b="$BATS_TEST_TMPDIR/b" x="$BATS_TEST_TMPDIR/xdg"
	export MQ_SPOOL="$b" XDG_STATE_HOME="$x"

	run mq-send -s "$a" t via-s
	expect_status 0
	[[ -d $a/topics/t ]] || { echo "-s spool not used" >&2; false; }
	expect_missing "$b"
	expect_missing "$x"

	run mq-send --spool "$a" t via-spool
	expect_status 0

	run mq-send t via-env
	expect_status 0
	[[ -d $b/topics/t ]] || { echo "MQ_SPOOL not used" >&2; false; }
	expect_missing "$x"

	unset MQ_SPOOL
	run mq-send t via-xdg
	expect_status 0
	[[ -d $x/mq/topics/t ]] || { echo "XDG_STATE_HOME/mq not used" >&2; false; }

	unset XDG_STATE_HOME
	run mq-send t via-home
	expect_status 0
	[[ -d $HOME/.local/state/mq/topics/t ]] || { echo "HOME/.local/state/mq not used" >&2; false; }

	# and readers resolve the same way
	run mq-recv -s "$a" t
	expect_status 0
	expect_output $'via-s\nvia-spool'
	MQ_SPOOL="$b" run mq-recv t
	expect_status 0
	expect_output "via-env"
	MQ_SPOOL="$b" run mq-recv -s "$a" -c 1 t
	expect_status 0
	expect_output "via-s"
	XDG_STATE_HOME="$x" run mq-recv t
	expect_status 0
	expect_output "via-xdg"
	run mq-recv t
	expect_status 0
	expect_output "via-home"
	run mq-topic -s "$a" list
	expect_status 0
	expect_output "t"
}

@test "no such partition: the message names it and the partitions there are (66)" {
	run mq-topic create -P 3 t
	run --separate-stderr mq-send -p 7 t x
	expect_status 66
	expect_eq "$stderr" "mq-send: t: No such partition 7 (it has 3, 0 to 2)" "mq-send"
	run --separate-stderr mq-recv -p 7 t
	expect_status 66
	expect_eq "$stderr" "mq-recv: t: No such partition 7 (it has 3, 0 to 2)" "mq-recv"
}

@test "a relative spool path that does not exist yet, with no slash in it" {
	# mkdir_p once wrote through the NULL of strrchr here (SIGSEGV)
	cd "$BATS_TEST_TMPDIR"
	run mq-send -s s1 t hi
	expect_status 0
	MQ_SPOOL=s2 run mq-send t hi
	expect_status 0
	run mq-topic -s s3 create t
	expect_status 0
	run mq-send -s s4/deeper t hi
	expect_status 0
	run mq-recv -s s1 t
	expect_status 0
	expect_output hi
	MQ_SPOOL=s2 run mq-recv t
	expect_output hi
	run mq-recv -s s4/deeper t
	expect_output hi
	[[ -d s3/topics/t ]] || { echo "s3/topics/t not made" >&2; false; }
}

@test "writers create a missing spool, nested directories included" {
	export MQ_SPOOL="$BATS_TEST_TMPDIR/deep/er/spool"
	run mq-send t m
	expect_status 0
	[[ -d $MQ_SPOOL/topics/t/0 ]]
	run mq-topic -s "$BATS_TEST_TMPDIR/other/spool" create u
	expect_status 0
	[[ -d $BATS_TEST_TMPDIR/other/spool/topics/u ]]
}

@test "errors go to stderr prefixed with the program name" {
	mkspool
	run --separate-stderr mq-recv nosuch
	expect_status 66
	expect_eq "$output" "" "stdout"
	[[ $stderr == mq-recv:* ]] || { _mq_dump; false; }
	run --separate-stderr mq-topic delete nosuch
	expect_status 66
	[[ $stderr == mq-topic:* ]] || { _mq_dump; false; }
}

@test "mq-topic delete, describe, config, verify refuse bad names with 64" {
	mkspool
	local c
	for c in delete describe config verify; do
		run mq-topic "$c" a/b
		expect_status 64
		expect_contains "$NAME_RULE"
		run mq-topic "$c" ..
		expect_status 64
	done
	run mq-topic list
	expect_output "t"
}

@test "-q and -v are accepted by every program" {
	local o
	for o in -q --quiet -v --verbose; do
		run --separate-stderr mq-send "$o" t "m$o"
		expect_status 0
		run --separate-stderr mq-recv "$o" -c 1 t
		expect_status 0
		expect_output "m-q"
		run --separate-stderr mq-topic "$o" list
		expect_status 0
		expect_output "t"
	done
}

@test "permission denied exits 77, not 66" {
	command -v setpriv >/dev/null || skip "setpriv not installed"
	[[ $(id -u) -eq 0 ]] || skip "needs root to switch to an unprivileged user"
	mkspool
	run mq-send t m
	chmod 0700 "$MQ_SPOOL"
	chmod 0755 "$BATS_TEST_TMPDIR"
	local nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	run "${nobody[@]}" mq-recv t
	expect_status 77
	run "${nobody[@]}" mq-send t m2
	expect_status 77
	run "${nobody[@]}" mq-topic list
	expect_status 77
	run "${nobody[@]}" mq-topic create u
	expect_status 77
	run mq-recv t
	expect_output "m"
}

# snapshot DIR: every path with its size, mode and mtime
snapshot() {
	find "$1" -printf '%p %s %m %T@\n' | LC_ALL=C sort
}

@test "readers do not change a spool" {
	run mq-topic create -P 2 t
	run mq-send -k a t m1 m2
	run mq-send -k b t m3
	sleep 0.05
	local before
	before=$(snapshot "$MQ_SPOOL")
	sleep 0.05
	run mq-recv t
	expect_status 0
	run mq-recv -J -o -1 t
	run mq-recv -p 1 -F '%s' t
	run mq-topic list -l
	run mq-topic describe t
	run mq-topic config t
	run mq-topic verify
	expect_status 0
	expect_eq "$(snapshot "$MQ_SPOOL")" "$before" "spool after reading"
}
