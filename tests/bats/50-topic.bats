#!/usr/bin/env bats
# mq-topic: create, delete, list, describe, config, verify

load helpers

T="$BATS_TEST_TMPDIR"

DEFAULTS='cleanup.policy=delete
compaction.map.bytes=134217728
compression=none
dedup.window.ms=3600000
delete.retention.ms=86400000
max.message.bytes=16777216
min.cleanable.dirty.ratio=0.5
min.compaction.lag.ms=0
partitions=1
retention.bytes=-1
retention.ms=604800000
segment.bytes=1073741824'

# ---- create ------------------------------------------------------------------

@test "create makes the topic with one partition by default" {
	run mq-topic create t
	expect_status 0
	[[ -d $MQ_SPOOL/topics/t/0 ]]
	expect_missing "$MQ_SPOOL/topics/t/1"
	[[ -f $MQ_SPOOL/topics/t/config ]]
	run mq-topic config t
	expect_status 0
	expect_output "$DEFAULTS"
	run mq-recv t
	expect_status 0
	expect_output ""
}

@test "create -P N makes N partitions" {
	run mq-topic create -P 3 t
	expect_status 0
	[[ -d $MQ_SPOOL/topics/t/0 && -d $MQ_SPOOL/topics/t/1 && -d $MQ_SPOOL/topics/t/2 ]]
	expect_missing "$MQ_SPOOL/topics/t/3"
	run mq-topic config t
	expect_contains "partitions=3"
	run mq-send -p 2 t m
	expect_status 0
	run mq-send -p 3 t m
	expect_status 66
	run mq-topic create t2 -P 2
	expect_status 0
	run mq-topic config t2
	expect_contains "partitions=2"
}

@test "create --config sets keys, repeatable" {
	run mq-topic create --config segment.bytes=2048 --config retention.ms=1000 --config compression=zlib:5 t
	expect_status 0
	run mq-topic config t
	expect_status 0
	expect_contains $'\nsegment.bytes=2048'
	expect_contains "retention.ms=1000"
	expect_contains "compression=zlib:5"
	expect_contains "max.message.bytes=16777216"
}

@test "create --config partitions=N is the same as -P N; the two given together must agree" {
	run mq-topic create --config partitions=2 t
	expect_status 0
	[[ -d $MQ_SPOOL/topics/t/1 ]]
	run -0 mq-topic create -P 3 --config partitions=3 u
	[[ -d $MQ_SPOOL/topics/u/2 ]]
	local a
	for a in "-P 3 --config partitions=2" "--config partitions=2 -P 3"; do
		# shellcheck disable=SC2086
		run mq-topic create $a v
		expect_status 64
		expect_contains "disagree"
		expect_missing "$MQ_SPOOL/topics/v"
	done
}

@test "create with bad -P or --config exits 64 and creates nothing" {
	local a
	for a in "-P 0" "-P -1" "-P x" "--config nosuch=1" "--config retention.ms=abc" \
		"--config segment.bytes=100" "--config compression=lz4" \
		"--config cleanup.policy=keep" "--config max.message.bytes=-5" "--config novalue"; do
		# shellcheck disable=SC2086
		run mq-topic create $a t
		expect_status 64
		expect_missing "$MQ_SPOOL/topics/t"
	done
	# and no staging left behind
	run bash -c "ls -A '$MQ_SPOOL/tmp' 2>/dev/null"
	expect_output ""
}

@test "create of an existing topic exits 64 and changes nothing" {
	run mq-topic create -P 2 t
	run mq-send -p 1 t keep
	run mq-topic create t
	expect_status 64
	expect_contains "exists"
	run mq-topic create -P 5 t
	expect_status 64
	run mq-topic config t
	expect_contains "partitions=2"
	run mq-recv t
	expect_output "keep"
}

@test "create --if-not-exists: 0 when the settings asked for match, 64 naming each difference" {
	run mq-topic create -P 4 --config compression=zlib t
	run mq-send t keep
	run mq-topic create --if-not-exists t
	expect_status 0
	run mq-topic create --if-not-exists -P 4 --config compression=zlib t
	expect_status 0
	run mq-topic create --if-not-exists --config retention.ms=604800000 t
	expect_status 0
	run --separate-stderr mq-topic create --if-not-exists -P 2 --config compression=none t
	expect_status 64
	expect_contains "partitions=4, not 2" stderr
	expect_contains "compression=zlib, not none" stderr
	# nothing changed, and a missing topic is simply created
	run mq-topic config t
	expect_contains "partitions=4"
	run mq-recv t
	expect_output "keep"
	run mq-topic create --if-not-exists -P 3 fresh
	expect_status 0
	run mq-topic config fresh
	expect_contains "partitions=3"
}

@test "list -l, describe, groups and config --json: one line of JSON, the documented keys" {
	run mq-topic create -P 2 --config compression=zlib t
	seq 10 | mq-send t
	timeout 10 mq-recv -g g -c 3 t >/dev/null
	run mq-topic list --json
	expect_status 0
	expect_eq "$(jq -c 'map(.topic)' <<<"$output")" '["t"]' "list topics"
	expect_eq "$(jq '.[0].messages' <<<"$output")" 10 "list messages"
	run mq-topic list -l --json
	expect_eq "$(jq '.[0].partitions' <<<"$output")" 2 "list partitions"
	run mq-topic config --json t
	expect_status 0
	expect_eq "$(jq -r '.compression' <<<"$output")" zlib "config compression"
	expect_eq "$(jq '.partitions' <<<"$output")" 2 "config partitions (a number)"
	run mq-topic describe --json t
	expect_status 0
	expect_eq "$(jq '[.partition[].messages] | add' <<<"$output")" 10 "describe messages"
	expect_eq "$(jq -r '.groups[0].group' <<<"$output")" g "describe group"
	expect_eq "$(jq '.groups[0].lag' <<<"$output")" 7 "describe lag"
	run mq-topic groups --json t
	expect_status 0
	expect_eq "$(jq '.[0].partitions | length' <<<"$output")" 2 "groups partitions"
	expect_eq "$(jq '[.[0].partitions[].held] | all(. == false)' <<<"$output")" true "held"
	# the drained question of the man page
	run bash -c "mq-topic groups --json t | jq -e 'all(.[]; .lag == 0)'"
	expect_status 1
	timeout 10 mq-recv -g g t >/dev/null
	run bash -c "mq-topic groups --json t | jq -e 'all(.[]; .lag == 0)'"
	expect_status 0
	# a topic with no groups: an empty array
	run mq-topic create u
	run mq-topic groups --json u
	expect_output "[]"
	run mq-topic describe --json --bogus t
	expect_status 64
}

# ---- delete ----------------------------------------------------------------

@test "delete removes the topic; then it is missing (66)" {
	run mq-send t m
	run mq-send other o
	run mq-topic delete t
	expect_status 0
	expect_missing "$MQ_SPOOL/topics/t"
	run mq-recv t
	expect_status 66
	run mq-topic describe t
	expect_status 66
	run mq-topic delete t
	expect_status 66
	run mq-topic list
	expect_output "other"
	# re-created, it starts from offset 0
	run mq-send --print-offsets t again
	expect_output "0 0"
	run mq-recv other
	expect_output "o"
}

@test "delete of a topic with many segments and partitions" {
	run mq-topic create -P 3 --config segment.bytes=1024 t
	local i
	for i in 1 2 3 4 5 6; do
		run mq-send -p $((i % 3)) t "$(printf 'x%.0s' {1..900})"
	done
	run mq-topic delete t
	expect_status 0
	expect_missing "$MQ_SPOOL/topics/t"
	run bash -c "ls -A '$MQ_SPOOL/tmp' 2>/dev/null"
	expect_output ""
}

# ---- list -----------------------------------------------------------------

@test "list prints names sorted, one a line" {
	local n
	for n in zeta b a10 a2 Mid alpha _x; do
		run mq-topic create "$n"
		expect_status 0
	done
	run --separate-stderr mq-topic list
	expect_status 0
	expect_output "$(printf '%s\n' zeta b a10 a2 Mid alpha _x | LC_ALL=C sort)"
}

@test "list on an empty spool prints nothing, exit 0" {
	mkdir -p "$MQ_SPOOL"
	run mq-topic list
	expect_status 0
	expect_output ""
	run mq-send t m
	run mq-topic delete t
	run mq-topic list
	expect_status 0
	expect_output ""
}

@test "list -l adds TOPIC PARTITIONS MESSAGES BYTES" {
	run mq-topic create -P 2 b
	run mq-send -p 0 b x y
	run mq-send -p 1 b z
	run mq-send a 1 2 3 4 5
	run mq-topic create empty
	run mq-topic list -l
	expect_status 0
	read -r -a hdr <<<"${lines[0]}"
	expect_eq "${hdr[*]}" "TOPIC PARTITIONS MESSAGES BYTES" "header"
	expect_eq "${#lines[@]}" 4 "lines"
	expect_eq "$(awk 'NR > 1 { print $1 }' <<<"$output" | tr '\n' ' ')" "a b empty " "topic order"
	expect_eq "$(awk '$1 == "a" { print $2, $3 }' <<<"$output")" "1 5" "row a"
	expect_eq "$(awk '$1 == "b" { print $2, $3 }' <<<"$output")" "2 3" "row b"
	expect_eq "$(awk '$1 == "empty" { print $2, $3, $4 }' <<<"$output")" "1 0 0" "row empty"
	local bytes
	bytes=$(awk '$1 == "a" { print $4 }' <<<"$output")
	expect_eq "$bytes" "$(fsize "$(seg a)")" "bytes of a"
}

# ---- describe -------------------------------------------------------------------

@test "describe: topic, partitions, config, then the partition table" {
	run mq-topic create -P 2 --config segment.bytes=1024 t
	run mq-send -p 0 t a b c
	local i
	for i in 1 2 3; do
		run mq-send -p 1 t "$(printf 'x%.0s' {1..900})"
	done
	run --separate-stderr mq-topic describe t
	expect_status 0
	expect_eq "${lines[0]}" "topic t" "line 1"
	expect_eq "${lines[1]}" "partitions 2" "line 2"
	expect_contains $'\nsegment.bytes=1024\n'
	expect_contains $'\nmax.message.bytes=16777216\n'
	# the table: header, then one row per partition
	local table
	table=$(awk '/^PARTITION/ { f = 1 } f' <<<"$output")
	[[ -n $table ]] || { echo "no PARTITION header" >&2; _mq_dump; false; }
	read -r -a hdr < <(sed -n 1p <<<"$table")
	expect_eq "${hdr[*]}" "PARTITION FIRST NEXT MESSAGES BYTES SEGMENTS" "table header"
	read -r -a r0 < <(sed -n 2p <<<"$table")
	read -r -a r1 < <(sed -n 3p <<<"$table")
	expect_eq "${r0[0]} ${r0[1]} ${r0[2]} ${r0[3]} ${r0[5]}" "0 0 3 3 1" "partition 0"
	expect_eq "${r0[4]}" "$(fsize "$(seg t 0)")" "partition 0 bytes"
	expect_eq "${r1[0]} ${r1[1]} ${r1[2]} ${r1[3]}" "1 0 3 3" "partition 1"
	expect_eq "${r1[5]}" "$(segments t 1 | wc -l)" "partition 1 segments"
	((r1[5] >= 2)) || { echo "expected the 900-byte messages to roll segments" >&2; false; }
	local sum=0 f
	for f in $(segments t 1); do sum=$((sum + $(fsize "$f"))); done
	expect_eq "${r1[4]}" "$sum" "partition 1 bytes"
}

@test "describe of an empty topic" {
	run mq-topic create t
	run mq-topic describe t
	expect_status 0
	expect_eq "${lines[1]}" "partitions 1" "line 2"
	read -r -a r0 <<<"${lines[${#lines[@]} - 1]}"
	expect_eq "${r0[0]} ${r0[1]} ${r0[2]} ${r0[3]}" "0 0 0 0" "partition 0"
}

# ---- config ----------------------------------------------------------------------

@test "config prints every effective key=value, sorted" {
	run mq-send t m
	run --separate-stderr mq-topic config t
	expect_status 0
	expect_output "$DEFAULTS"
	expect_eq "$output" "$(LC_ALL=C sort <<<"$output")" "sorted"
}

@test "config k=v sets values; later reads see them" {
	run mq-topic create t
	run mq-topic config t retention.ms=1000 max.message.bytes=10 compression=zlib
	expect_status 0
	run mq-topic config t
	expect_contains "retention.ms=1000"
	expect_contains "max.message.bytes=10"
	expect_contains "compression=zlib"
	expect_contains "partitions=1"
	# the new limit is enforced
	run mq-send t 0123456789
	expect_status 0
	run mq-send t 0123456789A
	expect_status 65
	run mq-topic config t cleanup.policy=compact retention.bytes=123456 dedup.window.ms=5 segment.bytes=1024
	expect_status 0
	run mq-topic config t
	expect_contains "cleanup.policy=compact"
	expect_contains "retention.bytes=123456"
	expect_contains "dedup.window.ms=5"
	expect_contains "segment.bytes=1024"
	expect_contains "retention.ms=1000"
}

@test "config with an invalid key or value exits 64 and changes nothing" {
	run mq-topic create t
	local kv
	for kv in nosuch=1 retention.ms=abc retention.ms= segment.bytes=1023 segment.bytes=x \
		compression=gzip compression=zlib:12 cleanup.policy=bogus max.message.bytes=-1 \
		partitions=abc partitions=0 novalue =1; do
		run mq-topic config t "$kv"
		expect_status 64
	done
	# the refusal says what the key takes
	run mq-topic config t segment.bytes=1023
	expect_contains "segment.bytes=1023: invalid value (an integer from 1024 to 2147483647)"
	run mq-topic create --config compression=gzip u
	expect_contains "compression=gzip: invalid value (none, zlib or zlib:0 to zlib:9)"
	# a bad pair among good ones: nothing applied
	run mq-topic config t retention.ms=5 nosuch=1
	expect_status 64
	run mq-topic config t
	expect_output "$DEFAULTS"
}

@test "partitions may grow but never shrink" {
	run mq-topic create -P 2 t
	run mq-topic config t partitions=1
	expect_status 64
	expect_missing "$MQ_SPOOL/topics/t/2"
	run mq-topic config t
	expect_contains "partitions=2"
	run mq-send -p 0 t before
	run mq-topic config t partitions=4
	expect_status 0
	[[ -d $MQ_SPOOL/topics/t/3 ]]
	run mq-send -p 3 t in-3
	expect_status 0
	run mq-recv -p 3 t
	expect_output "in-3"
	run mq-recv -p 0 t
	expect_output "before"
	run mq-topic describe t
	expect_eq "${lines[1]}" "partitions 4" "describe"
	run mq-topic config t partitions=3
	expect_status 64
}

@test "config of a missing topic exits 66" {
	mkdir -p "$MQ_SPOOL"
	run mq-topic config nosuch
	expect_status 66
	run mq-topic config nosuch retention.ms=1
	expect_status 66
	expect_missing "$MQ_SPOOL/topics/nosuch"
}

# ---- verify -------------------------------------------------------------------

@test "verify on a clean spool and topic exits 0" {
	run mq-topic create -P 3 --config segment.bytes=1024 t
	run bash -c 'seq 5000 | mq-send --no-sync t'
	run bash -c 'seq 5000 | mq-send -z zlib --no-sync t'
	run mq-send u m
	run mq-topic verify
	expect_status 0
	run mq-topic verify t
	expect_status 0
	run mq-topic verify --repair
	expect_status 0
	run mq-topic verify nosuch
	expect_status 66
}

@test "verify on an empty spool exits 0" {
	mkdir -p "$MQ_SPOOL"
	run mq-topic verify
	expect_status 0
}

@test "mq-topic COMMAND -h or --help prints the usage and exits 0" {
	local c
	for c in create delete list describe config verify groups reset delete-group gc stats dump; do
		run mq-topic "$c" --help
		expect_status 0
		expect_contains "usage: mq-topic"
		run mq-topic "$c" -h
		expect_status 0
	done
}

# ---- dump ------------------------------------------------------------------

@test "dump: every batch header, its fields and checksums, as mq-spool(5) shows them" {
	echo '{"ts":1764000000000,"payload":"hello"}' | mq-send -J t
	run mq-topic dump t
	expect_status 0
	expect_eq "${#lines[@]}" 2 "lines"
	[[ ${lines[0]} == *"PART"*"SEGMENT"*"POS"*"OFFSET"*"COUNT"*"TYPE"*"CODEC"*"FLAGS"*"EPOCH"*"TXID"*"BODY"*"RAW"*"HDR_CRC"*"BODY_CRC"*"BASE_TS"*"MAX_TS"*"STATE" ]] ||
	    { echo "${lines[0]}" >&2; false; }
	# the example of mq-spool(5): one batch, its checksums as printed there
	read -ra f <<<"${lines[1]}"
	expect_eq "${f[*]}" "0 0 0 0 1 data none 0x00 0 0 9 9 0x7fab0e15 0xade3e72d 1764000000000 1764000000000 ok" "row"
	run mq-topic dump --json t
	expect_status 0
	run jq -c '[.partition, .segment, .pos, .offset, .count, .type, .codec, .hdr_crc, .body_crc, .state]' <<<"$output"
	expect_output '[0,0,0,0,1,"data","none",2141916693,2917394221,"ok"]'
}

@test "dump: -p, compression, several partitions, and the counts add up" {
	mq-topic create -P 3 t
	seq 3000 | mq-send -z zlib t
	run mq-topic dump --json t
	expect_status 0
	run jq -s '[.[] | select(.type == "data") | .count] | add' <<<"$output"
	expect_output 3000
	run bash -c "mq-topic dump --json t | jq -r .partition | sort -u | tr '\n' ' '"
	expect_output "0 1 2 "
	run bash -c "mq-topic dump --json -p 1 t | jq -r '.partition, .codec' | sort -u | tr '\n' ' '"
	expect_output "1 zlib "
	run --separate-stderr mq-topic dump -p 3 t
	expect_status 66
	expect_eq "$stderr" "mq-topic: t: No such partition 3 (it has 3, 0 to 2)" "message"
	run mq-topic dump nosuch
	expect_status 66
}

@test "dump: a damaged body, a torn tail and the END of a closed segment are shown, not judged" {
	mq-topic create --config segment.bytes=1024 t
	local i
	for i in 1 2 3; do
		mq-send t "$(printf 'x%.0s' {1..600})"
	done
	local s
	s=$(seg t)
	# a bit flipped in the first body; half a header after the last batch
	flip_byte "$s" 70
	printf 'mqB1garbage' >>"$(segments t | tail -n 1)"
	run mq-topic dump t
	expect_status 0
	run bash -c "mq-topic dump --json t | jq -r '[.segment, .pos, .type, .state] | map(tostring) | join(\" \")'"
	expect_output "0 0 data badbody
0 669 end ok
1 0 data ok
1 669 end ok
2 0 data ok
2 669 data torn"
	# verify, not dump, calls it damage
	run mq-topic verify t
	expect_status 65
}
