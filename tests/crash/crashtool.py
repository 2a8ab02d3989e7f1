#!/usr/bin/env python3
"""crashtool - look at a topic's segment files for the crash harness.

    crashtool.py scan TOPICDIR [--allow-torn-tail]
        One line per segment: PART FILE FIRST NEXT STATE, where NEXT is the
        offset after the last record of the last whole, good batch, and
        STATE is one of
            clean          whole batches only, no END batch
            end            whole batches ending with an END batch
            torn@POS       a batch cut short at byte POS (the file ends)
            zero@POS       every byte from POS to the end is zero
            damage@POS:WHY a checksum, magic or offset that is wrong
        Then a line "problem: ..." for every irregularity that a writer
        killed with SIGKILL may not leave behind.  Allowed with
        --allow-torn-tail: a torn or zero tail in the newest segment of a
        partition, and an END batch ending the newest segment (a writer
        killed before it created the next one).  Never allowed: damage, an older segment that does not
        end with an END batch, an END batch that does not name the next
        segment, a segment whose name is not its first offset.
        Exit 0 when there is no problem, 1 otherwise, 2 on usage errors.

    crashtool.py next TOPICDIR
        "PART NEXT" per partition: the offset after the last message a
        reader can get from it (whole good batches, up to the first torn
        or damaged one in the newest segment).

The format is the one in mq-spool(5): 64-byte batch headers, little-endian,
CRC-32 (zlib's) of header bytes 8..63 and of the stored body.
"""

import os
import re
import struct
import sys
import zlib

HDR = 64
MAGIC = b"mqB1"
SEG_RE = re.compile(r"^([0-9]{20})\.log$")


def partitions(topicdir):
    parts = []
    for name in os.listdir(topicdir):
        if name.isdigit() and os.path.isdir(os.path.join(topicdir, name)):
            parts.append(int(name))
    return sorted(parts)


def segments(pdir):
    segs = []
    for name in os.listdir(pdir):
        m = SEG_RE.match(name)
        if m:
            segs.append((int(m.group(1)), name))
    return sorted(segs)


def walk(data, first):
    """(next_offset, state, pos, saw_end, end_base)

    Linear in the segment's size: nothing is copied but a header, and the
    rest of the file is looked at for zeros only where a header does not
    check out (a good header is never all zeros)."""
    pos = 0
    n = len(data)
    expect = first
    saw_end = False
    end_base = None
    view = memoryview(data)

    def zeros(at):
        return data.count(0, at) == n - at

    while pos < n:
        if saw_end:
            return expect, "damage@%d:data after END batch" % pos, saw_end, end_base
        if n - pos < HDR:
            return expect, ("zero@%d" if zeros(pos) else "torn@%d") % pos, \
                saw_end, end_base
        h = data[pos:pos + HDR]
        (magic, hcrc, base, count, blen, bcrc, rawlen, _bts, _mts, typ,
         codec, _flags, _epoch, _txid) = struct.unpack("<4sIQIIIIqqHBBIQ", h)
        if magic != MAGIC or zlib.crc32(h[8:]) != hcrc or blen > (1 << 30):
            if zeros(pos):
                return expect, "zero@%d" % pos, saw_end, end_base
            return expect, "damage@%d:bad header" % pos, saw_end, end_base
        if n - pos - HDR < blen:
            return expect, "torn@%d" % pos, saw_end, end_base
        if zlib.crc32(view[pos + HDR:pos + HDR + blen]) != bcrc:
            return expect, "damage@%d:body checksum" % pos, saw_end, end_base
        if base != expect:
            return expect, "damage@%d:base_offset %d, expected %d" % (
                pos, base, expect), saw_end, end_base
        if typ == 1:
            saw_end = True
            end_base = base
        elif typ == 0:
            expect = base + count
        pos += HDR + blen
    return expect, ("end" if saw_end else "clean"), saw_end, end_base


def scan(topicdir, allow_torn):
    problems = []
    lines = []
    nexts = {}
    for p in partitions(topicdir):
        pdir = os.path.join(topicdir, str(p))
        segs = segments(pdir)
        nxt = 0
        for i, (first, name) in enumerate(segs):
            newest = i == len(segs) - 1
            with open(os.path.join(pdir, name), "rb") as f:
                data = f.read()
            if i > 0 and first != nxt:
                problems.append("%d/%s: named %d, but the segment before "
                                "ends at offset %d" % (p, name, first, nxt))
            nxt, state, saw_end, end_base = walk(data, first)
            lines.append("%d %s %d %d %s" % (p, name, first, nxt, state))
            if state.startswith("damage"):
                problems.append("%d/%s: %s" % (p, name, state))
            elif state.startswith(("torn", "zero")):
                if not (newest and allow_torn):
                    problems.append("%d/%s: %s%s" % (
                        p, name, state, "" if newest else
                        " (not the newest segment)"))
            if not newest:
                if not saw_end:
                    problems.append("%d/%s: older segment without an END "
                                    "batch" % (p, name))
                elif end_base != segs[i + 1][0]:
                    problems.append("%d/%s: END batch names %d, next "
                                    "segment is %d" % (p, name, end_base,
                                                       segs[i + 1][0]))
            elif saw_end and not allow_torn:
                problems.append("%d/%s: newest segment ends with an END "
                                "batch but there is no next segment" %
                                (p, name))
        nexts[p] = nxt
    return lines, problems, nexts


def main(argv):
    if len(argv) < 3 or argv[1] not in ("scan", "next"):
        sys.stderr.write(__doc__)
        return 2
    topicdir = argv[2]
    if argv[1] == "scan":
        lines, problems, _ = scan(topicdir, "--allow-torn-tail" in argv[3:])
        for l in lines:
            print(l)
        for pr in problems:
            print("problem: " + pr)
        return 1 if problems else 0
    _, _, nexts = scan(topicdir, True)
    for p in sorted(nexts):
        print("%d %d" % (p, nexts[p]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
