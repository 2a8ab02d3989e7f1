#!/usr/bin/env bats
# torn tails, flipped bytes, damaged indexes

load helpers

T="$BATS_TEST_TMPDIR"
SEG0=00000000000000000000.log

# three sends, three batches: alpha-message bravo-message charlie-message
three() {
	local t=${1:-t} m
	shift || true
	for m in alpha-message bravo-message charlie-message; do
		run mq-send "$@" "$t" "$m"
		expect_status 0
	done
	run batches "$(seg "$t")"
	expect_status 0
	expect_eq "$(awk '$6 == 0' <<<"$output" | wc -l)" 3 "data batches in $t"
}

# ---- torn tails ------------------------------------------------------------

@test "torn tail mid-body: mq-recv prints the whole messages and exits 0" {
	three
	local s
	s=$(seg t)
	cut_bytes "$s" 3
	run --separate-stderr mq-recv t
	expect_status 0
	expect_output $'alpha-message\nbravo-message'
	run --separate-stderr mq-recv -F '%o\n' t
	expect_output $'0\n1'
}

@test "torn tail mid-header: mq-recv prints the whole messages and exits 0" {
	three
	local s p
	s=$(seg t)
	p=$(batch_pos "$s" 3)
	truncate -s $((p + 30)) "$s"
	run --separate-stderr mq-recv t
	expect_status 0
	expect_output $'alpha-message\nbravo-message'
}

@test "the next mq-send cuts the torn tail off and appends after it" {
	three
	local s good
	s=$(seg t)
	good=$(batch_pos "$s" 3)
	cut_bytes "$s" 3
	run mq-send --print-offsets t delta-message
	expect_status 0
	expect_output "0 2"
	# the file is whole batches again, and nothing of the torn one is left
	run python3 "$SEGTOOL" check "$s"
	expect_status 0
	run batches "$s"
	expect_eq "$(awk '$6 == 0' <<<"$output" | wc -l)" 3 "data batches"
	expect_eq "$(batch_pos "$s" 3)" "$good" "position of the new batch"
	run mq-recv t
	expect_status 0
	expect_output $'alpha-message\nbravo-message\ndelta-message'
	run mq-topic verify
	expect_status 0
	run mq-topic verify t
	expect_status 0
}

@test "the next mq-send also repairs a tail torn inside the header" {
	three
	local s p
	s=$(seg t)
	p=$(batch_pos "$s" 3)
	truncate -s $((p + 10)) "$s"
	run mq-send t delta-message
	expect_status 0
	run python3 "$SEGTOOL" check "$s"
	expect_status 0
	run mq-recv t
	expect_output $'alpha-message\nbravo-message\ndelta-message'
}

@test "verify names a torn tail of the newest segment and exits 0: it is no message and no damage" {
	three
	local s p size
	s=$(seg t)
	p=$(batch_pos "$s" 3)
	cut_bytes "$s" 5
	size=$(fsize "$s")
	run mq-topic verify t
	expect_status 0
	expect_contains "t/0/$SEG0: byte $p: torn tail (an unfinished write; cut by the next writer or --repair)"
	run mq-topic verify
	expect_status 0
	# verify only reads: the next writer cuts it
	expect_eq "$(fsize "$s")" "$size" "size after verify"
	run mq-recv t
	expect_output $'alpha-message\nbravo-message'
}

@test "verify --repair cuts a torn tail; verify is then clean" {
	three
	local s p
	s=$(seg t)
	p=$(batch_pos "$s" 3)
	cut_bytes "$s" 5
	run mq-topic verify --repair t
	expect_status 0
	expect_eq "$(fsize "$s")" "$p" "size after repair"
	run mq-topic verify t
	expect_status 0
	run mq-topic verify
	expect_status 0
	run mq-recv t
	expect_output $'alpha-message\nbravo-message'
	run mq-send --print-offsets t delta-message
	expect_output "0 2"
}

@test "a torn tail in one partition leaves the others alone" {
	run mq-topic create -P 2 t
	three t -p 0
	run mq-send -p 1 t p1-a p1-b
	cut_bytes "$(seg t 0)" 2
	run mq-recv -F '%p %s\n' t
	expect_status 0
	expect_eq "$(sort <<<"$output")" $'0 alpha-message\n0 bravo-message\n1 p1-a\n1 p1-b' "messages"
}

# ---- flipped bytes ----------------------------------------------------------

@test "flipped payload byte in a middle batch: 65, damaged message never printed" {
	three
	local s off
	s=$(seg t)
	off=$(find_bytes "$s" bravo-message)
	flip_byte "$s" "$off"
	run --separate-stderr mq-recv t
	expect_status 65
	expect_output $'alpha-message\ncharlie-message'
	expect_not_contains "ravo-message"
	expect_contains "$SEG0" stderr
	expect_contains "byte" stderr
	[[ $stderr == mq-recv:* ]] || { _mq_dump; false; }
	# every output format keeps it out
	run --separate-stderr mq-recv -J t
	expect_status 65
	expect_not_contains "ravo"
	expect_eq "${#lines[@]}" 2 "JSON lines"
	run --separate-stderr mq-recv -F '%o %s\n' t
	expect_status 65
	expect_output $'0 alpha-message\n2 charlie-message'
}

@test "flipped payload byte: mq-topic verify exits 65 and says where" {
	three
	local s p
	s=$(seg t)
	p=$(batch_pos "$s" 2)
	flip_byte "$s" "$(find_bytes "$s" bravo-message)"
	run mq-topic verify
	expect_status 65
	[[ $output =~ t/0/$SEG0:\ byte\ [0-9]+:\ . ]] || { echo "no 'TOPIC/PART/SEGMENT.log: byte N: reason' line" >&2; _mq_dump; false; }
	run mq-topic verify t
	expect_status 65
	expect_contains "t/0/$SEG0: byte "
	# the byte named is within the damaged batch
	local n
	n=$(sed -n "s|.*t/0/$SEG0: byte \([0-9]*\):.*|\1|p" <<<"$output" | head -n 1)
	((n >= p && n < $(batch_pos "$s" 3))) || { echo "byte $n not in [$p, $(batch_pos "$s" 3))" >&2; false; }
	# a clean topic beside it does not change the verdict, nor is it blamed
	run mq-send clean ok
	run mq-topic verify clean
	expect_status 0
	run mq-topic verify
	expect_status 65
	expect_not_contains "clean/"
}

@test "verify reads a segment of many small batches a chunk at a time, and still finds a flipped byte among them" {
	need_strace
	local i s n
	for i in $(seq 300); do
		mq-send --no-sync t "small batch $i" || return 1
	done
	s=$(seg t)
	run batches "$s"
	expect_eq "$(awk '$6 == 0' <<<"$output" | wc -l)" 300 "data batches in t"
	# the header walk reads ahead while batches are small: a few reads
	# for 300 batches, not one or two each
	MQ_IO=sync strace -f -qq -e trace=pread64 -o "$T/st" "$MQ_BINDIR/mq-topic" verify t
	n=$(grep -c 'pread64(' "$T/st")
	((n < 30)) || { echo "verify made $n pread64 calls for 300 batches" >&2; false; }
	flip_byte "$s" "$(find_bytes "$s" 'small batch 250')"
	run mq-topic verify t
	expect_status 65
	run --separate-stderr mq-recv t
	expect_status 65
	expect_eq "${#lines[@]}" 299 "messages around the damaged one"
	expect_not_contains "small batch 250"
}

@test "verify --repair cannot make a damaged middle batch clean: 65, good data kept" {
	three
	local s
	s=$(seg t)
	flip_byte "$s" "$(find_bytes "$s" bravo-message)"
	run mq-topic verify --repair t
	expect_status 65
	run --separate-stderr mq-recv t
	expect_status 65
	expect_output $'alpha-message\ncharlie-message'
}

@test "flipped byte in a middle batch header: 65, the messages after it still printed" {
	local field
	# magic, hdr_crc, base_offset, count, body_len (low, high), body_crc, base_ts, type
	for field in 0 4 8 16 20 23 24 33 48; do
		three "h$field"
		local s p
		s=$(seg "h$field")
		p=$(batch_pos "$s" 2)
		flip_byte "$s" $((p + field))
		run --separate-stderr mq-recv "h$field"
		expect_status 65
		expect_output $'alpha-message\ncharlie-message'
		expect_contains "$SEG0" stderr
		run mq-topic verify "h$field"
		expect_status 65
		expect_contains "h$field/0/$SEG0: byte "
	done
}

@test "-o @TIME past a flipped batch header finds the messages after it in the same segment" {
	local i s p ts
	for i in 1 2 3 4 5; do
		seq $((i * 100 - 99)) $((i * 100)) >"$T/in$i"
		mq-send t <"$T/in$i"
		sleep 0.01
	done
	s=$(seg t)
	# the fourth batch's time, read before the damage
	ts=$(mq-recv -o 300 -c 1 -F '%T' t)
	p=$(batch_pos "$s" 2)
	flip_byte "$s" $((p + 8))
	run --separate-stderr mq-recv -o "@$ts" -c 2 t
	expect_output $'301\n302'
	# a time past the first batch, before the damaged one: the first
	# message after the damage
	ts=$(mq-recv -o 0 -c 1 -F '%T' t)
	run --separate-stderr mq-recv -o "@$((ts + 1))" -c 1 t
	expect_output 201
}

@test "flipped byte in a compressed batch: 65, not printed" {
	local a b c
	a=$(printf 'a%.0s' {1..3000})
	b=$(printf 'b%.0s' {1..3000})
	c=$(printf 'c%.0s' {1..3000})
	run mq-send -z zlib t "$a"
	run mq-send -z zlib t "$b"
	run mq-send -z zlib t "$c"
	local s p
	s=$(seg t)
	p=$(batch_pos "$s" 2)
	flip_byte "$s" $((p + 64 + 10))
	run --separate-stderr mq-recv t
	expect_status 65
	expect_output "$a"$'\n'"$c"
	expect_not_contains "bbbb"
}

@test "damage in one partition: the other partitions are read in full" {
	run mq-topic create -P 2 t
	three t -p 0
	run mq-send -p 1 t p1-a p1-b
	local s
	s=$(seg t 0)
	flip_byte "$s" "$(find_bytes "$s" bravo-message)"
	run --separate-stderr mq-recv -F '%p %s\n' t
	expect_status 65
	expect_eq "$(sort <<<"$output")" $'0 alpha-message\n0 charlie-message\n1 p1-a\n1 p1-b' "messages"
	run --separate-stderr mq-recv -p 1 t
	expect_status 0
	expect_output $'p1-a\np1-b'
}

@test "a flipped byte in an old segment is reported, later segments read" {
	run mq-topic create --config segment.bytes=1024 t
	local i
	for i in 1 2 3 4 5; do
		run mq-send t "seg$i-$(printf 'x%.0s' {1..900})"
		expect_status 0
	done
	(($(segments t | wc -l) >= 3)) || { segments t >&2; false; }
	local s
	s=$(seg t)
	flip_byte "$s" "$(find_bytes "$s" seg1-)"
	run --separate-stderr mq-recv -F '%s\n' t
	expect_status 65
	expect_not_contains "seg1-"
	expect_contains "seg5-"
	expect_contains "$SEG0" stderr
}

# ---- index damage -------------------------------------------------------------

# 100,000 messages "1".."100000" in 40 batches
fill() {
	run mq-topic create t
	local i
	for ((i = 0; i < 40; i++)); do
		seq $((i * 2500 + 1)) $((i * 2500 + 2500)) | mq-send --no-sync t
	done
	IDX=$(partdir t)/00000000000000000000.index
	[[ -s $IDX ]] || { echo "no index at $IDX" >&2; ls -la "$(partdir t)" >&2; false; }
}

# reads at offsets spread over the segment must all be right
check_reads() {
	local n
	for n in 0 1 2499 2500 2501 17777 54321 99997 99999; do
		run --separate-stderr mq-recv -o "$n" -u $((n + 3)) -F '%o %s,' t
		expect_status 0
		case $n in
		99999) expect_output "99999 100000," ;;
		99997) expect_output "99997 99998,99998 99999,99999 100000," ;;
		*) expect_output "$n $((n + 1)),$((n + 1)) $((n + 2)),$((n + 2)) $((n + 3))," ;;
		esac
	done
	run mq-recv -o -2 -F '%s ' t
	expect_output "99999 100000 "
	run bash -c "mq-recv t | cmp - <(seq 100000)"
	expect_status 0
}

@test "index: reads at an offset are right with the index as written" {
	fill
	check_reads
	run mq-topic verify t
	expect_status 0
}

@test "index: a segment grown by one-shot sends is indexed, so the next one-shot walks only its tail" {
	mq-topic create t
	local i big idx
	big=$(printf '%01000d' 0)
	# 30 processes of one 1000-byte message each: 30 KB, and no writer
	# ever appends 4 KB (the index interval) itself
	for ((i = 0; i < 30; i++)); do
		run mq-send --no-sync t "$i $big"
		expect_status 0
	done
	idx=$(partdir t)/00000000000000000000.index
	# an entry each 4 KB or so: 6 at least (the old code kept one)
	expect_eq "$(($(fsize "$idx") >= 48))" 1 "index of $(fsize "$idx") bytes after 30 KB of one-shot sends"
	run mq-topic verify t
	expect_status 0
	run mq-recv -o 17 -c 1 -F '%o %s' t
	expect_output "17 17 $big"
	run mq-recv -o -1 -F '%o' t
	expect_output "29"
}

@test "index: a one-shot send's catch-up reads from the last index entry, not from the segment's start" {
	need_strace
	mq-topic create t
	local big max
	big=$(printf '%01000d' 0)
	for ((i = 0; i < 30; i++)); do
		mq-send --no-sync t "$i $big" || return 1
	done
	strace -o "$T/tr" -e trace=pread64 mq-send --no-sync t last
	max=$(awk -F', ' '/^pread64/ { n = $3 + 0; if (n > max) max = n } END { print max + 0 }' "$T/tr")
	# the old code read the whole 30 KB
	expect_eq "$((max < 8192))" 1 "largest read $max bytes: $(cat "$T/tr")"
	run mq-recv -o -1 t
	expect_output "last"
}

@test "index scribbled with random bytes: reads right, verify 65, --repair fixes" {
	fill
	head -c "$(fsize "$IDX")" /dev/urandom >"$T/junk"
	cp "$T/junk" "$IDX"
	run mq-topic verify t
	expect_status 65
	expect_contains ".index"
	cp "$T/junk" "$IDX"
	check_reads
	run mq-topic verify --repair t
	expect_status 0
	run mq-topic verify t
	expect_status 0
	check_reads
}

@test "index truncated mid-entry, zeroed, or removed: reads right" {
	fill
	truncate -s 13 "$IDX"
	check_reads
	local size
	size=$(fsize "$IDX")
	head -c "$size" /dev/zero >"$IDX"
	check_reads
	rm -f "$IDX"
	check_reads
	run mq-topic verify --repair t
	expect_status 0
	run mq-topic verify t
	expect_status 0
}

@test "index entries that point at wrong but plausible places: reads right" {
	fill
	local s
	s=$(seg t)
	# entries claim offsets at positions that are mid-batch, past EOF, or
	# another batch's header
	python3 - "$IDX" "$(batch_pos "$s" 5)" "$(fsize "$s")" <<'EOF'
import struct, sys
idx, p5, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ents = [(0, 0), (2500, 77), (17000, p5), (50000, size + 4096), (60000, size // 2), (99000, 64)]
open(idx, 'wb').write(b''.join(struct.pack('<II', o, p) for o, p in ents))
EOF
	run mq-topic verify t
	expect_status 65
	check_reads
	run mq-topic verify --repair t
	expect_status 0
	run mq-topic verify t
	expect_status 0
	check_reads
}

@test "a short (torn) batch at the end of an old segment is damage, not a tail" {
	run mq-topic create --config segment.bytes=1024 t
	local i
	for i in 1 2 3 4; do
		run mq-send t "seg$i-$(printf 'x%.0s' {1..900})"
		expect_status 0
	done
	(($(segments t | wc -l) >= 3)) || { segments t >&2; false; }
	# cut into the data batch of the first segment
	truncate -s 100 "$(seg t)"
	run --separate-stderr mq-recv -F '%o\n' t
	expect_status 65
	expect_output $'1\n2\n3'
	expect_contains "$SEG0" stderr
	run mq-topic verify t
	expect_status 65
	expect_contains "t/0/$SEG0: byte "
}

@test "an old segment cut short after its last data batch is reported, data kept" {
	run mq-topic create --config segment.bytes=1024 t
	local i
	for i in 1 2 3; do
		run mq-send t "seg$i-$(printf 'x%.0s' {1..900})"
		expect_status 0
	done
	(($(segments t | wc -l) >= 2)) || { segments t >&2; false; }
	local s end
	s=$(seg t)
	end=$(batch_pos "$s" 1)
	end=$((end + 64 + $(batches "$s" | awk 'NR == 1 { print $4 }')))
	truncate -s $((end + 5)) "$s"
	run --separate-stderr mq-recv -F '%o\n' t
	expect_status 65
	expect_output $'0\n1\n2'
	expect_contains "$SEG0" stderr
}
