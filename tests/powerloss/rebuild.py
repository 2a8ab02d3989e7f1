#!/usr/bin/env python3
"""rebuild.py - the spool a power failure would leave, from shim.c's shadow

  rebuild.py snapshot SPOOL SHADOW   record SPOOL as it is now as durable
                                     (the state before the run under test)
  rebuild.py rebuild SHADOW OUT      write the surviving tree to OUT

Directories hold only the entries of their last recorded fsync (or of the
snapshot); files only the content of theirs; a file never synced is empty.
"""
import fcntl
import os
import struct
import sys

FS_IOC_GETVERSION = 0x80087601  # _IOR('v', 1, long)


def ident(st, path):
    """dev-ino-generation: inode numbers alone are reused"""
    g = 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            g = struct.unpack("l", fcntl.ioctl(fd, FS_IOC_GETVERSION, b"\0" * 8))[0]
        finally:
            os.close(fd)
    except OSError:
        pass
    return "%d-%d-%d" % (st.st_dev, st.st_ino, g & 0xffffffffffffffff)


def snapshot(spool, shadow):
    for sub in ("dirs", "files"):
        os.makedirs(os.path.join(shadow, sub), exist_ok=True)
    root = os.stat(spool)
    with open(os.path.join(shadow, "root"), "w") as f:
        f.write(ident(root, spool))
    for dirpath, dirnames, filenames in os.walk(spool):
        st = os.stat(dirpath)
        lines = []
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            est = os.lstat(path)
            kind = "d" if os.path.isdir(path) else "f"
            lines.append("%s\t%s\t%s\n" % (name, ident(est, path), kind))
            if kind == "f":
                with open(path, "rb") as src, \
                        open(os.path.join(shadow, "files", ident(est, path)), "wb") as dst:
                    dst.write(src.read())
        with open(os.path.join(shadow, "dirs", ident(st, dirpath)), "w") as f:
            f.writelines(lines)


def rebuild(shadow, out):
    with open(os.path.join(shadow, "root")) as f:
        root = f.read().strip()

    def make(dirid, path):
        os.makedirs(path, exist_ok=True)
        listing = os.path.join(shadow, "dirs", dirid)
        if not os.path.exists(listing):
            return
        with open(listing) as f:
            for line in f:
                name, eid, kind = line.rstrip("\n").split("\t")
                p = os.path.join(path, name)
                if kind == "d":
                    make(eid, p)
                else:
                    content = os.path.join(shadow, "files", eid)
                    data = b""
                    if os.path.exists(content):
                        with open(content, "rb") as c:
                            data = c.read()
                    with open(p, "wb") as o:
                        o.write(data)

    make(root, out)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("snapshot", "rebuild"):
        sys.exit(__doc__)
    (snapshot if sys.argv[1] == "snapshot" else rebuild)(sys.argv[2], sys.argv[3])
