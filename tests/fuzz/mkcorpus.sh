#!/bin/sh
# mkcorpus.sh - (re)make the seed corpora of tests/fuzz/corpus/ from real
# spools written by bin/mq-send (run `make` first).  The corpora are
# committed; run this only to refresh them.  Files are kept small: the
# fuzz runs use -max_len=65536.
set -eu
cd "$(dirname "$0")/../.."
B=$(pwd)/bin
C=tests/fuzz/corpus
T=$(mktemp -d "${TMPDIR:-/tmp}/mq-corpus.XXXXXX")
trap 'rm -rf "$T"' EXIT
S=$T/spool
export MQ_SPOOL=$S
mkdir -p $C/fuzz_batch $C/fuzz_segment $C/fuzz_config $C/fuzz_json $C/fuzz_cli
MARK='
MQFUZZ-INDEX
'

seg() {	# seg TOPIC NAME: the first segment (and index) of partition 0
	cp "$S/topics/$1/0/00000000000000000000.log" "$C/fuzz_segment/$2"
	if [ -s "$S/topics/$1/0/00000000000000000000.index" ]; then
		{ cat "$S/topics/$1/0/00000000000000000000.log"
		  printf '%s' "$MARK"
		  cat "$S/topics/$1/0/00000000000000000000.index"
		} > "$C/fuzz_segment/$2-idx"
	fi
}

# plain: lines, a keyed message with headers, an empty one
printf 'a\nb\nc\n' | $B/mq-send plain
$B/mq-send -k user42 -H type=text/plain -H x= plain '{"id":1}'
$B/mq-send -k '' plain ''
seg plain plain

# zlib bodies, at two levels
$B/mq-topic create --config compression=zlib zl
seq 1 200 | $B/mq-send zl
$B/mq-send -z zlib:9 -k k -H h=v zl 'compressed and keyed'
seg zl zlib

# binary payloads and keys, times given with -J (not increasing)
printf '\000\001\377\376binary' | $B/mq-send --whole -k "$(printf '\351t\351')" bin
printf '%s\n' '{"ts":1764000000000,"key":"a","headers":[["n","v"]],"payload":"x"}' \
    '{"ts":5,"key":null,"headers":[],"payload":"y"}' \
    '{"ts":1764000009999,"payload":"AAEC","payload_encoding":"base64"}' |
    $B/mq-send -J bin
seg bin binary

# rolled: small segments, closed with END batches
$B/mq-topic create --config segment.bytes=1024 rolled
for i in 1 2 3 4 5 6; do
	head -c 300 /dev/zero | tr '\0' "$i" | $B/mq-send --whole rolled
done
seg rolled rolled

# indexed: several index entries (one every 4096 bytes of log)
for i in 1 2 3 4 5 6 7 8; do
	head -c 3000 /dev/zero | tr '\0' x | $B/mq-send --whole idx
done
# a writer indexes only what it wrote itself; verify --repair rebuilds all
rm -f $S/topics/idx/0/00000000000000000000.index
$B/mq-topic verify --repair idx > /dev/null 2>&1 || true
seg idx indexed

# damage: a torn tail, a zeroed tail, an empty segment
f=$C/fuzz_segment
head -c $(( $(wc -c < $f/plain) - 5 )) $f/plain > $f/torn
{ cat $f/plain; head -c 200 /dev/zero; } > $f/zerotail
: > $f/empty
# a bad body checksum in the middle: flip a payload byte of batch 1
python3 - "$f/plain" "$f/badbody" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[64 + 3] ^= 0xff
open(sys.argv[2], "wb").write(d)
PY

# fuzz_batch: each batch of those segments on its own, and two whole ones
python3 - "$C/fuzz_batch" $f/plain $f/zlib $f/binary $f/rolled <<'PY'
import struct, sys, os
out = sys.argv[1]
for path in sys.argv[2:]:
    d = open(path, "rb").read()
    pos, n = 0, 0
    while pos + 64 <= len(d):
        blen = struct.unpack_from("<I", d, pos + 20)[0]
        b = d[pos:pos + 64 + blen]
        if len(b) <= 65536:
            open(os.path.join(out, "%s-%d" % (os.path.basename(path), n)),
                 "wb").write(b)
        pos += 64 + blen
        n += 1
PY
cp $f/plain $C/fuzz_batch/seg-plain
cp $f/binary $C/fuzz_batch/seg-binary

# fuzz_json: what mq-recv -J prints, one line a file
n=0
for t in plain zl bin; do
	$B/mq-recv -J $t | head -5 | while IFS= read -r line; do
		n=$((n + 1))
		printf '%s\n' "$line" > $C/fuzz_json/$t-$n
	done
done
printf '%s\n' '{"payload":"p","headers":[["AA==","/w==","base64"]],"key":"AP8=","key_encoding":"base64"}' > $C/fuzz_json/b64-headers
printf '%s\n' '{"payload":"nul \u0000 and \u00e9 and \ud83d\ude00","key":""}' > $C/fuzz_json/unicode

# fuzz_config: a real config and variations
cp $S/topics/zl/config $C/fuzz_config/zlib
cp $S/topics/plain/config $C/fuzz_config/default
printf '# comment\n\npartitions=4096\ncompression=zlib:9\ncleanup.policy=compact\nunknown.key=x\n' > $C/fuzz_config/mixed
printf 'retention.ms=-1\nretention.bytes=9223372036854775807\nsegment.bytes=1024\nmax.message.bytes=0\ndedup.window.ms=0\n' > $C/fuzz_config/limits

# fuzz_cli: arguments of -t, -w, -o, -u, -d, -F
i=0
for s in 1.5s 200ms 2m 1h 1d 10 .5 0 @2026-11-25T15:00:00Z \
    '@2026-11-25 15:00:00.123+01:00' @2026-11-25T15:00-0530 @1764000000000 \
    -5 -0 5 beginning end '\x2c' '\n' '\t\r\0\\' '%o %k %s\n'; do
	i=$((i + 1))
	printf '%s' "$s" > $C/fuzz_cli/arg-$i
done
echo "corpora made in $C"
