#!/usr/bin/env bats
# mq-send and mq-recv: framing, keys, headers, partitions, formats, positions

load helpers

T="$BATS_TEST_TMPDIR"

# ---- round trips -----------------------------------------------------------

@test "1,000,000 lines round trip byte for byte" {
	seq 1000000 >"$T/in"
	run mq-send t <"$T/in"
	expect_status 0
	mq-recv t >"$T/out"
	expect_same_file "$T/out" "$T/in"
}

@test "the same through a pipe, and mq-recv into a pipe" {
	run bash -c 'seq 200000 | mq-send t && mq-recv t | cmp - <(seq 200000)'
	expect_status 0
}

@test "-0: binary records with newlines round trip" {
	head -c 100000 /dev/urandom | tr '\0' '\n' >"$T/in"
	# sprinkle NULs back in as separators, two in a row make an empty message
	python3 - "$T/in" <<'EOF'
import sys, random
p = sys.argv[1]
d = bytearray(open(p, 'rb').read())
r = random.Random(7)
for i in r.sample(range(len(d)), 3000):
    d[i] = 0
d[500] = d[501] = 0
d.append(0)
open(p, 'wb').write(d)
EOF
	run mq-send -0 t <"$T/in"
	expect_status 0
	mq-recv -0 t >"$T/out"
	expect_same_file "$T/out" "$T/in"
	# one message per NUL, the empty ones included
	local want
	want=$(tr -cd '\0' <"$T/in" | wc -c)
	run mq-recv -F 'x\n' t
	expect_status 0
	expect_eq "${#lines[@]}" "$want" "messages"
}

@test "--whole: 100000 random bytes with NULs are one message" {
	head -c 100000 /dev/urandom >"$T/in"
	printf '\0\0\n\0' >>"$T/in"
	run mq-send --whole t <"$T/in"
	expect_status 0
	mq-recv -F '%s' t >"$T/out"
	expect_same_file "$T/out" "$T/in"
	run mq-recv -F '%S\n' t
	expect_status 0
	expect_output "100004"
}

@test "empty lines are empty messages; empty input is no message" {
	run mq-topic create t
	expect_status 0
	run mq-send t </dev/null
	expect_status 0
	run mq-recv t
	expect_status 0
	expect_output ""
	run bash -c "printf 'a\n\n\nb\n' | mq-send t"
	expect_status 0
	run mq-recv -F '%o:%S:%s|' t
	expect_status 0
	expect_output "0:1:a|1:0:|2:0:|3:1:b|"
	mq-recv t >"$T/out"
	printf 'a\n\n\nb\n' | cmp - "$T/out"
}

@test "a last line without newline is still a message" {
	run bash -c "printf 'one\ntwo' | mq-send t"
	expect_status 0
	run mq-recv -F '<%s>' t
	expect_status 0
	expect_output "<one><two>"
	run bash -c "printf 'solo' | mq-send -D :: u"
	expect_status 0
	run mq-recv -F '<%s>' u
	expect_output "<solo>"
}

@test "arguments are messages, one each, and stdin is then not read" {
	run bash -c 'echo from-stdin | mq-send t "hello world" "" "x  y"'
	expect_status 0
	run mq-recv -F '<%s>\n' t
	expect_status 0
	expect_output $'<hello world>\n<>\n<x  y>'
}

@test "-D: a multi-byte delimiter, messages may hold newlines" {
	run bash -c "printf 'a\nb<>c<><>d' | mq-send -D '<>' t"
	expect_status 0
	run mq-recv -F '[%s]' t
	expect_status 0
	expect_output $'[a\nb][c][][d]'
	mq-recv -D '<>' t >"$T/out"
	printf 'a\nb<>c<><>d<>' | cmp - "$T/out"
	mq-recv --delimiter '<>' t >"$T/out2"
	cmp "$T/out" "$T/out2"
}

@test "-D: a multi-byte delimiter across read buffers" {
	seq 300000 | tr '\n' '%' | sed 's/%/<-->/g' >"$T/in"
	run mq-send -D '<-->' t <"$T/in"
	expect_status 0
	mq-recv t >"$T/out"
	seq 300000 | cmp - "$T/out"
	# a delimiter whose prefix repeats
	printf 'xaab-aaab-aaaab' >"$T/in2"
	run mq-send -D 'aab' u <"$T/in2"
	expect_status 0
	run mq-recv -F '[%s]' u
	expect_output '[x][-a][-aa]'
}

@test "-D escapes: \\t \\n \\0 \\x2c" {
	run bash -c "printf 'a\tb\tc' | mq-send -D '\\t' t"
	expect_status 0
	run mq-recv -F '[%s]' t
	expect_output '[a][b][c]'
	run bash -c "printf 'd,e,f' | mq-send -D '\\x2c' u"
	expect_status 0
	run mq-recv -F '[%s]' u
	expect_output '[d][e][f]'
	run bash -c "printf 'g\0h' | mq-send -D '\\0' v"
	expect_status 0
	run mq-recv -F '[%s]' v
	expect_output '[g][h]'
	mq-recv -D '\t' t >"$T/out"
	printf 'a\tb\tc\t' | cmp - "$T/out"
}

@test "mq-recv -0 ends each payload with a NUL" {
	run mq-send t a "" b
	expect_status 0
	mq-recv -0 t >"$T/out"
	printf 'a\0\0b\0' | cmp - "$T/out"
	mq-recv --null t >"$T/out2"
	cmp "$T/out" "$T/out2"
}

# ---- keys and headers ------------------------------------------------------

@test "-k sets the key of every message" {
	run mq-send -k user42 t a b
	expect_status 0
	run mq-send t nokey
	expect_status 0
	run mq-recv -F '%k|%K|%s\n' t
	expect_status 0
	expect_output $'user42|6|a\nuser42|6|b\n|-1|nokey'
}

@test "-K splits each record at the first STR into key and payload" {
	run bash -c "printf 'k1:v1\nk2:v2:x\nnokey\n:emptykey\nk3:\n' | mq-send -K : t"
	expect_status 0
	run mq-recv -F '%k|%K|%s|%S\n' t
	expect_status 0
	expect_output $'k1|2|v1|2\nk2|2|v2:x|4\n|-1|nokey|5\n|0|emptykey|8\nk3|2||0'
	# with -k too, a record without STR takes -k's key (mq-send(1))
	run bash -c "printf 'a:b\nnodelim\n' | mq-send -k K -K : u"
	expect_status 0
	run mq-recv -F '%k|%s\n' u
	expect_output $'a|b\nK|nodelim'
}

@test "-K with a multi-byte separator and -0 input" {
	run bash -c "printf 'a=>1\0b=>2=>3\0' | mq-send -0 -K '=>' t"
	expect_status 0
	run mq-recv -F '%k %s\n' t
	expect_output $'a 1\nb 2=>3'
}

@test "-H headers are on every message and shown by %h" {
	run mq-send -H a=1 -H b=x=y -H empty= t m1 m2
	expect_status 0
	run mq-send t bare
	expect_status 0
	run mq-recv -F '%s %h\n' t
	expect_status 0
	expect_output $'m1 a=1,b=x=y,empty=\nm2 a=1,b=x=y,empty=\nbare '
}

@test "a key and headers survive a binary payload and -z" {
	head -c 5000 /dev/urandom >"$T/in"
	run mq-send --whole -z zlib -k 'k e y' -H trace=abc t <"$T/in"
	expect_status 0
	run mq-recv -F '%k|%h|%S\n' t
	expect_output "k e y|trace=abc|5000"
	mq-recv -F '%s' t | cmp - "$T/in"
}

# ---- partitions --------------------------------------------------------------

fnv_part() { # KEY PARTITIONS
	python3 -c '
import sys
h = 2166136261
for b in sys.argv[1].encode():
    h = ((h ^ b) * 16777619) & 0xffffffff
print(h % int(sys.argv[2]))' "$1" "$2"
}

@test "the same key always goes to the same partition" {
	run mq-topic create -P 4 t
	expect_status 0
	local k i
	for i in 1 2 3; do
		for k in alpha bravo charlie delta echo foxtrot golf hotel india juliet; do
			mq-send -k "$k" t "$k-$i"
		done
	done
	run mq-recv -F '%k %p\n' t
	expect_status 0
	expect_eq "${#lines[@]}" 30 "messages"
	# one partition per key
	run bash -c "mq-recv -F '%k %p\n' t | sort -u | awk '{print \$1}' | uniq -d"
	expect_output ""
	# and more than one partition over all keys
	run bash -c "mq-recv -F '%p\n' t | sort -u | wc -l"
	(( output > 1 )) || { _mq_dump; false; }
}

@test "the key hash is FNV-1a 32-bit modulo partitions" {
	run mq-topic create -P 4 t
	expect_status 0
	run mq-topic create -P 7 u
	expect_status 0
	local k
	for k in a b c d user-1 user-2 order:1234 "" "x y"; do
		run mq-send --print-offsets -k "$k" t "$k"
		expect_status 0
		expect_eq "${output%% *}" "$(fnv_part "$k" 4)" "partition of key '$k' (P=4)"
		run mq-send --print-offsets -k "$k" u "$k"
		expect_status 0
		expect_eq "${output%% *}" "$(fnv_part "$k" 7)" "partition of key '$k' (P=7)"
	done
}

@test "-K keys are hashed like -k keys" {
	run mq-topic create -P 4 t
	expect_status 0
	run bash -c "printf 'a:1\nb:2\nc:3\nd:4\n' | mq-send -K : t"
	expect_status 0
	local k p
	for k in a b c d; do
		p=$(mq-recv -F '%k %p\n' t | awk -v k="$k" '$1 == k { print $2 }')
		expect_eq "$p" "$(fnv_part "$k" 4)" "partition of $k"
	done
}

@test "keyless messages spread over partitions, each partition in order" {
	run mq-topic create -P 4 t
	expect_status 0
	seq 1000000 >"$T/in"
	run mq-send --no-sync t <"$T/in"
	expect_status 0
	run bash -c "mq-recv -F '%p\n' t | sort | uniq -c"
	expect_status 0
	((${#lines[@]} > 1)) || { echo "all messages in one partition" >&2; _mq_dump; false; }
	mq-recv t | sort -n >"$T/out"
	expect_same_file "$T/out" "$T/in"
	local p
	for p in 0 1 2 3; do
		mq-recv -p "$p" t >"$T/p$p"
		sort -n -c "$T/p$p"
	done
}

@test "a small keyless send is dealt evenly over the partitions" {
	run mq-topic create -P 4 jobs
	expect_status 0
	seq 1000 | mq-send jobs
	run bash -c "mq-recv -F '%p\n' jobs | sort | uniq -c | awk '{print \$1}'"
	expect_output $'250\n250\n250\n250'
	# a stream that goes idle between lines spreads the same way
	(for i in $(seq 40); do echo "$i"; sleep 0.01; done) | mq-send jobs
	run bash -c "mq-recv -o 250 -F '%p\n' jobs | sort | uniq -c | awk '{print \$1}'"
	expect_output $'10\n10\n10\n10'
	# offsets printed in input order: runs of 256, still every partition
	run mq-topic create -P 4 po
	seq 1024 | mq-send --print-offsets po >/dev/null
	run bash -c "mq-recv -F '%p\n' po | sort | uniq -c | awk '{print \$1}'"
	expect_output $'256\n256\n256\n256'
}

# offsets_match OUT: each line "P O" of mq-send --print-offsets output OUT
# names the message that is line number i of the input (seq 1 N)
offsets_match() {
	mq-recv -F '%p %o %s\n' "$2" | sort >"$T/stored"
	awk '{ print $1, $2, NR }' "$1" | sort >"$T/printed"
	expect_same_file "$T/printed" "$T/stored"
}

@test "--print-offsets: a send known whole at its start is one run a partition, N/P each" {
	run mq-topic create -P 4 po
	# a pipe whose writer has finished (waited for, not raced): 3, 3,
	# 2, 2 in four runs
	local p
	exec {p}< <(seq 10)
	wait "$!"
	mq-send --print-offsets po <&"$p" >"$T/out"
	exec {p}<&-
	run bash -c "awk '{print \$1}' '$T/out' | uniq | wc -l"
	expect_output 4
	run bash -c "awk '{print \$1}' '$T/out' | sort | uniq -c | awk '{print \$1}' | sort -r"
	expect_output $'3\n3\n2\n2'
	offsets_match "$T/out" po
	# operands, durable and not; a file
	mq-topic create -P 4 pa
	mq-send --print-offsets pa 1 2 3 4 5 6 >"$T/out"
	run bash -c "awk '{print \$1}' '$T/out' | sort | uniq -c | awk '{print \$1}' | sort -r"
	expect_output $'2\n2\n1\n1'
	offsets_match "$T/out" pa
	mq-topic create -P 4 pf
	seq 3000 >"$T/in"
	mq-send --no-sync --print-offsets pf <"$T/in" >"$T/out"
	run bash -c "awk '{print \$1}' '$T/out' | uniq -c | awk '{print \$1}'"
	expect_output $'750\n750\n750\n750'
	offsets_match "$T/out" pf
	# fewer messages than partitions: one each
	mq-topic create -P 4 p2
	seq 2 >"$T/in"
	mq-send --print-offsets p2 <"$T/in" >"$T/out"
	run bash -c "awk '{print \$1}' '$T/out' | uniq | wc -l"
	expect_output 2
	# a message too large still ends the send with what came before it
	mq-topic create -P 4 --config max.message.bytes=3 pm
	run mq-send --print-offsets pm 1 2 toolong 4
	expect_status 65
	run bash -c "mq-send --print-offsets pm 1 2 toolong 4 2>/dev/null | wc -l"
	expect_output 2
	run bash -c "mq-recv pm | sort | uniq -c | awk '{print \$1, \$2}'"
	expect_output $'2 1\n2 2'
	# and so does a line of -J that is not a message
	run bash -c "printf '{\"payload\":\"a\"}\\nnot json\\n' | mq-send -J --print-offsets pm 2>/dev/null"
	expect_status 65
	expect_eq "${#lines[@]}" 1 "offsets printed"
}

@test "--print-offsets: while stdin streams, a partition gets runs of 256" {
	run mq-topic create -P 4 ps
	# five lines, then (once they are stored) five more: not known whole
	exec {in}> >(exec mq-send --no-sync --print-offsets ps >"$T/out")
	local pid=$!
	seq 5 >&"$in"
	wait_until 10 lines_in "$T/out" 5
	seq 6 10 >&"$in"
	exec {in}>&-
	wait "$pid"
	run bash -c "awk '{print \$1}' '$T/out' | uniq | wc -l"
	expect_output 1
	offsets_match "$T/out" ps
}

@test "-p N writes to partition N, mq-recv -p N reads only it" {
	run mq-topic create -P 3 t
	expect_status 0
	run mq-send -p 2 t two
	expect_status 0
	run mq-send --partition 0 t zero
	expect_status 0
	run mq-send -p 2 -k somekey t two-again
	expect_status 0
	run mq-recv -p 2 t
	expect_status 0
	expect_output $'two\ntwo-again'
	run mq-recv -p 1 t
	expect_status 0
	expect_output ""
	run mq-recv --partition 0 t
	expect_output "zero"
	run mq-recv -p 3 t
	expect_status 66
}

@test "--print-offsets prints PARTITION OFFSET per message, contiguous" {
	run bash -c 'seq 5 | mq-send --print-offsets t'
	expect_status 0
	expect_output $'0 0\n0 1\n0 2\n0 3\n0 4'
	run mq-send --print-offsets t x y
	expect_output $'0 5\n0 6'
	run mq-recv -F '%o=%s ' t
	expect_output "0=1 1=2 2=3 3=4 4=5 5=x 6=y "
}

@test "--print-offsets over 4 partitions: offsets per partition are 0..n-1 in order" {
	run mq-topic create -P 4 t
	expect_status 0
	seq 50000 | mq-send --no-sync --print-offsets t >"$T/po"
	expect_eq "$(wc -l <"$T/po")" 50000 "printed offsets"
	run awk '
		NF != 2 { print "bad line " NR ": " $0; bad = 1 }
		{ if ($2 != next_[$1] + 0) { print "partition " $1 ": got " $2 " want " next_[$1] + 0; bad = 1 } next_[$1] = $2 + 1 }
		END { exit bad }' "$T/po"
	expect_status 0
	# and they name where each message really is
	paste -d ' ' "$T/po" <(seq 50000) | sort -k1,1n -k2,2n >"$T/want"
	mq-recv -F '%p %o %s\n' t | sort -k1,1n -k2,2n >"$T/got"
	expect_same_file "$T/got" "$T/want"
}

# ---- creation ----------------------------------------------------------------

@test "--no-create on a missing topic exits 66 and creates nothing" {
	run mq-topic create other
	expect_status 0
	run mq-send --no-create t m
	expect_status 66
	expect_missing "$MQ_SPOOL/topics/t"
	run mq-send --no-create other m
	expect_status 0
}

@test "mq-send creates a missing topic with the defaults" {
	run mq-send t m
	expect_status 0
	run mq-topic config t
	expect_status 0
	expect_contains "partitions=1"
	expect_contains "max.message.bytes=16777216"
	[[ -d $MQ_SPOOL/topics/t/0 ]]
}

# ---- message size --------------------------------------------------------------

@test "max.message.bytes: exactly the limit is stored, one byte over exits 65" {
	run mq-topic create --config max.message.bytes=1000 t
	expect_status 0
	local fit over
	fit=$(printf 'f%.0s' {1..1000})
	over=$(printf 'o%.0s' {1..1001})
	run mq-send t "$fit"
	expect_status 0
	printf 'before\n%s\nafter\n' "$over" >"$T/in"
	run mq-send t <"$T/in"
	expect_status 65
	run mq-send t "$over"
	expect_status 65
	run --separate-stderr mq-recv t
	expect_status 0
	expect_eq "${lines[0]}" "$fit" "first message"
	expect_eq "${lines[1]}" "before" "second message"
	expect_not_contains "ooo"
	run mq-recv -F '%S\n' t
	expect_eq "${lines[0]}" 1000 "size"
}

@test "the bulk path: a read's lines in one call keep every byte, the limit, the clock, -p and -k" {
	run mq-topic create -P 2 --config max.message.bytes=1000 t
	expect_status 0
	# 3,000 lines of 0 to 1,000 bytes, empty ones and ones at the limit
	awk 'BEGIN { for (i = 0; i < 3000; i++) {
		n = (i * 337) % 1001; if (i % 100 == 7) n = 1000
		s = ""; while (length(s) < n) s = s sprintf("%09d.", i)
		print substr(s, 1, n) } }' > "$T/in"
	local t0 t1
	t0=$(date +%s%3N)
	run mq-send -p 1 t < "$T/in"
	expect_status 0
	t1=$(date +%s%3N)
	mq-recv -p 1 t | cmp - "$T/in"
	run mq-recv -p 0 -c 1 -u end t
	expect_status 0
	expect_output ""
	# every message has the time of its send
	mq-recv -p 1 -F '%T\n' t | awk -v a="$t0" -v b="$t1" \
	    '$1 < a || $1 > b { bad++ } END { exit bad > 0 }'
	# with a key (-k), the general encoder in the same call; the key
	# counts with the payload, so the limit grows by its one byte
	run -0 mq-topic config t max.message.bytes=1001
	run mq-send -k K t < "$T/in"
	expect_status 0
	run mq-recv -F '%K %k\n' t
	expect_status 0
	[[ $(grep -c '^1 K$' <<<"$output") == 3000 ]] || { echo "$output" | sort | uniq -c >&2; false; }
	# one byte over the limit in the middle of a read: what came before
	# is stored, nothing after
	{ head -n 1500 "$T/in"; printf 'o%.0s' {1..1001}; echo; tail -n 1500 "$T/in"; } > "$T/in2"
	run mq-topic create -P 2 --config max.message.bytes=1000 u
	expect_status 0
	run mq-send -p 0 u < "$T/in2"
	expect_status 65
	mq-recv -p 0 u | cmp - <(head -n 1500 "$T/in")
	# keyless over three partitions: dealt one a partition, as one at a
	# time deals them, and still nothing after one over the limit
	run mq-topic create -P 3 --config max.message.bytes=1000 w
	expect_status 0
	seq 1 1000 | mq-send w
	local p
	for p in 0 1 2; do
		mq-recv -p "$p" w | awk 'NR > 1 && $1 != last + 3 { exit 1 } { last = $1 }' ||
			{ echo "partition $p is not every third line" >&2; mq-recv -p "$p" w | head >&2; false; }
	done
	[[ $(for p in 0 1 2; do mq-recv -p "$p" w | wc -l; done | sort -n | tr '\n' ' ') == "333 333 334 " ]]
	run mq-topic create -P 3 --config max.message.bytes=1000 w2
	expect_status 0
	run mq-send w2 < "$T/in2"
	expect_status 65
	cmp <(mq-recv w2 | sort) <(head -n 1500 "$T/in" | sort)
}

@test "the bulk read path (payloads alone) gives what -F '%s\n' gives, message by message, for every range and limit" {
	run mq-topic create -P 3 t
	expect_status 0
	# batches of keyless, keyed, headed, large and empty messages,
	# from several sends, so that partitions take turns
	seq 1 5000 | mq-send t
	seq 5001 9000 | mq-send -k k1 t
	seq 9001 9500 | mq-send -H a=b t
	{ seq 9501 9700; head -c 40000 /dev/zero | tr '\0' L; echo; echo; seq 9701 12000; } | mq-send -p 2 t
	seq 12001 15000 | mq-send -p 0 t
	local args
	for args in "" "-p 0" "-p 2" "-c 1" "-c 2" "-c 4999" "-c 7777" "-o 1234" \
	    "-p 2 -o 17 -u 5003" "-o 2 -c 3" "-u 100" "-p 1 -o -1200" "-o end"; do
		# shellcheck disable=SC2086
		mq-recv $args t > "$T/bulk" || { echo "mq-recv $args failed" >&2; false; }
		# shellcheck disable=SC2086
		mq-recv $args -F '%s\n' t > "$T/one"
		cmp "$T/bulk" "$T/one" || { echo "differs: mq-recv $args" >&2; false; }
	done
	[[ $(wc -l < "$T/bulk") == 0 ]]
	mq-recv -D ';;' t > "$T/bulk"
	mq-recv -F '%s;;' t > "$T/one"
	cmp "$T/bulk" "$T/one"
	[[ $(mq-recv t | wc -l) == 15002 ]]
	# a group member copies batches too, and commits exactly what it gave
	mq-recv -g g1 -c 4321 t > "$T/g1"
	mq-recv -g g2 -c 4321 -F '%s\n' t > "$T/g1f"
	cmp "$T/g1" "$T/g1f"
	[[ $(wc -l < "$T/g1") == 4321 ]]
	mq-recv -g g1 t > "$T/g2"
	[[ $(cat "$T/g1" "$T/g2" | wc -l) == 15002 ]]
	cmp <(cat "$T/g1" "$T/g2" | sort) <(mq-recv t | sort)
	run mq-recv -g g1 t
	expect_output ""
	# a time limit mid-batch: -u @TIME, in a batch of times 1 ms apart
	awk 'BEGIN { for (i = 0; i < 2000; i++)
		printf "{\"ts\":%.0f,\"payload\":\"m%d\"}\n", 1700000000000 + i, i }' |
	    mq-send -J u
	mq-recv -u @1700000001234 u > "$T/bulk"
	mq-recv -u @1700000001234 -F '%s\n' u > "$T/one"
	cmp "$T/bulk" "$T/one"
	[[ $(wc -l < "$T/bulk") == 1234 ]]
}

@test "max.message.bytes counts the key with the payload, however the key comes (-k, -K, -J)" {
	run mq-topic create --config max.message.bytes=100 t
	local k60 p40 p41
	k60=$(printf 'k%.0s' {1..60})
	p40=$(printf 'p%.0s' {1..40})
	p41=$(printf 'q%.0s' {1..41})
	run -0 mq-send -k "$k60" t "$p40"
	run mq-send -k "$k60" t "$p41"
	expect_status 65
	run -0 mq-send -K : t <<<"$k60:$p40"
	run mq-send -K : t <<<"$k60:$p41"
	expect_status 65
	printf '{"key":"%s","payload":"%s"}\n' "$k60" "$p40" | mq-send -J t
	run mq-send -J t <<<"{\"key\":\"$k60\",\"payload\":\"$p41\"}"
	expect_status 65
	run mq-recv -F '%K %S\n' t
	expect_output $'60 40\n60 40\n60 40'
}

@test "mq-send -J: a line longer than any message of the topic could be as JSON is refused (65) before it is all read" {
	run mq-topic create --config max.message.bytes=1000 t
	# 6 bytes of JSON a byte at most (\u0000), and room for the rest
	(printf '{"payload":"x","key":"'; head -c 30000000 /dev/zero | tr '\0' a; printf '"}\n') >"$T/big"
	run --separate-stderr maxrss_kb bash -c 'mq-send -J t <"$1"' _ "$T/big"
	expect_status 65
	expect_contains "larger than max.message.bytes" stderr
	# peak RSS well under the line's 30 MB (not under ASan)
	if ! ldd "$MQ_BINDIR/mq-send" 2>/dev/null | grep -q 'libasan'; then
		((output < 20000)) || { echo "mq-send -J peak RSS $output kB" >&2; false; }
	fi
	run mq-recv t
	expect_output ""
}

@test "max.message.bytes with --whole and -0" {
	run mq-topic create --config max.message.bytes=1000 t
	expect_status 0
	head -c 1000 /dev/zero >"$T/fit"
	head -c 1001 /dev/zero >"$T/over"
	run mq-send --whole t <"$T/fit"
	expect_status 0
	run mq-send --whole t <"$T/over"
	expect_status 65
	run mq-recv -F '%S\n' t
	expect_output 1000
}

# ---- compression ------------------------------------------------------------------

@test "-z zlib round trip, and the batches are stored compressed" {
	seq 200000 >"$T/in"
	run mq-send -z zlib t <"$T/in"
	expect_status 0
	mq-recv t >"$T/out"
	expect_same_file "$T/out" "$T/in"
	run mq-topic dump t
	expect_status 0
	# every data batch is zlib, checksums good
	run bash -c "mq-topic dump --json t | jq -c 'select(.type == \"data\" and (.codec != \"zlib\" or .state != \"ok\"))'"
	expect_output ""
	(($(du -cb "$(partdir t)"/*.log | tail -1 | cut -f1) < $(wc -c <"$T/in") / 2)) ||
		{ echo "log not smaller than half the input" >&2; false; }
}

@test "-z zlib:LEVEL and -z none, mixed in one topic" {
	local a
	a=$(printf 'a%.0s' {1..2000})
	run mq-send -z zlib:9 t "9$a"
	expect_status 0
	run mq-send -z none t "n$a"
	expect_status 0
	run mq-send --compress zlib:1 t "1$a"
	expect_status 0
	run mq-send -z zlib:0 t "0$a"
	expect_status 0
	run mq-recv t
	expect_output "9$a"$'\n'"n$a"$'\n'"1$a"$'\n'"0$a"
	# compressible payloads: zlib, none, zlib (level 0 is not checked)
	run bash -c "mq-topic dump --json t | jq -r 'select(.type == \"data\") | .codec' | head -n 3 | tr '\n' ' '"
	expect_output "zlib none zlib "
}

@test "topic compression=zlib is the default for mq-send" {
	run mq-topic create --config compression=zlib t
	expect_status 0
	local a
	a=$(printf 'hello%.0s' {1..500})
	run mq-send t "$a"
	expect_status 0
	run bash -c "mq-topic dump --json t | jq -r 'select(.type == \"data\") | .codec'"
	expect_output "zlib"
	run mq-recv t
	expect_output "$a"
}

# ---- JSON ------------------------------------------------------------------

json_valid() { # FILE
	python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$1"
}

@test "-J prints one JSON object per message with every field" {
	run mq-send -k kk -H h1=v1 -H h2=v2 t hello
	expect_status 0
	run mq-send t nokey
	expect_status 0
	mq-recv -J t >"$T/j"
	json_valid "$T/j"
	run python3 - "$T/j" <<'EOF'
import json, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
a, b = rows
assert a["topic"] == "t" and a["partition"] == 0 and a["offset"] == 0, a
assert a["key"] == "kk" and a["headers"] == [["h1", "v1"], ["h2", "v2"]], a
assert a["payload"] == "hello", a
assert abs(a["ts"] - time.time() * 1000) < 600000, a
assert b["key"] is None and b["headers"] == [] and b["offset"] == 1, b
assert "payload_encoding" not in a, a
EOF
	expect_status 0
}

@test "-J: non-UTF-8 payloads and keys are base64 and flagged; UTF-8 is kept" {
	printf 'a\0b\xff\xfe' >"$T/bin"
	run mq-send --whole -k "$(printf 'k\xff')" t <"$T/bin"
	expect_status 0
	run mq-send t 'héllo ✓ "quoted" \back\ tab	end'
	expect_status 0
	run --separate-stderr mq-recv -J t
	expect_status 0
	printf '%s\n' "$output" >"$T/j"
	run python3 - "$T/j" <<'EOF'
import base64, json, sys
a, b = [json.loads(l) for l in open(sys.argv[1])]
assert a.get("payload_encoding") == "base64", a
assert base64.b64decode(a["payload"]) == b"a\0b\xff\xfe", a
assert a.get("key_encoding") == "base64", a
assert base64.b64decode(a["key"]) == b"k\xff", a
assert b["payload"] == 'héllo ✓ "quoted" \\back\\ tab\tend', b
assert "payload_encoding" not in b, b
EOF
	expect_status 0
}

@test "-J: mq-recv -J a | mq-send -J b copies keys, headers, timestamps, payloads" {
	run mq-send -k k1 -H x=1 a plain
	expect_status 0
	printf 'bin\0\xff\x01' | mq-send --whole -H y=2 -H y=3 a
	run bash -c "printf ':emptykey\n' | mq-send -K : a"
	expect_status 0
	run mq-send a ""
	expect_status 0
	run mq-send -H 'quote="q"' a 'ü "json" \ chars'
	expect_status 0
	sleep 0.01
	mq-recv -J a >"$T/a.json"
	run bash -c "mq-send -J b <'$T/a.json'"
	expect_status 0
	mq-recv -J b >"$T/b.json"
	json_valid "$T/b.json"
	run python3 - "$T/a.json" "$T/b.json" <<'EOF'
import json, sys
def load(p):
    out = []
    for l in open(p):
        o = json.loads(l)
        assert o.pop("topic") in ("a", "b")
        out.append(o)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == 5, a
assert a == b, (a, b)
EOF
	expect_status 0
	# and the bytes are the same
	cmp <(mq-recv -F '%s\n' a) <(mq-recv -F '%s\n' b)
}

@test "-J input: \"ts\":0 is the epoch, kept through a round trip; only an absent or null ts means now" {
	printf '%s\n' '{"payload":"zero","ts":0}' '{"payload":"one","ts":1}' \
	    '{"payload":"absent"}' '{"payload":"null","ts":null}' >"$T/in"
	run mq-send -J a <"$T/in"
	expect_status 0
	run mq-recv -F '%s %T\n' -c 2 a
	expect_output "zero 0
one 1"
	mq-recv -F '%T\n' -o 2 a >"$T/now"
	run python3 - "$T/now" <<'EOF'
import sys, time
ts = [int(l) for l in open(sys.argv[1])]
assert len(ts) == 2 and all(abs(t - time.time() * 1000) < 600000 for t in ts), ts
EOF
	expect_status 0
	# and a copy keeps the epoch: mq-recv -J a | mq-send -J b
	mq-recv -J a | mq-send -J b
	run mq-recv -F '%s %T\n' -c 2 b
	expect_output "zero 0
one 1"
	cmp <(mq-recv -F '%T\n' a) <(mq-recv -F '%T\n' b)
}

@test "-J input: invalid JSON is refused" {
	run bash -c "echo 'not json' | mq-send -J t"
	[[ $status -ne 0 ]] || { _mq_dump; false; }
	expect_contains "mq-send"
	run bash -c "echo '{\"payload\":' | mq-send -J t"
	[[ $status -ne 0 ]] || { _mq_dump; false; }
}

@test "-J input: a bad line is named by number and field; what came before is stored, nothing after" {
	printf '{"payload":"a"}\n\n{"payload":"b","ts":"x"}\n{"payload":"c"}\n' >"$T/in"
	run --separate-stderr mq-send -J t <"$T/in"
	expect_status 65
	expect_eq "$stderr" 'mq-send: t: stdin line 3: "ts": expected an integer (ms since the epoch)' "message"
	run mq-recv t
	expect_output "a"
	local bad
	for bad in 'not json' '[1]' '{"key":"k"}' '{"payload":1}' '{"payload":"p","headers":[["a"]]}' \
	    '{"payload":"p","headers":{"n":1}}' '{"payload":"p","id":""}'; do
		run --separate-stderr mq-send -J t <<<"$bad"
		expect_status 65
		[[ $stderr == "mq-send: t: stdin line 1: "?* ]] || { echo "$bad: $stderr" >&2; false; }
	done
}

# slow_lines N - N lines, 0.1 s apart: a send that takes a while
slow_lines() {
	local i
	for ((i = 1; i <= $1; i++)); do
		echo "$i"
		sleep 0.1
	done
}

@test "--progress: count, bytes and rates on stderr, at most 4 lines a second, after the first second" {
	export -f slow_lines
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr bash -c 'slow_lines 25 | mq-send --progress t'
	t1=$(now_ms)
	expect_status 0
	expect_eq "$output" "" "stdout"
	local n=${#stderr_lines[@]} l
	# 2.5 s or more, the first second silent, then at most 4 a second
	((n >= 2 && n <= (t1 - t0 - 1000) / 250 + 1)) ||
	    { printf '%s\n' "$stderr" >&2; echo "$n lines in $((t1 - t0)) ms" >&2; false; }
	for l in "${stderr_lines[@]}"; do
		[[ $l =~ ^mq-send:\ t:\ [0-9]+\ messages,\ [0-9.]+\ MB,\ [0-9]+\ messages/s,\ [0-9.]+\ MB/s$ ]] ||
		    { echo "bad line: $(printf %q "$l")" >&2; false; }
	done
	[[ ${stderr_lines[0]} != *' 0 messages'* ]] || { echo "${stderr_lines[0]}" >&2; false; }
	run mq-recv t
	expect_eq "${#lines[@]}" 25 "stored"
	# a short send says nothing, even when asked
	run --separate-stderr bash -c 'seq 10 | mq-send --progress t'
	expect_status 0
	expect_eq "$stderr" "" "stderr of a short send"
}

@test "progress: never on a stderr that is not a terminal unless asked" {
	export -f slow_lines
	run --separate-stderr bash -c 'slow_lines 15 | mq-send t'
	expect_status 0
	expect_eq "$stderr" "" "stderr"
}

@test "progress: on a terminal, one line redrawn in place and erased at the end; -q keeps it off" {
	command -v script >/dev/null || skip "script(1) is not installed"
	export -f slow_lines
	# script(1) runs its command with $SHELL, which need not be bash
	# (CI's is sh): the exported function needs bash
	export SHELL=/bin/bash
	script -qec 'slow_lines 15 | mq-send -v t' "$T/tty" </dev/null >/dev/null
	# the typescript: the line drawn with \r ... erase, then erased
	# before the -v report comes
	run grep -c $'\rmq-send: t: [0-9]* messages, .*/s\e\[K' "$T/tty"
	expect_status 0
	run grep -c $'\r\e\[Kmq-send: t: stored 15 messages' "$T/tty"
	expect_status 0
	run mq-recv t
	expect_eq "${#lines[@]}" 15 "stored"
	script -qec 'slow_lines 15 | mq-send -q t2' "$T/tty2" </dev/null >/dev/null
	run grep -c 'messages/s' "$T/tty2"
	expect_output 0
}

@test "-v: what mq-send stored, on stderr only; mq-topic -v verify on stderr" {
	run --separate-stderr bash -c "seq 1000 | mq-send -v t"
	expect_status 0
	expect_eq "$output" "" "stdout"
	expect_contains "t: stored 1000 messages (2893 bytes of payload)" stderr
	run --separate-stderr mq-topic -v verify t
	expect_status 0
	expect_eq "$output" "" "stdout"
	expect_contains "mq-topic: t: ok" stderr
}

@test "-J input: kcat's header object form {\"name\":\"value\"}" {
	run mq-send -J u <<<'{"payload":"p","headers":{"content-type":"text/plain","x":""}}'
	expect_status 0
	run mq-recv -F '%s %h\n' u
	expect_output "p content-type=text/plain,x="
}

@test "-J input: one message however it is spelled (mq's own lines take a fast path, the rest jansson)" {
	# the same message each time: payload "é\"x" and a NUL, key k, h=v, ts 7
	cat >"$T/in" <<'EOF'
{"topic":"t","partition":0,"offset":1,"ts":7,"key":"k","headers":[["h","v"]],"payload":"é\"x\u0000"}
 { "ts" : 7 , "key" : "k" , "headers" : [ [ "h" , "v" ] ] , "payload" : "\u00e9\"x\u0000" } 
{"payload":"\u00E9\u0022x\u0000","key":"\u006b","headers":{"h":"v"},"ts":7,"extra":[1,{"a":true}]}
{"payload":"w6kieAA=","payload_encoding":"base64","key":"aw==","key_encoding":"base64","headers":[["aA==","dg==","base64"]],"ts":7}
{"payload":"x","payload":"é\"x\u0000","key":"k","headers":[["h","v"]],"ts":7,"n":-12,"f":1.5e3,"b":true}
EOF
	run mq-send -J t <"$T/in"
	expect_status 0
	run mq-recv -F '%k|%S|%h|%T\n' t
	expect_status 0
	local want='k|5|h=v|7'
	expect_output "$want
$want
$want
$want
$want"
	mq-recv -F '%s' t | od -An -c | tr -s ' \n' '  ' >"$T/od"
	run cat "$T/od"
	expect_output " 303 251 \" x \\0 303 251 \" x \\0 303 251 \" x \\0 303 251 \" x \\0 303 251 \" x \\0 "
	# what either path refuses is refused, in jansson's words
	run mq-send -J t <<<'{"payload":"\ud800"}'
	expect_status 65
	run mq-send -J t <<<'{"payload":"a"} x'
	expect_status 65
	run mq-send -J t <<<'{"payload":"a","ts":-1}'
	expect_status 65
	expect_contains '"ts"'
}

@test "-J input: times of 1 to 19 digits, mid-line and at its end, read as jansson reads them; past 2^63 - 1 refused" {
	local n v want=
	for n in $(seq 1 19); do
		# digits that differ in every place, no leading zero
		v=$(seq "$n" | awk '{ printf "%d", ($1 * 7 + 3) % 9 + 1 }')
		printf '{"topic":"t","partition":0,"offset":%s,"ts":%s,"key":null,"headers":[],"payload":"p"}\n' "$v" "$v"
		printf '{"payload":"e","offset":1,"ts":%s}\n' "$v"
		want+="$v $v"$'\n'
	done >"$T/in"
	run mq-send -J t <"$T/in"
	expect_status 0
	run bash -c 'mq-recv -F "%T\n" t | paste -d " " - -'
	expect_status 0
	expect_output "${want%$'\n'}"
	# above 2^63 - 1: 20 digits, and 19
	run mq-send -J t <<<'{"payload":"p","ts":91234567891234567891}'
	expect_status 65
	expect_contains "too big integer"
	run mq-send -J t <<<'{"topic":"t","partition":0,"offset":0,"ts":9300000000000000000,"key":null,"headers":[],"payload":"p"}'
	expect_status 65
	expect_contains "too big integer"
}

# stored N: topic t holds at least N messages
stored() {
	(($(mq-recv t 2>/dev/null | wc -l) >= $1))
}

@test "input that trickles is read with read(2) when wanted, not ahead through io_uring (a line's latency)" {
	need_strace
	MQ_IO=uring "$MQ_BINDIR/mq-send" --no-sync probe x 2>/dev/null || skip "io_uring is not allowed here"
	# each line once the one before is stored, so that a slow start
	# (ASan under strace on a loaded machine) cannot find them all at once
	(for i in 1 2 3 4 5 6; do
		echo "m$i"
		wait_until 20 stored "$i"
	done) |
	    MQ_IO=uring strace -f -qq -o "$T/trace" -e trace=read "$MQ_BINDIR/mq-send" --no-sync t
	run mq-recv t
	expect_output $'m1\nm2\nm3\nm4\nm5\nm6'
	# the first read goes through the ring; after its short answer, each
	# line is read by read(2) on stdin as it comes (io_uring: none at all)
	n=$(grep -c ' read(0, "m' "$T/trace" || true)
	[ "$n" -ge 4 ] || { cat "$T/trace" >&2; false; }
}

@test "a trickled line is appended straight after its read, without a poll(2) to learn that stdin is idle (a line's latency)" {
	need_strace
	(for i in 1 2 3 4 5 6; do
		echo "m$i"
		wait_until 20 stored "$i"
	done) |
	    strace -f -qq -o "$T/trace" -e trace=poll,ppoll "$MQ_BINDIR/mq-send" --no-sync t
	run mq-recv t
	expect_output $'m1\nm2\nm3\nm4\nm5\nm6'
	# the read that took the line took all stdin had: it is idle, and
	# the line goes out at once (the old code polled once a line)
	n=$(grep -c 'poll(' "$T/trace" || true)
	[ "$n" -le 1 ] || { cat "$T/trace" >&2; false; }
}

@test "large payloads between small ones come out whole and in order, with -D and with a group" {
	python3 -c '
import sys
for i in range(12):
    n = [5, 40000, 70000, 3, 131072, 32767, 32768][i % 7]
    sys.stdout.write(chr(97 + i) * n + "\n")' >"$T/in"
	mq-send t <"$T/in"
	run bash -c 'mq-recv t | cmp - "$1"' _ "$T/in"
	expect_status 0
	mq-recv -D '|' t >"$T/out"
	tr '\n' '|' <"$T/in" | cmp - "$T/out"
	# a group that took 5 and stopped goes on with the sixth
	mq-recv -g g -c 5 t >"$T/g1"
	mq-recv -g g t >"$T/g2"
	cat "$T/g1" "$T/g2" | cmp - "$T/in"
	expect_eq "$(wc -l <"$T/g1")" 5 "messages in the first run"
}

@test "a reader crosses its 1 MB read-ahead chunks whole: batches of every size straddle them (payloads, -F, seeks)" {
	# small and large batches in turn: 8 MB of them, so that many
	# chunk edges fall inside a batch, some inside batches larger than
	# a chunk (walk.c, fill)
	python3 -c '
import random, sys
r = random.Random(7)
for i in range(3000):
    n = r.choice([1, 17, 99, 1000, 4096, 30000, 70000, 300000, 1200000]) if i % 50 == 0 else r.randint(1, 200)
    if i in (1, 2):     # a batch larger than the chunk after a small one
        n = 1500000
    sys.stdout.write("%d:" % i + chr(97 + i % 26) * n + "\n")' >"$T/in"
	# the first line a batch of its own, before the 1.5 MB ones
	head -n 1 "$T/in" | mq-send --no-sync -z none t
	tail -n +2 "$T/in" | mq-send --no-sync -z none t
	# and never a batch misread
	expect_reads_whole "$T/in" mq-recv t
	expect_reads_whole "$T/in" env MQ_IO=sync mq-recv t
	run bash -c 'mq-recv -F "%o %l\n" t | awk "{ if (\$1 != NR - 1) { print \"offset \" \$1 \" at line \" NR; exit 1 } }"'
	expect_status 0
	run bash -c 'mq-recv -o 2500 t | cmp - <(tail -n 500 "$1")' _ "$T/in"
	expect_status 0
}

@test "-J with -p chooses the partition, not the partition field" {
	run mq-topic create -P 2 t
	expect_status 0
	run bash -c "echo '{\"topic\":\"x\",\"partition\":0,\"offset\":9,\"ts\":1000,\"key\":null,\"headers\":[],\"payload\":\"p\"}' | mq-send -J -p 1 t"
	expect_status 0
	run mq-recv -F '%p %o %T %s\n' t
	expect_output "1 0 1000 p"
}

# ---- -F ------------------------------------------------------------------------

@test "-F: every token and escape" {
	local before after
	before=$(now_ms)
	run mq-send -k kk -H h1=v1 -H h2=v2 t payload
	expect_status 0
	after=$(now_ms)
	run mq-send t ""
	mq-recv -F '%t|%p|%o|%k|%K|%s|%S|%h|%%|\t|\\|\x41|\r\n' -c 1 t >"$T/out"
	printf 't|0|0|kk|2|payload|7|h1=v1,h2=v2|%%|\t|\\|A|\r\n' | cmp - "$T/out"
	run mq-recv -F '%T' -c 1 t
	expect_status 0
	[[ $output =~ ^[0-9]+$ ]] && ((output >= before - 5 && output <= after + 5)) ||
		{ echo "timestamp $output not in [$before, $after]" >&2; false; }
	run mq-recv -F '%o:%k:%K:%S:%h:[%s]\n' -o 1 t
	expect_output "1::-1:0::[]"
}

@test "-F adds no newline of its own" {
	run mq-send t a b c
	mq-recv -F '%s' t >"$T/out"
	printf 'abc' | cmp - "$T/out"
	mq-recv --format '%s,' t >"$T/out"
	printf 'a,b,c,' | cmp - "$T/out"
}

# ---- positions ---------------------------------------------------------------------

send10() {
	run bash -c 'seq 10 | mq-send t'
	expect_status 0
}

@test "-o beginning, end, N, -N" {
	send10
	run mq-recv -o beginning t
	expect_status 0
	expect_output "$(seq 10)"
	run mq-recv -o end t
	expect_status 0
	expect_output ""
	run mq-recv -o 3 t
	expect_output "$(seq 4 10)"
	run mq-recv --offset 0 t
	expect_output "$(seq 10)"
	run mq-recv -o -2 t
	expect_output $'9\n10'
	run mq-recv -o -10 t
	expect_output "$(seq 10)"
	run mq-recv -o 9 t
	expect_output "10"
	run mq-recv -o 10 t
	expect_status 0
	expect_output ""
	run mq-recv -o 1000 t
	expect_status 0
	expect_output ""
}

@test "-o -N counts per partition" {
	run mq-topic create -P 2 t
	run mq-send -p 0 t a0 a1 a2
	run mq-send -p 1 t b0 b1 b2 b3
	run mq-recv -o -1 -F '%p:%s\n' t
	expect_status 0
	expect_eq "$(sort <<<"$output")" $'0:a2\n1:b3' "last of each partition"
	run mq-recv -o 2 -F '%s\n' t
	expect_eq "$(sort <<<"$output")" $'a2\nb2\nb3' "from offset 2 in each"
}

@test "-o @TIME: epoch ms and ISO 8601 forms" {
	run mq-send t early1 early2
	expect_status 0
	sleep 0.05
	local t0
	t0=$(now_ms)
	sleep 0.05
	run mq-send t late1 late2
	expect_status 0
	run mq-recv -o "@$t0" t
	expect_status 0
	expect_output $'late1\nlate2'
	run mq-recv -o "@$(iso_ms "$t0")" t
	expect_status 0
	expect_output $'late1\nlate2'
	run mq-recv -o "@$(iso_ms "$t0" 60)" t
	expect_status 0
	expect_output $'late1\nlate2'
	run mq-recv -o "@$(iso_ms "$t0" -330)" t
	expect_output $'late1\nlate2'
	run mq-recv -o @0 t
	expect_output $'early1\nearly2\nlate1\nlate2'
	run mq-recv -o @1970-01-02 t
	expect_status 0
	expect_output $'early1\nearly2\nlate1\nlate2'
	run mq-recv -o @2999-01-01 t
	expect_status 0
	expect_output ""
	run mq-recv -o "@$(date -u +%Y-%m-%dT%H:%M:%SZ -d '+1 hour')" t
	expect_output ""
	run mq-recv -o "@$(date -u +%Y-%m-%d -d '+1 day')" t
	expect_output ""
	run mq-recv -o "@$(date -u +%Y-%m-%dT%H:%M:%SZ -d '-1 hour')" t
	expect_output $'early1\nearly2\nlate1\nlate2'
}

@test "-o @TIME uses the timestamps mq-send -J preserved" {
	printf '%s\n' \
		'{"topic":"x","partition":0,"offset":0,"ts":1764082800000,"key":null,"headers":[],"payload":"a"}' \
		'{"topic":"x","partition":0,"offset":1,"ts":1764082800123,"key":null,"headers":[],"payload":"b"}' \
		'{"topic":"x","partition":0,"offset":2,"ts":1764086400000,"key":null,"headers":[],"payload":"c"}' >"$T/in"
	run mq-send -J t <"$T/in"
	expect_status 0
	run mq-recv -o @1764082800001 t
	expect_output $'b\nc'
	# 2025-11-25T15:00:00Z is 1764082800000
	run mq-recv -o @2025-11-25T15:00:00.123Z t
	expect_output $'b\nc'
	run mq-recv -o @2025-11-25T16:00:00.123+01:00 t
	expect_output $'b\nc'
	run mq-recv -o @2025-11-25T15:30:00Z t
	expect_output 'c'
	run mq-recv -o @2025-11-25 t
	expect_output $'a\nb\nc'
	run mq-recv -u @2025-11-25T15:00:00.123Z t
	expect_output 'a'
}

@test "-u/--until N, @TIME and end" {
	send10
	run mq-recv -u 3 t
	expect_status 0
	expect_output $'1\n2\n3'
	run mq-recv --until 0 t
	expect_output ""
	run mq-recv -o 2 -u 5 t
	expect_output $'3\n4\n5'
	run mq-recv -u 100 t
	expect_output "$(seq 10)"
	run mq-recv -u end t
	expect_output "$(seq 10)"
	run timeout 10 mq-recv -f -u end t
	expect_status 0
	expect_output "$(seq 10)"
	sleep 0.05
	local t0
	t0=$(now_ms)
	sleep 0.05
	run mq-send t eleven
	run mq-recv -u "@$t0" t
	expect_status 0
	expect_output "$(seq 10)"
	run mq-recv -o "@$t0" -u end t
	expect_output "eleven"
}

@test "-c N stops after N messages in total" {
	send10
	run mq-recv -c 3 t
	expect_status 0
	expect_output $'1\n2\n3'
	run mq-recv --count 1 -o 5 t
	expect_output "6"
	run mq-topic create -P 3 u
	run bash -c 'seq 30 | mq-send -p 0 u; seq 30 | mq-send -p 1 u; seq 30 | mq-send -p 2 u'
	run mq-recv -c 40 u
	expect_status 0
	expect_eq "${#lines[@]}" 40 "messages over 3 partitions"
}

@test "a closed stdout pipe ends mq-recv with 0, quietly" {
	seq 300000 | mq-send t
	run bash -c 'mq-recv t 2>"$1" | head -n 1; echo "rc=${PIPESTATUS[0]}"' _ "$T/err"
	expect_output $'1\nrc=0'
	expect_eq "$(cat "$T/err")" "" "stderr"
	run bash -c 'mq-recv -f t 2>/dev/null | head -n 2; echo "rc=${PIPESTATUS[0]}"'
	expect_output $'1\n2\nrc=0'
}

# ---- I/O engines ---------------------------------------------------------------------

@test "MQ_IO=sync and MQ_IO=uring read each other's spools" {
	seq 300000 >"$T/in"
	run env MQ_IO=sync mq-send -z zlib a <"$T/in"
	expect_status 0
	run env MQ_IO=sync mq-send a tail1
	run env MQ_IO=uring mq-send b <"$T/in"
	expect_status 0
	run env MQ_IO=uring mq-send b tail1
	MQ_IO=uring mq-recv a >"$T/a.uring"
	MQ_IO=sync mq-recv a >"$T/a.sync"
	MQ_IO=sync mq-recv b >"$T/b.sync"
	MQ_IO=uring mq-recv b >"$T/b.uring"
	expect_same_file "$T/a.uring" "$T/a.sync"
	expect_same_file "$T/b.sync" "$T/b.uring"
	expect_same_file "$T/a.sync" "$T/b.sync"
	(cat "$T/in"; echo tail1) | cmp - "$T/a.sync"
	run env MQ_IO=sync mq-topic verify
	expect_status 0
	run env MQ_IO=uring mq-topic verify
	expect_status 0
}

# ---- durability, streaming, memory -------------------------------------------------

# strace with file descriptors shown as paths; the sync engine so that every
# fsync is a system call (with io_uring it may be an IORING_OP_FSYNC)
strace_send() { # OUT mq-send args...
	local out=$1
	shift
	need_strace
	run env MQ_IO=sync strace -f -qq -y -e signal=none \
		-e trace=fsync,fdatasync,sync_file_range,syncfs,sync -o "$out" mq-send "$@"
}

@test "durable by default: the segment and new directory entries are synced" {
	strace_send "$T/trace" t m1 m2
	expect_status 0
	grep -Eq '^[0-9]+ +(fsync|fdatasync)\([0-9]+<[^>]*/topics/t/0/00000000000000000000\.log>\) += 0' "$T/trace" ||
		{ echo "no fsync/fdatasync of the segment:" >&2; cat "$T/trace" >&2; false; }
	grep -Eq '^[0-9]+ +fsync\([0-9]+<[^>]*/topics/t/0>\) += 0' "$T/trace" ||
		{ echo "the partition directory (new segment) was not fsync'd:" >&2; cat "$T/trace" >&2; false; }
	grep -Eq '^[0-9]+ +fsync\([0-9]+<[^>]*/topics>\) += 0' "$T/trace" ||
		{ echo "topics/ (new topic) was not fsync'd:" >&2; cat "$T/trace" >&2; false; }
	run mq-recv t
	expect_output $'m1\nm2'
}

@test "--no-sync makes no sync calls when appending" {
	run mq-topic create t
	expect_status 0
	run mq-send t first
	strace_send "$T/trace" --no-sync t m1 m2
	expect_status 0
	run grep -E 'fsync|fdatasync|sync_file_range|syncfs|sync\(' "$T/trace"
	expect_output ""
	run mq-recv t
	expect_output $'first\nm1\nm2'
}

@test "--no-sync makes no sync calls when creating the topic either" {
	strace_send "$T/trace" --no-sync t m1 m2
	expect_status 0
	run grep -E 'fsync|fdatasync|sync_file_range|syncfs|sync\(' "$T/trace"
	expect_output ""
	run mq-recv t
	expect_output $'m1\nm2'
}

@test "a streaming mq-send stores what it read within --sync-interval" {
	run mq-topic create t
	# the writer's stdin stays open for 4 s after the first line
	bg "$T/out" "$T/err" bash -c '{ echo early; sleep 4; echo late; } | mq-send --sync-interval 200ms t'
	local pid=$BG_PID
	wait_until 3 bash -c '[[ $(mq-recv t) == early ]]'
	kill -0 "$pid" || { echo "mq-send already exited" >&2; false; }
	wait_bg "$pid" 10
	expect_eq "$BG_STATUS" 0 "mq-send status"
	run mq-recv t
	expect_output $'early\nlate'
}

@test "keyless single-message sends start at a random partition" {
	run mq-topic create -P 4 t
	expect_status 0
	local i
	for i in $(seq 24); do
		mq-send --no-sync t "m$i"
	done
	run bash -c "mq-recv -F '%p\n' t | sort -u | wc -l"
	((output > 1)) || { echo "24 sends all went to one partition" >&2; false; }
}

@test "the default max.message.bytes is 16 MiB: 16777216 stored, 16777217 refused" {
	head -c 16777216 /dev/urandom >"$T/fit"
	run mq-send --whole t <"$T/fit"
	expect_status 0
	head -c 16777217 /dev/zero >"$T/over"
	run mq-send --whole t <"$T/over"
	expect_status 65
	run mq-recv -F '%S\n' t
	expect_output 16777216
	mq-recv -F '%s' t | cmp - "$T/fit"
}

maxrss_kb() { # command...: run it, print its peak RSS in kB
	python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$@"
}

@test "bounded memory: 200 MB through mq-send and mq-recv" {
	if ldd "$MQ_BINDIR/mq-send" 2>/dev/null | grep -q 'libasan'; then
		skip "RSS is not meaningful under AddressSanitizer"
	fi
	python3 -c '
import sys
line = b"x" * 199 + b"\n"
sys.stdout.buffer.write(line * 1000000)' >"$T/in"
	local rss
	rss=$(maxrss_kb bash -c 'mq-send --no-sync t <"$1"' _ "$T/in")
	((rss < 100000)) || { echo "mq-send peak RSS $rss kB for 200 MB of input" >&2; false; }
	rss=$(maxrss_kb bash -c 'mq-recv t | cmp - "$1"' _ "$T/in")
	((rss < 100000)) || { echo "mq-recv peak RSS $rss kB for 200 MB" >&2; false; }
	rm -f "$T/in"
}

@test "a file size limit (EFBIG) exits 74; what was stored stays readable" {
	run bash -c "trap '' XFSZ; ulimit -f 200; seq 1000000 | mq-send --no-sync t"
	expect_status 74
	expect_contains "mq-send: t:"
	run --separate-stderr mq-recv t
	expect_status 0
	local n=${#lines[@]}
	((n < 1000000))
	[[ $output == "$(seq "$n")" ]] || { echo "not a prefix of the input" >&2; false; }
	# and the next send without the limit carries on from there
	run mq-send --print-offsets t next
	expect_status 0
	expect_output "0 $n"
	run mq-topic verify t
	expect_status 0
}

@test "--print-offsets of a durable send prints an offset only once its message is synced" {
	need_strace
	run mq-topic create t
	# 3000 offsets are more than stdio buffers: none may go out before the
	# segment's sync (the first one, at the end here: stdin ends at once)
	seq 3000 > "$T/in"
	local first_sync first_out st=0
	env MQ_IO=sync strace -f -qq -y -e signal=none \
		-e trace=fsync,fdatasync,write -o "$T/trace" \
		mq-send --print-offsets t < "$T/in" > "$T/offsets" || st=$?
	expect_eq "$st" 0 "exit status"
	first_sync=$(grep -nE '(fsync|fdatasync)\([0-9]+<[^>]*/topics/t/0/[0-9]+\.log>' "$T/trace" | head -n 1 | cut -d: -f1)
	first_out=$(grep -nE 'write\(1<' "$T/trace" | head -n 1 | cut -d: -f1)
	[[ -n $first_sync && -n $first_out ]] ||
		{ echo "no sync or no output:" >&2; cat "$T/trace" >&2; false; }
	((first_out > first_sync)) ||
		{ echo "offsets printed (line $first_out) before the sync (line $first_sync)" >&2; false; }
	expect_eq "$(wc -l < "$T/offsets")" 3000 "offsets printed"
	expect_eq "$(tail -n 1 "$T/offsets")" "0 2999" "last offset"
}

@test "every append is a pwrite(2) on either engine, its sync an fdatasync(2)" {
	need_strace
	MQ_IO=uring "$MQ_BINDIR/mq-send" --no-sync probe x 2>/dev/null || skip "io_uring is not allowed here"
	MQ_IO=uring strace -f -qq -o "$T/trace" -e trace=pwrite64 \
	    "$MQ_BINDIR/mq-send" --no-sync t hello
	grep -q 'pwrite64(.*"mqB1' "$T/trace" || { cat "$T/trace" >&2; false; }
	# so is a large one, with its sync or not (io.c says why)
	head -c 200000 /dev/zero | tr '\0' a | MQ_IO=uring strace -f -qq \
	    -o "$T/trace2" -e trace=pwrite64 "$MQ_BINDIR/mq-send" --no-sync t
	grep -q 'pwrite64(.*"mqB1' "$T/trace2" || { cat "$T/trace2" >&2; false; }
	head -c 200000 /dev/zero | tr '\0' b | MQ_IO=uring strace -f -qq \
	    -o "$T/trace3" -e trace=pwrite64,fdatasync "$MQ_BINDIR/mq-send" t
	grep -q 'pwrite64(.*"mqB1' "$T/trace3" || { cat "$T/trace3" >&2; false; }
	grep -q 'fdatasync(' "$T/trace3" || { cat "$T/trace3" >&2; false; }
	run mq-recv -F '%S\n' t
	expect_output $'5\n200000\n200000'
}
