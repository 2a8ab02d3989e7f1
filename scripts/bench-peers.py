#!/usr/bin/python3
# scripts/bench-peers.py - the clients scripts/bench-peers.sh times against
# Redis Streams, NATS JetStream, beanstalkd and SQLite (no library: Debian
# packages no NATS or beanstalkd client for Python, so each protocol is
# spoken over a plain socket, pipelined in windows).
#
# Usage: bench-peers.py PEER ACTION ARGS...  (see main() at the bottom)
#   produce reads 100-byte lines from stdin and stores each line without
#   its newline as one message; consume writes N messages to stdout, one a
#   line.  Exit status 1 with a message on stderr when the peer refused a
#   message or returned fewer than asked for.
#
# The fast paths assume what the bench feeds them: payloads without CR or
# LF.  bench-peers.sh compares what consume printed with the input.

import json
import os
import select
import socket
import sqlite3
import sys

WINDOW = 20000     # messages in flight on a pipelined connection
BATCH = 10000      # messages a read (XREAD COUNT, pull batch, reserves)


def die(msg):
    sys.stderr.write("bench-peers.py: %s\n" % msg)
    sys.exit(1)


def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Lines:
    """Reads whole CRLF-terminated lines from a socket, counted."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read(self, n):
        """Return the next n lines (without CRLF) as a list."""
        chunks = [self.buf]
        have = self.buf.count(b"\r\n")
        last = self.buf[-1:]
        while have < n:
            c = self.sock.recv(1 << 20)
            if not c:
                die("connection closed by the server")
            have += c.count(b"\r\n")
            if last == b"\r" and c[:1] == b"\n":
                have += 1
            last = c[-1:]
            chunks.append(c)
        data = b"".join(chunks)
        parts = data.split(b"\r\n", n)
        self.buf = parts[n] if len(parts) > n else b""
        return parts[:n]

    def poll(self):
        """Lines complete now, without blocking (for pipelined acks)."""
        got = []
        while select.select([self.sock], [], [], 0)[0]:
            c = self.sock.recv(1 << 20)
            if not c:
                die("connection closed by the server")
            self.buf += c
        if b"\r\n" in self.buf:
            parts = self.buf.split(b"\r\n")
            self.buf = parts.pop()
            got = parts
        return got


def pipelined(sock, lines, frames, lines_per_reply, check):
    """Send frames (a list of bytes, one a message) with at most WINDOW
    unanswered; check(list of reply lines) raises on a refusal."""
    n = len(frames)
    sent = done = 0
    pending = []
    while done < n:
        if sent < n and sent - done < WINDOW:
            k = min(n - sent, WINDOW - (sent - done), 1000)
            sock.sendall(b"".join(frames[sent:sent + k]))
            sent += k
            pending += lines.poll()
        else:
            want = lines_per_reply * min(1000, sent - done)
            pending += lines.read(max(0, want - len(pending)))
        r = len(pending) // lines_per_reply
        if r:
            check(pending[:r * lines_per_reply])
            del pending[:r * lines_per_reply]
            done += r


def read_input():
    data = sys.stdin.buffer.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    return data.split(b"\n") if data else []


def out(payloads):
    if payloads:
        sys.stdout.buffer.write(b"\n".join(payloads) + b"\n")


# --- Redis Streams (RESP2) ----------------------------------------------------

def resp(*args):
    a = [b"*%d\r\n" % len(args)]
    for x in args:
        if isinstance(x, str):
            x = x.encode()
        a.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(a)


def redis_resp(stream):
    """stdin lines -> XADD commands in RESP on stdout, for redis-cli --pipe."""
    head = resp("XADD", stream, "*", "d", "")[:-4]  # up to "$0"
    head = head[:head.rfind(b"$")]
    w = sys.stdout.buffer
    for p in read_input():
        w.write(head + b"$%d\r\n%s\r\n" % (len(p), p))


def redis_consume(port, stream, n, group):
    """XREAD (or XREADGROUP with an XACK of every batch) until n entries."""
    s = connect(port)
    ln = Lines(s)
    last = b"0"
    left = n
    while left > 0:
        k = min(BATCH, left)
        if group:
            s.sendall(resp("XREADGROUP", "GROUP", group, "c", "COUNT",
                           str(k), "STREAMS", stream, ">"))
        else:
            s.sendall(resp("XREAD", "COUNT", str(k), "STREAMS", stream, last))
        h = ln.read(5)  # *1 *2 $len name *K
        if not h[0].startswith(b"*1") or not h[4].startswith(b"*"):
            die("redis: unexpected reply %r" % h[0])
        got = int(h[4][1:])
        if got == 0:
            die("redis: %d entries short" % left)
        # an entry: *2 $len id *2 $1 d $len payload
        body = ln.read(8 * got)
        ids = body[2::8]
        out(body[7::8])
        last = ids[-1]
        if group:
            s.sendall(resp("XACK", stream, group, *ids))
            r = ln.read(1)[0]
            if r != b":%d" % got:
                die("redis: XACK answered %r" % r)
        left -= got


# --- NATS JetStream -----------------------------------------------------------

def nats_open(port):
    s = connect(port)
    ln = Lines(s)
    info = ln.read(1)[0]
    if not info.startswith(b"INFO"):
        die("nats: no INFO from the server")
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n'
              b"SUB _i.> 1\r\nPING\r\n")
    if ln.read(1)[0] != b"PONG":
        die("nats: no PONG")
    return s, ln


def nats_request(s, ln, subj, body, missing_ok=False):
    body = json.dumps(body).encode() if body is not None else b""
    s.sendall(b"PUB %s _i.r %d\r\n%s\r\n" % (subj.encode(), len(body), body))
    h, p = ln.read(2)
    if not h.startswith(b"MSG"):
        die("nats: %r" % h)
    r = json.loads(p)
    if "error" in r and not (missing_ok and r["error"].get("code") == 404):
        die("nats: %s: %s" % (subj, r["error"]))
    return r


def nats_setup(port, stream):
    """A file-store stream taking stream.>, emptied (created if absent)."""
    s, ln = nats_open(port)
    s.sendall(b"PUB $JS.API.STREAM.INFO.%s _i.r 0\r\n\r\n" % stream.encode())
    h, p = ln.read(2)
    if "error" in json.loads(p):
        nats_request(s, ln, "$JS.API.STREAM.CREATE." + stream,
                     {"name": stream, "subjects": [stream + ".>"],
                      "storage": "file", "retention": "limits",
                      "discard": "old", "num_replicas": 1})
    else:
        nats_request(s, ln, "$JS.API.STREAM.PURGE." + stream, None)


def nats_produce(port, stream):
    """PUB with a reply subject: the JetStream ack says it was stored.
    At most WINDOW unacknowledged; other protocol lines (PING, INFO) are
    answered or passed over."""
    s, ln = nats_open(port)
    subj = b"PUB %s.x _i.a " % stream.encode()
    frames = [subj + b"%d\r\n%s\r\n" % (len(p), p) for p in read_input()]
    n = len(frames)
    sent = acked = 0
    pending = []
    while acked < n:
        if sent < n and sent - acked < WINDOW:
            k = min(n - sent, WINDOW - (sent - acked), 1000)
            s.sendall(b"".join(frames[sent:sent + k]))
            sent += k
            pending += ln.poll()
        else:
            pending += ln.read(1)
        i = 0
        while i < len(pending):
            h = pending[i]
            if h.startswith(b"MSG"):
                if i + 1 >= len(pending):
                    break
                p = pending[i + 1]
                if not p.startswith(b'{"stream"'):
                    die("nats: publish refused: %r" % p)
                acked += 1
                i += 2
                continue
            if h == b"PING":
                s.sendall(b"PONG\r\n")
            elif h.startswith(b"-ERR"):
                die("nats: %r" % h)
            elif h and not h.startswith((b"INFO", b"+OK", b"PONG")):
                die("nats: unexpected %r" % h[:80])
            i += 1
        del pending[:i]


def nats_consume(port, stream, n, ack):
    """A pull consumer (ack none, or ack all acked per batch) from the
    first message, batches of BATCH."""
    s, ln = nats_open(port)
    st = stream
    nats_request(s, ln, "$JS.API.CONSUMER.DELETE.%s.C" % st, None, True)
    nats_request(s, ln, "$JS.API.CONSUMER.DURABLE.CREATE.%s.C" % st,
                 {"stream_name": st,
                  "config": {"durable_name": "C", "deliver_policy": "all",
                             "ack_policy": ack, "max_ack_pending": -1
                             if ack == "none" else 2 * BATCH}})
    left = n
    nxt = b"$JS.API.CONSUMER.MSG.NEXT.%s.C" % st.encode()
    while left > 0:
        k = min(BATCH, left)
        req = json.dumps({"batch": k, "no_wait": True}).encode()
        s.sendall(b"PUB %s _i.m %d\r\n%s\r\n" % (nxt, len(req), req))
        body = ln.read(2 * k)
        heads = body[0::2]
        if not heads[-1].startswith(b"MSG"):
            die("nats: pull answered %r" % heads[-1])
        out(body[1::2])
        if ack != "none":
            rep = heads[-1].split(b" ")[3]
            s.sendall(b"PUB %s 0\r\n\r\n" % rep)
        left -= k
    # a PING round trip: the last ack reached the server
    s.sendall(b"PING\r\n")
    if ln.read(1)[0] != b"PONG":
        die("nats: no PONG")


# --- beanstalkd ---------------------------------------------------------------

def bs_produce(port):
    s = connect(port)
    ln = Lines(s)
    frames = [b"put 0 0 600 %d\r\n%s\r\n" % (len(p), p) for p in read_input()]

    def check(rs):
        for r in rs:
            if not r.startswith(b"INSERTED"):
                die("beanstalkd: put answered %r" % r)
    pipelined(s, ln, frames, 1, check)


def bs_consume(port, n):
    """reserve-with-timeout 0 and delete, BATCH at a time, pipelined: the
    deletes of one batch go with the reserves of the next."""
    s = connect(port)
    ln = Lines(s)
    left = n
    dels = b""
    ndel = 0
    while left > 0 or ndel:
        k = min(BATCH, left)
        s.sendall(dels + b"reserve-with-timeout 0\r\n" * k)
        for r in ln.read(ndel):
            if r != b"DELETED":
                die("beanstalkd: delete answered %r" % r)
        if k == 0:
            break
        body = ln.read(2 * k)
        heads = body[0::2]
        for h in (heads[0], heads[-1]):
            if not h.startswith(b"RESERVED"):
                die("beanstalkd: reserve answered %r" % h)
        out(body[1::2])
        dels = b"".join(b"delete %s\r\n" % h.split(b" ")[1] for h in heads)
        ndel = k
        left -= k


# --- SQLite -------------------------------------------------------------------

def sql_open(db, sync):
    c = sqlite3.connect(db, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=" + sync)
    c.execute("CREATE TABLE IF NOT EXISTS q (id INTEGER PRIMARY KEY, body BLOB)")
    c.execute("CREATE TABLE IF NOT EXISTS cursor (name TEXT PRIMARY KEY, id INTEGER)")
    return c


def sql_produce(db, sync):
    """INSERTs in transactions of BATCH rows."""
    c = sql_open(db, sync)
    ps = read_input()
    for i in range(0, len(ps), BATCH):
        c.execute("BEGIN")
        c.executemany("INSERT INTO q (body) VALUES (?)",
                      ((p,) for p in ps[i:i + BATCH]))
        c.execute("COMMIT")
    c.close()


def sql_consume(db, sync, n, group):
    """SELECT in id order, BATCH rows a query; with a group name the last
    id read is committed to the cursor table with every batch."""
    c = sql_open(db, sync)
    last = 0
    if group:
        c.execute("DELETE FROM cursor WHERE name = ?", (group,))
    left = n
    while left > 0:
        rows = c.execute("SELECT id, body FROM q WHERE id > ? ORDER BY id "
                         "LIMIT ?", (last, min(BATCH, left))).fetchall()
        if not rows:
            die("sqlite: %d rows short" % left)
        out([r[1] for r in rows])
        last = rows[-1][0]
        if group:
            c.execute("INSERT OR REPLACE INTO cursor VALUES (?, ?)",
                      (group, last))
        left -= len(rows)
    c.close()


def sql_count(db):
    c = sqlite3.connect(db)
    print(c.execute("SELECT count(*) FROM q").fetchone()[0])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def wait_port(port):
    import time
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", int(port))).close()
            return
        except OSError:
            time.sleep(0.01)
    die("nothing listens on port %s after 5 s" % port)


# --- end-to-end latency ---------------------------------------------------------

def latency(kind, args, k, rate):
    """k messages at rate a second, each stamped with its send time; a
    consumer started first prints p50 and p99 of receive - send in µs."""
    import subprocess
    import threading
    import time
    got = []
    ready = threading.Event()
    done = threading.Event()
    pad = b"." * 80

    def stamp(p):
        return float(p.split(b" ", 1)[0])

    def record(p):
        got.append(time.time() - stamp(p))
        if len(got) >= k:
            done.set()

    if kind == "mq":
        send, recv, topic = args[0], args[1], args[2]
        sync = args[3:]
        rp = subprocess.Popen([recv, "-f", topic], stdout=subprocess.PIPE)
        sp = subprocess.Popen([send] + sync + [topic], stdin=subprocess.PIPE)

        def consume():
            ready.set()
            for line in rp.stdout:
                record(line)
                if done.is_set():
                    break

        def publish(p):
            sp.stdin.write(p + b"\n")
            sp.stdin.flush()
    elif kind == "redis":
        port = args[0]
        c = connect(port)
        cl = Lines(c)
        pr = connect(port)
        pl = Lines(pr)

        def consume():
            last = b"$"
            ready.set()
            while not done.is_set():
                c.sendall(resp("XREAD", "BLOCK", "0", "COUNT", "100",
                               "STREAMS", "lat", last))
                h = cl.read(5)
                m = int(h[4][1:])
                body = cl.read(8 * m)
                for p in body[7::8]:
                    record(p)
                last = body[2::8][-1]

        def publish(p):
            pr.sendall(resp("XADD", "lat", "*", "d", p))
            pl.read(2)
    elif kind == "nats":
        port = args[0]
        nats_setup(port, "L")
        c, cl = nats_open(port)
        nats_request(c, cl, "$JS.API.CONSUMER.CREATE.L",
                     {"stream_name": "L",
                      "config": {"deliver_subject": "_d.x",
                                 "deliver_policy": "new",
                                 "ack_policy": "none"}})
        c.sendall(b"SUB _d.x 2\r\n")
        pr, pl = nats_open(port)

        def consume():
            ready.set()
            while not done.is_set():
                h, p = cl.read(2)
                if h.startswith(b"MSG") and h.split(b" ")[2] == b"2":
                    record(p)

        def publish(p):
            pr.sendall(b"PUB L.x _i.a %d\r\n%s\r\n" % (len(p), p))
            pl.read(2)
    elif kind == "bs":
        port = args[0]
        c = connect(port)
        cl = Lines(c)
        pr = connect(port)
        pl = Lines(pr)
        c.sendall(b"watch lat\r\nignore default\r\n")
        pr.sendall(b"use lat\r\n")
        if cl.read(2)[1] != b"WATCHING 1" or pl.read(1)[0] != b"USING lat":
            die("beanstalkd: cannot use tube lat")

        def consume():
            ready.set()
            while not done.is_set():
                c.sendall(b"reserve\r\n")
                h, p = cl.read(2)
                record(p)
                c.sendall(b"delete %s\r\n" % h.split(b" ")[1])
                cl.read(1)

        def publish(p):
            pr.sendall(b"put 0 0 600 %d\r\n%s\r\n" % (len(p), p))
            pl.read(1)
    else:
        die("latency: no such kind " + kind)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    ready.wait()
    try:
        time.sleep(0.5)
        t0 = time.time()
        for i in range(k):
            due = t0 + i / rate
            d = due - time.time()
            if d > 0:
                time.sleep(d)
            publish(b"%.6f %s" % (time.time(), pad))
        if not done.wait(10):
            die("latency: %d of %d messages arrived" % (len(got), k))
    finally:
        if kind == "mq":
            sp.stdin.close()
            if sp.wait() != 0:
                die("latency: mq-send exited %d" % sp.returncode)
            rp.kill()
            rp.wait()
    got.sort()
    print("%.0f %.0f" % (got[len(got) // 2] * 1e6,
                         got[min(len(got) - 1, len(got) * 99 // 100)] * 1e6))


def main():
    a = sys.argv[1:]
    cmds = {
        ("port", "free"): lambda: free_port(),
        ("latency", "run"): lambda: latency(a[2], a[5:], int(a[3]), float(a[4])),
        ("port", "wait"): lambda: wait_port(a[2]),
        ("redis", "resp"): lambda: redis_resp(a[2]),
        ("redis", "consume"): lambda: redis_consume(a[2], a[3], int(a[4]),
                                                    a[5] if len(a) > 5 else None),
        ("nats", "setup"): lambda: nats_setup(a[2], a[3]),
        ("nats", "produce"): lambda: nats_produce(a[2], a[3]),
        ("nats", "consume"): lambda: nats_consume(a[2], a[3], int(a[4]), a[5]),
        ("bs", "produce"): lambda: bs_produce(a[2]),
        ("bs", "consume"): lambda: bs_consume(a[2], int(a[3])),
        ("sqlite", "produce"): lambda: sql_produce(a[2], a[3]),
        ("sqlite", "consume"): lambda: sql_consume(a[2], a[3], int(a[4]),
                                                   a[5] if len(a) > 5 else None),
        ("sqlite", "count"): lambda: sql_count(a[2]),
        ("sqlite", "init"): lambda: sql_open(a[2], "FULL").close(),
    }
    f = cmds.get(tuple(a[:2]))
    if f is None:
        die("usage: bench-peers.py PEER ACTION ARGS... (see the source)")
    f()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
