#!/usr/bin/env bats
# damage in the newest segment never locks writers out (issue 8, finding 4)

# the random-flip loop runs 60 cases, slow under ASan on a loaded machine
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-300}

load helpers

SEG0=00000000000000000000.log

# flip_bit FILE BYTE BIT: invert one bit, in place
flip_bit() {
	python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, at, bit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    f.seek(at)
    b = f.read(1)[0]
    f.seek(at)
    f.write(bytes([b ^ (1 << bit)]))
EOF
}

# five_batches TOPIC: five sends of 20 lines, b1-1 .. b5-20
five_batches() {
	local i
	for i in 1 2 3 4 5; do
		seq -f "b$i-%g" 20 | mq-send "$1" || return 1
	done
}

@test "a flipped bit in the second batch's header does not lock producers out" {
	five_batches t
	local s
	s=$(partdir t)/$SEG0
	# byte 245 is in the header of the second batch (at 235)
	expect_eq "$(batch_pos "$s" 2)" 235 "second batch"
	flip_bit "$s" 245 0
	run --separate-stderr mq-send --print-offsets t x
	expect_status 0
	# the damaged batch's offsets (20-39) are never given again
	expect_output "0 100"
	run --separate-stderr mq-send t y
	expect_status 0
	run --separate-stderr mq-recv t
	expect_status 65
	expect_contains "byte 235" stderr
	# every batch but the damaged one is read, then the new messages
	expect_output "$( (seq -f b1-%g 20; for i in 3 4 5; do seq -f "b$i-%g" 20; done; echo x; echo y))"
	# verify still names the damage: it is not hidden
	run mq-topic verify t
	expect_status 65
	expect_contains "t/0/$SEG0: byte 235"
}

@test "a damaged last header whose batch is still sure: mq-send appends after it, offsets never given again" {
	five_batches t
	local s p
	s=$(partdir t)/$SEG0
	p=$(batch_pos "$s" 5)
	flip_bit "$s" $((p + 40)) 2	# max_ts
	run --separate-stderr mq-send --print-offsets t x
	expect_status 0
	expect_output "0 100"
	run --separate-stderr mq-recv t
	expect_status 65
	expect_output "$( (for i in 1 2 3 4; do seq -f "b$i-%g" 20; done; echo x))"
	run mq-topic verify --repair t
	expect_status 65
	expect_contains "t/0/$SEG0: byte $p: bad batch header"
	run mq-send --print-offsets t y
	expect_status 0
	expect_output "0 101"
}

@test "a damaged header with no good batch after it: verify --repair makes the partition writable, bytes kept aside" {
	five_batches t
	local s p
	s=$(partdir t)/$SEG0
	p=$(batch_pos "$s" 5)
	flip_bit "$s" $((p + 20)) 3	# body_len: the batch's length is lost
	run --separate-stderr mq-send t x
	expect_status 65
	expect_contains "verify --repair" stderr
	run mq-topic verify --repair t
	expect_status 0
	expect_contains "damaged tail moved to"
	ls "$(partdir t)"/$SEG0.cut-* >/dev/null
	expect_eq "$(fsize "$(partdir t)"/$SEG0.cut-*)" 235 "bytes kept aside"
	run --separate-stderr mq-send t x
	expect_status 0
	run --separate-stderr mq-recv t
	expect_status 0
	expect_output "$( (for i in 1 2 3 4; do seq -f "b$i-%g" 20; done; echo x))"
}

@test "random single-bit flips in the newest segment's headers: mq-send succeeds (after verify --repair at most), every undamaged batch reads" {
	# two segments: 0 (batches 1-4 and END) and 80 (batches 5-8)
	run mq-topic create --config segment.bytes=1024 t
	expect_status 0
	local i
	for i in 1 2 3 4 5 6 7 8; do
		seq -f "b$i-%g" 20 | mq-send t
	done
	expect_eq "$(segments t | wc -l)" 2 "segments"
	local newest
	newest=$(last_seg t)
	expect_eq "$(basename "$newest")" 00000000000000000080.log "newest"
	cp "${newest%.log}.index" "$BATS_TEST_TMPDIR/orig.index"
	# a fixed sample of (batch, byte, bit), each written as a damaged
	# copy of the newest segment, all in one python3 run; byte 3 bits 0-3
	# make the magic "mqB" + another digit, a newer format, not damage
	local flips
	# (60 flips; 15 in the passes that MQ_TEST_QUICK thins)
	flips=$(python3 - "$newest" "$BATS_TEST_TMPDIR" "${MQ_TEST_QUICK:-0}" <<'EOF'
import random, struct, sys, zlib
path, out = sys.argv[1], sys.argv[2]
total = 15 if sys.argv[3] == "1" else 60
data = open(path, "rb").read()
starts, pos = [], 0
while pos < len(data):
    starts.append(pos)
    pos += 64 + struct.unpack_from("<I", data, pos + 20)[0]
assert len(starts) == 4, starts
r = random.Random(8)
n = 0
while n < total:
    b, y, t = r.randrange(4), r.randrange(64), r.randrange(8)
    if y == 3 and t < 4:
        continue
    d = bytearray(data)
    d[starts[b] + y] ^= 1 << t
    open("%s/flip%d" % (out, n), "wb").write(d)
    print(n, b + 5, y, t)
    n += 1
EOF
	)
	local n batch byte bit want got repaired=0
	while read -r n batch byte bit; do
		# the newest segment as it was, with one bit flipped
		rm -f "$newest".cut-*
		cp "$BATS_TEST_TMPDIR/orig.index" "${newest%.log}.index"
		cp "$BATS_TEST_TMPDIR/flip$n" "$newest"
		# offsets 160 on are new: no damaged batch's offset is given again
		want=160
		if ! got=$(mq-send --print-offsets t x 2>"$BATS_TEST_TMPDIR/err"); then
			if ! grep -q 'verify --repair' "$BATS_TEST_TMPDIR/err"; then
				echo "batch $batch byte $byte bit $bit: mq-send failed:" >&2
				cat "$BATS_TEST_TMPDIR/err" >&2
				return 1
			fi
			mq-topic verify --repair t >/dev/null || true
			repaired=$((repaired + 1))
			if ! got=$(mq-send --print-offsets t x); then
				echo "batch $batch byte $byte bit $bit: mq-send fails after verify --repair" >&2
				return 1
			fi
			# a batch cut aside gives its offsets again (mq-spool(5))
			want=$((80 + 20 * (batch - 5)))
		fi
		if [[ $got != "0 $want" ]]; then
			echo "batch $batch byte $byte bit $bit: x stored at $got, want 0 $want" >&2
			return 1
		fi
		want=$(for i in 1 2 3 4 5 6 7 8; do
			((i == batch)) || seq -f "b$i-%g" 20
		done; echo x)
		got=$(mq-recv t 2>/dev/null || true)
		if [[ $got != "$want" ]]; then
			echo "batch $batch byte $byte bit $bit: read back:" >&2
			diff <(echo "$want") <(echo "$got") >&2 || true
			return 1
		fi
	done <<<"$flips"
	echo "# $repaired of 60 needed verify --repair" >&3
}
