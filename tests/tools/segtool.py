#!/usr/bin/env python3
"""segtool - inspect and damage mq segment files, for the bats suites.

    segtool.py batches FILE          one line per batch:
                                     POS BASE COUNT BODYLEN CODEC TYPE STATE
                                     STATE is ok, badhdr, badbody or torn;
                                     walking stops at the first bad header
    segtool.py check FILE            exit 0 when FILE is exactly a sequence
                                     of whole batches with good checksums
    segtool.py find FILE STRING [N]  byte offset of the Nth occurrence
    segtool.py flip FILE OFFSET      invert every bit of the byte at OFFSET
    segtool.py index FILE            dump an .index: REL_OFFSET POS per entry
    segtool.py plant FILE TYPE FLAGS GAP COUNT [MAGIC]
                                     append a batch with good checksums at
                                     the end of FILE, its base_offset GAP
                                     past the end of the last batch; type 0
                                     gets COUNT records c0, c1, ..., other
                                     types COUNT and the body "future"

The layout is the one in libspool/format.h (batch header of 64 bytes,
little-endian, CRC-32 of header bytes 8..63 and of the stored body).
"""

import struct
import sys
import zlib

HDR = 64
MAGIC = b"mqB1"


def walk(data):
    pos = 0
    while pos < len(data):
        if len(data) - pos < HDR:
            yield (pos, None, None, None, None, None, "torn")
            return
        h = data[pos:pos + HDR]
        magic, hcrc, base, count, blen, bcrc, rawlen, bts, mts, typ, codec, \
            flags, epoch, txid = struct.unpack("<4sIQIIIIqqHBBIQ", h)
        if magic != MAGIC or zlib.crc32(h[8:]) != hcrc:
            yield (pos, base, count, blen, codec, typ, "badhdr")
            return
        if len(data) - pos - HDR < blen:
            yield (pos, base, count, blen, codec, typ, "torn")
            return
        body = data[pos + HDR:pos + HDR + blen]
        state = "ok" if zlib.crc32(body) == bcrc else "badbody"
        yield (pos, base, count, blen, codec, typ, state)
        pos += HDR + blen


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 64
    cmd, path = argv[1], argv[2]
    if cmd == "batches":
        with open(path, "rb") as f:
            data = f.read()
        for b in walk(data):
            print(" ".join("-" if v is None else str(v) for v in b))
        return 0
    if cmd == "check":
        with open(path, "rb") as f:
            data = f.read()
        bad = [b for b in walk(data) if b[6] != "ok"]
        for b in bad:
            sys.stderr.write("%s: byte %d: %s\n" % (path, b[0], b[6]))
        return 1 if bad else 0
    if cmd == "find":
        needle = argv[3].encode()
        nth = int(argv[4]) if len(argv) > 4 else 1
        with open(path, "rb") as f:
            data = f.read()
        pos = -1
        for _ in range(nth):
            pos = data.find(needle, pos + 1)
            if pos < 0:
                sys.stderr.write("%s: %r: not found\n" % (path, argv[3]))
                return 1
        print(pos)
        return 0
    if cmd == "flip":
        off = int(argv[3])
        with open(path, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            if len(b) != 1:
                sys.stderr.write("%s: offset %d past the end\n" % (path, off))
                return 1
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
        return 0
    if cmd == "index":
        with open(path, "rb") as f:
            data = f.read()
        for i in range(0, len(data) - len(data) % 8, 8):
            print("%d %d" % struct.unpack("<II", data[i:i + 8]))
        return 0
    if cmd == "plant":
        return plant(path, *argv[3:])
    sys.stderr.write(__doc__)
    return 64


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def plant(path, typ, flags, gap, count, magic="mqB1"):
    typ, flags, gap, count = int(typ), int(flags, 0), int(gap), int(count)
    with open(path, "rb") as f:
        data = f.read()
    nxt = int(path.rsplit("/", 1)[-1].split(".")[0])
    for b in walk(data):
        if b[6] != "ok":
            sys.stderr.write("%s: byte %d: %s\n" % (path, b[0], b[6]))
            return 1
        nxt = b[1] if b[5] == 1 else b[1] + b[2]
    if typ == 0:
        recs = []
        for i in range(count):
            rec = b"\0\0\0" + b"c%d" % i     # attrs, ts_delta, nheaders
            recs.append(varint(len(rec)) + rec)
        body = b"".join(recs)
    else:
        body = b"future"
    ts = 1764000000000
    h = struct.pack("<QIIIIqqHBBIQ", nxt + gap, count, len(body),
                    zlib.crc32(body), len(body), ts, ts, typ, 0, flags, 0, 0)
    h = magic.encode() + struct.pack("<I", zlib.crc32(h)) + h
    with open(path, "ab") as f:
        f.write(h + body)
    print(nxt + gap)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
