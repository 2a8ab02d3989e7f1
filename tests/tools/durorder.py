#!/usr/bin/env python3
"""durorder - check the order of writes, syncs and renames in an strace log
against the promises of mq-spool(5) DURABILITY.

    durorder.py [--expect WHAT]... LOG SCOPE

LOG is written by `strace -f -y -o LOG -e trace=openat,write,pwrite64,
fsync,fdatasync,rename,renameat,renameat2,ftruncate,mkdir,mkdirat,
io_uring_enter PROGRAM...` (-y: file descriptors carry their paths).
Only files and directories under SCOPE (the directory that holds the
spool) are looked at.  The rules, each a promise of mq-spool(5):

  data     every write or ftruncate of a segment (*.log), an offset file
           (*.offset), a config or an id file is followed by fsync or
           fdatasync of that file before the log ends (the program
           exits); index and lock files are hints and exempt
  entries  every directory made (mkdir) is followed by fsync of its
           parent; so is every segment created (openat O_CREAT of *.log)
           and every rename into a directory
  replace  a file renamed into place was synced after its last write
  publish  when a staging directory is renamed into topics/, nothing
           under it has an unsynced write or entry
  roll     when a segment is created, no other segment of the partition
           has an unsynced write (the END batch is durable first)
  id       when an id file is renamed into ids/, no segment has an
           unsynced write (the messages are durable first)

--expect makes sure the log shows what the test meant to exercise:
publish (a topic was created), roll (a segment was created after a write
to an older one), offset (an offset file was written), id (an id file
was renamed into ids/), datasync (a segment was fdatasync'd).
Prints one line per broken promise and exits 1 when there is any.
"""

import os
import re
import sys

FD = r'(AT_FDCWD|-?\d+)(?:<((?:[^>\\]|\\.)*)>)?'
STR = r'"((?:[^"\\]|\\.)*)"'
CALL = re.compile(r'^(\d+)\s+([a-z0-9_]+)\((.*)\)\s+=\s+(-?\d+)'
                  r'(?:<((?:[^>\\]|\\.)*)>)?')


def unescape(s):
    return s.encode().decode('unicode_escape').encode('latin-1').decode(
        'utf-8', 'replace')


def join(dirpath, name):
    if name.startswith('/') or dirpath is None:
        return os.path.normpath(name)
    return os.path.normpath(os.path.join(dirpath, name))


def merge(lines):
    """join '<unfinished ...>' and '<... resumed>' halves by pid"""
    pending = {}
    for ln in lines:
        ln = ln.rstrip('\n')
        m = re.match(r'^(\d+)\s+(.*)$', ln)
        if not m:
            continue
        pid, rest = m.group(1), m.group(2)
        if rest.endswith('<unfinished ...>'):
            pending[pid] = rest[:-len('<unfinished ...>')].rstrip()
            continue
        r = re.match(r'^<\.\.\. [a-z0-9_]+ resumed>\s?(.*)$', rest)
        if r:
            rest = pending.pop(pid, '') + r.group(1)
        yield pid + ' ' + rest


def kind(path):
    b = os.path.basename(path)
    if b.endswith('.index') or b == 'lock' or b.endswith('.lock') or \
            b.startswith('member.'):
        return 'hint'
    if b.endswith('.log'):
        return 'log'
    if b.endswith('.offset'):
        return 'offset'
    return 'file'


class Checker:
    def __init__(self, scope):
        self.scope = os.path.normpath(scope)
        self.data = {}		# path -> line of its first unsynced write
        self.ents = {}		# dir -> (line, what) of first unsynced entry
        self.isdir = set()
        self.bad = []
        self.seen = set()
        self.written_logs = set()

    def inside(self, p):
        return p is not None and (p == self.scope or
                                  p.startswith(self.scope + '/'))

    def fail(self, n, rule, msg):
        self.bad.append('line %d: %s: %s' % (n, rule, msg))

    def entry(self, n, path, what):
        d = os.path.dirname(path)
        if self.inside(d) and d not in self.ents:
            self.ents[d] = (n, what)

    def event(self, n, name, args, ret, retpath):
        if int(ret) < 0:
            return
        if name in ('openat', 'open'):
            m = re.match(FD + r',\s*' + STR + r',\s*([A-Z_|]+)', args)
            if not m:
                return
            path = retpath or join(m.group(2), unescape(m.group(3)))
            flags = m.group(4)
            if 'O_DIRECTORY' in flags:
                self.isdir.add(path)
            if not self.inside(path) or 'O_CREAT' not in flags:
                return
            if kind(path) == 'log':
                d = os.path.dirname(path)
                for p, at in self.data.items():
                    if kind(p) == 'log' and os.path.dirname(p) == d and \
                            p != path:
                        self.fail(n, 'roll', '%s created while a write to '
                                  '%s (line %d) is not synced' %
                                  (path, p, at))
                        if p in self.written_logs:
                            self.seen.add('roll')
                for p in self.written_logs:
                    if os.path.dirname(p) == d and p != path:
                        self.seen.add('roll')
                self.entry(n, path, 'segment ' + path + ' created')
        elif name in ('mkdir', 'mkdirat'):
            if name == 'mkdir':
                m = re.match(STR, args)
                path = join(None, unescape(m.group(1)))
            else:
                m = re.match(FD + r',\s*' + STR, args)
                path = join(m.group(2), unescape(m.group(3)))
            self.isdir.add(path)
            self.entry(n, path, 'directory ' + path + ' made')
        elif name in ('write', 'pwrite64', 'ftruncate'):
            m = re.match(FD, args)
            path = m.group(2)
            if not self.inside(path) or path in self.isdir:
                return
            if kind(path) == 'hint':
                return
            if kind(path) == 'log':
                self.written_logs.add(path)
            if kind(path) == 'offset':
                self.seen.add('offset')
            self.data.setdefault(path, n)
        elif name in ('fsync', 'fdatasync'):
            m = re.match(FD, args)
            path = m.group(2)
            if path is None:
                return
            if name == 'fdatasync' and kind(path) == 'log':
                self.seen.add('datasync')
            self.data.pop(path, None)
            self.ents.pop(path, None)
        elif name in ('rename', 'renameat', 'renameat2'):
            if name == 'rename':
                m = re.match(STR + r',\s*' + STR, args)
                src = join(None, unescape(m.group(1)))
                dst = join(None, unescape(m.group(2)))
            else:
                m = re.match(FD + r',\s*' + STR + r',\s*' + FD + r',\s*' +
                             STR, args)
                src = join(m.group(2), unescape(m.group(3)))
                dst = join(m.group(5), unescape(m.group(6)))
            if not self.inside(dst):
                return
            if src in self.data:
                self.fail(n, 'replace', '%s renamed to %s before its '
                          'write (line %d) is synced' %
                          (src, dst, self.data[src]))
            under = src + '/'
            for p, at in self.data.items():
                if p.startswith(under):
                    self.fail(n, 'publish', '%s renamed to %s while a write '
                              'to %s (line %d) is not synced' %
                              (src, dst, p, at))
            for d, (at, what) in self.ents.items():
                if d == src or d.startswith(under):
                    self.fail(n, 'publish', '%s renamed to %s while %s '
                              '(line %d) is not synced' % (src, dst, what, at))
            if os.path.basename(os.path.dirname(dst)) == 'topics':
                self.seen.add('publish')
            if os.path.basename(os.path.dirname(dst)) == 'ids':
                self.seen.add('id')
                for p, at in self.data.items():
                    if kind(p) == 'log':
                        self.fail(n, 'id', '%s renamed into ids/ while a '
                                  'write to %s (line %d) is not synced' %
                                  (src, p, at))
            # what was under src is now under dst
            for tbl in (self.data, self.ents):
                for p in [p for p in tbl if p == src or p.startswith(under)]:
                    tbl[dst + p[len(src):]] = tbl.pop(p)
            self.entry(n, dst, '%s renamed to %s' % (src, dst))

    def finish(self, n):
        for p, at in sorted(self.data.items()):
            self.fail(n, 'data', 'write to %s (line %d) never synced' %
                      (p, at))
        for d, (at, what) in sorted(self.ents.items()):
            self.fail(n, 'entries', '%s (line %d), but %s never synced' %
                      (what, at, d))


def main(argv):
    expect = []
    args = argv[1:]
    while len(args) >= 2 and args[0] == '--expect':
        expect.append(args[1])
        args = args[2:]
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 64
    log, scope = args
    c = Checker(scope)
    n = 0
    with open(log, errors='replace') as f:
        for n, ln in enumerate(merge(f), 1):
            m = CALL.match(ln)
            if m:
                c.event(n, m.group(2), m.group(3), m.group(4), m.group(5))
    c.finish(n)
    for e in expect:
        if e not in c.seen:
            c.bad.append('expected %s in the log: not seen' % e)
    for b in c.bad:
        print(b)
    return 1 if c.bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
