#!/usr/bin/python3
"""Drain test of drover's HTTP/2 (issue 19): HTTP/2 clients under reloads,
binary upgrades and worker recycling lose nothing.

8 client threads (2 of them over TLS with ALPN h2 if openssl is here, the
others h2c), each with its own connection (hand-built frames,
tests/http2/h2lib.py) keeping 10 streams in flight of small and medium files,
check every body byte for byte. Meanwhile the test runs 20 `droverctl reload`
and 3 `droverctl upgrade` (each returns once the new generation serves), and
[server] max_requests recycles the workers.

A client follows RFC 9113 section 6.8: after a GOAWAY it opens no new stream
on that connection; every stream at or below the GOAWAY's last-stream-id must
be answered in full; streams above it (and streams refused with
RST_STREAM(REFUSED_STREAM), which the server did not process) are retried on a
new connection, and counted. Anything else is a failure: a wrong status or
body, another stream reset, a connection closed before a stream at or below
its last id was answered, or closed with streams open and no GOAWAY, a refused
connect. It also checks that drover's drain starts with the graceful GOAWAY
(last-stream-id 2^31-1) before the real one.

The first half of the operations is paced (the next waits until the old
generation's worker has exited, so the HTTP/2 drain is checked alone), the
second half goes back to back (generations overlap up to max_generations,
an operation that would exceed it waiting for the oldest to drain);
failures are reported per half.

Last line: "N passed, N failed" over the checks. Env: DROVER_BIN,
DROVERCTL_BIN (defaults ./src/drover, ./src/droverctl).
"""
import os
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2lib import (  # noqa: E402
    NO_ERROR, REFUSED_STREAM, Closed, Conn, Drover, free_port)

N_CLIENTS = 8
IN_FLIGHT = 10
N_RELOADS = 20
N_UPGRADES = 3
UPGRADE_AFTER = (5, 12, 18)  # an upgrade after these reloads
MAX_REQUESTS = 500
CLOSE_WAIT = 10  # seconds a drained connection may stay open after its last stream
LOAD_DEADLINE = 80  # seconds: the clients stop by then whatever happens
GRACEFUL = 2**31 - 1


class Stats:
    def __init__(self):
        self.lock = threading.Condition()
        self.ok = 0
        self.retried_above_last_id = 0
        self.retried_refused = 0
        self.connections = 0
        self.goaway_conns = 0
        self.closed_by_server = 0
        self.graceful_first = 0
        self.failures = []
        self.not_graceful = []
        self.phase = "start"

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)
            self.lock.notify_all()

    def fail(self, msg):
        with self.lock:
            self.failures.append("[%s] %s" % (self.phase, msg))
            self.lock.notify_all()

    def wait_ok(self, target, timeout):
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.ok < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True


class Client(threading.Thread):
    def __init__(self, idx, port, files, stats, stop, tls=None):
        super().__init__(daemon=True)
        self.idx = idx
        self.port = port
        self.tls = tls  # (port, CA file): TLS with ALPN h2 instead of h2c
        self.files = files
        self.names = sorted(files)
        self.stats = stats
        self.stop = stop
        self.rng = random.Random(idx)
        self.active = None
        self.draining = []  # connections that got a GOAWAY, streams still owed
        self.inflight = {}  # conn -> {sid: path}
        self.pending = []  # paths to (re)send
        self.empty_since = {}  # drained connection -> when its last stream ended

    def connect(self):
        try:
            if self.tls:
                c = Conn(self.tls[0], tls=self.tls[1], authority="localhost:%d" % self.tls[0])
            else:
                c = Conn(self.port)
            c.handshake()
        except (OSError, Closed) as e:
            self.stats.fail("client %d%s: a new connection failed: %s" % (self.idx, " (TLS)" if self.tls else "", e))
            return None
        self.stats.add(connections=1)
        self.inflight[c] = {}
        return c

    def fill(self):
        c = self.active
        while len(self.inflight[c]) < IN_FLIGHT:
            if self.pending:
                path = self.pending.pop()
            elif self.stop.is_set():
                break
            else:
                path = "/" + self.rng.choice(self.names)
            sid = c.request("GET", path, send=False)
            self.inflight[c][sid] = path
        c.flush(10)

    def settle(self, c):
        """Verify what c finished; move what must be retried to pending."""
        owed = self.inflight[c]
        last = min((g[0] for g in c.goaways), default=None)
        for sid in list(owed):
            s = c.streams[sid]
            path = owed[sid]
            if s.ended and s.rst is None:
                want = self.files[path.lstrip("/")]
                if s.status == 200 and bytes(s.body) == want:
                    self.stats.add(ok=1)
                else:
                    self.stats.fail("client %d: GET %s (stream %d): status %s, %d bytes, identical %s" %
                                    (self.idx, path, sid, s.status, len(s.body), bytes(s.body) == want))
                del owed[sid]
            elif s.rst is not None:
                if s.rst == REFUSED_STREAM and s.status is None:
                    self.stats.add(retried_refused=1)
                    self.pending.append(path)
                else:
                    self.stats.fail("client %d: GET %s (stream %d): %s; %s" %
                                    (self.idx, path, sid, s.describe(), c.summary()))
                del owed[sid]
            elif last is not None and sid > last:
                # never processed (RFC 9113 6.8): retried on a new connection
                self.stats.add(retried_above_last_id=1)
                self.pending.append(path)
                del owed[sid]
            elif c.closed:
                self.stats.fail("client %d: connection closed before GET %s (stream %d) was answered: %s, %s" %
                                (self.idx, path, sid, s.describe(), c.summary()))
                del owed[sid]

    def on_goaway(self, c):
        if c.goaways[0][0] == GRACEFUL:
            self.stats.add(graceful_first=1)
        elif c.goaways[0][1] == NO_ERROR:
            self.stats.not_graceful.append("client %d: first GOAWAY %s" % (self.idx, c.goaway_desc()))
        if any(code != NO_ERROR for _, code, _ in c.goaways):
            self.stats.fail("client %d: GOAWAY with an error: %s" % (self.idx, c.summary()))
        self.stats.add(goaway_conns=1)

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001
            self.stats.fail("client %d crashed: %s\n%s" % (self.idx, e, traceback.format_exc()))
        finally:
            for c in list(self.inflight):
                c.close()

    def _run(self):
        deadline = time.monotonic() + LOAD_DEADLINE
        for _ in range(10**7):
            if time.monotonic() > deadline:
                owed = sum(len(v) for v in self.inflight.values()) + len(self.pending)
                if owed:
                    self.stats.fail("client %d: %d requests still owed at the deadline" % (self.idx, owed))
                return
            if self.active is None and (not self.stop.is_set() or self.pending):
                self.active = self.connect()
                if self.active is None:
                    return
            if self.active is not None:
                self.fill()
            conns = list(self.inflight)
            if not conns:
                if self.stop.is_set() and not self.pending:
                    return
                continue
            rl = [c.sock for c in conns if not c.closed]
            wl = [c.sock for c in conns if not c.closed and c.out]
            if rl or wl:
                select.select(rl, wl, [], 1.0)
            for c in conns:
                if not c.closed:
                    c.poll(0)
                had_goaway = c in self.draining
                if c.goaways and not had_goaway:
                    self.draining.append(c)
                    self.on_goaway(c)
                    if c is self.active:
                        self.active = None
                self.settle(c)
                if c.closed and c is self.active:
                    # closed without GOAWAY: settle() failed what it owed
                    self.active = None
                if (c.closed or c in self.draining) and not self.inflight[c]:
                    if not c.closed:
                        # drained: the server closes it once every stream
                        # at or below the last id is answered
                        since = self.empty_since.setdefault(c, time.monotonic())
                        if time.monotonic() - since < CLOSE_WAIT:
                            continue
                        self.stats.fail("client %d: the server did not close a drained connection in %ds "
                                        "after its last stream: %s" % (self.idx, CLOSE_WAIT, c.summary()))
                    else:
                        self.stats.add(closed_by_server=1)
                    c.close()
                    del self.inflight[c]
                    self.empty_since.pop(c, None)
                    if c in self.draining:
                        self.draining.remove(c)
            if self.stop.is_set() and not self.pending and self.active is not None \
                    and not self.inflight.get(self.active):
                self.active.close()
                del self.inflight[self.active]
                self.active = None


MAX_GENERATIONS = 4  # [server] max_generations, its default


def wait_old_generations_gone(d, timeout, keep=1):
    """Wait (on drover's log, as it is written) until at most keep
    generations have workers alive: each "started worker" line matched by
    its exit or kill line. keep=1: every older generation has drained."""
    started = re.compile(r"started worker pid (\d+) \(generation (\d+),")
    ended = re.compile(r"worker pid (\d+) \(generation \d+, #\d+\) (exited|killed)")
    deadline = time.monotonic() + timeout
    with d.cond:
        for _ in range(10**6):
            alive = {}
            for line in d.lines:
                if not line:
                    continue
                m = started.search(line)
                if m:
                    alive[m.group(1)] = int(m.group(2))
                m = ended.search(line)
                if m:
                    alive.pop(m.group(1), None)
            if len(set(alive.values())) <= keep:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            d.cond.wait(left)
    return False


def main():
    try:
        import h2  # noqa: F401
        import hpack  # noqa: F401
    except ImportError as e:
        print("SKIP: python3-h2 is not installed (%s)" % e)
        return 77
    ctl = os.environ.get("DROVERCTL_BIN") or "./src/droverctl"
    tmp = tempfile.mkdtemp(prefix="drover-h2drain.")
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    files = {}
    rng = random.Random(19)
    for i in range(12):
        files["s%02d.txt" % i] = bytes(rng.getrandbits(8) for _ in range(100 + 300 * i))
    for i in range(4):
        files["m%d.bin" % i] = os.urandom((64 + 64 * i) * 1024)
    files["l0.bin"] = os.urandom(2 * 1024 * 1024)  # a response that spans a drain
    for name, data in files.items():
        with open(os.path.join(www, name), "wb") as f:
            f.write(data)
    port = free_port()
    # two of the clients speak TLS (ALPN h2), if openssl can make a certificate
    tls = ""
    tls_client = None
    if shutil.which("openssl") and subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", tmp + "/key.pem",
             "-out", tmp + "/cert.pem"], capture_output=True, timeout=60).returncode == 0:
        tls_client = (free_port(), tmp + "/cert.pem")
        tls = """[listener tls]
address = 127.0.0.1:{p}
protocol = http
tls = yes
[certificate main]
certificate = {tmp}/cert.pem
private_key = {tmp}/key.pem
""".format(p=tls_client[0], tmp=tmp)
    ini = tls + """[server]
workers = 1
shutdown_timeout = 10s
control_socket = {tmp}/ctl.sock
max_requests = {mr}
max_requests_jitter = 0
[listener web]
address = 127.0.0.1:{port}
protocol = http
http2 = yes
[http]
root = {www}
header_timeout = 2s
send_timeout = 2s
keepalive_timeout = 5s
keepalive_requests = 100000
[http2]
max_concurrent_streams = 128
""".format(tmp=tmp, port=port, www=www, mr=MAX_REQUESTS)
    d = Drover(tmp, "drain", ini)
    checks = []

    def check(name, ok, detail=""):
        checks.append(ok)
        print("%s: %s%s" % ("PASS" if ok else "FAIL", name, "" if ok or not detail else "\n    " + detail))
        sys.stdout.flush()

    stats = Stats()
    stop = threading.Event()
    clients = []
    t0 = time.monotonic()
    try:
        if d.wait_line(r"ready: generation 1", 20) < 0:
            check("drover starts", False, d.log_tail())
            return 1
        clients = [Client(i, port, files, stats, stop, tls_client if i % 4 == 3 else None) for i in range(N_CLIENTS)]
        print("    %d clients, %d of them over TLS (ALPN h2)" % (N_CLIENTS, sum(1 for c in clients if c.tls)))
        for c in clients:
            c.start()
        check("load starts (200 requests answered)", stats.wait_ok(200, 20),
              "%d ok, failures %s" % (stats.ok, stats.failures[:3]))
        # recycling first: enough requests for the worker to reach
        # max_requests (a reload starts a fresh count)
        recycled = d.wait_line(r"reached max_requests", 30)
        stats.wait_ok(stats.ok + 200, 20)
        ops = []
        for i in range(1, N_RELOADS + 1):
            ops.append("reload")
            if i in UPGRADE_AFTER:
                ops.append("upgrade")
        op_failures = []
        undrained = []
        # The first half of the operations is paced: the next one waits
        # until the generation before has drained (its worker exited), so
        # HTTP/2's drain is tested alone. The second half goes back to back
        # as droverctl returns (once the new generation serves): old
        # generations overlap, up to [server] max_generations (4); an
        # operation that would make a fifth waits for a slot, because
        # past max_generations the supervisor ends the oldest drain early
        # by design (drover.ini(5)), which is not what is tested here.
        paced = (len(ops) + 1) // 2
        for n, op in enumerate(ops):
            with stats.lock:
                stats.phase = "paced" if n < paced else "overlapping"
            # some requests cross every operation: wait until 200 more are
            # answered (bounded), then ask for the next one
            stats.wait_ok(stats.ok + 200, 20)
            if n >= paced and not wait_old_generations_gone(d, 30, keep=MAX_GENERATIONS - 1):
                undrained.append("%s #%d (no generation slot)" % (op, n + 1))
            r = subprocess.run([ctl, "-c", d.ini, op], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                op_failures.append("%s #%d exited %d: %s%s" % (op, n + 1, r.returncode, r.stdout, r.stderr))
            if n < paced and not wait_old_generations_gone(d, 20):
                undrained.append("%s #%d" % (op, n + 1))
        check("%d reloads and %d upgrades all succeed (droverctl exit 0)" % (N_RELOADS, N_UPGRADES),
              not op_failures, "; ".join(op_failures))
        check("paced operations: each old generation drained (its workers exited) within 20 s",
              not undrained, "still draining after: %s\n%s" % (", ".join(undrained), d.log_tail(20)))
        stats.wait_ok(stats.ok + 300, 20)
        stop.set()
        for c in clients:
            c.join(LOAD_DEADLINE + 10)
        check("clients finished", not any(c.is_alive() for c in clients))
        recycles = sum(1 for line in d.lines if line and "reached max_requests" in line)
        upgrades = sum(1 for line in d.lines if line and "binary upgrade: adopted generation" in line)
        st = subprocess.run([ctl, "-c", d.ini, "status"], capture_output=True, text=True, timeout=30)
        gen_line = st.stdout.splitlines()[0] if st.stdout else st.stderr
        print("    requests answered %d; retried: %d above a GOAWAY's last-stream-id, %d refused (REFUSED_STREAM); "
              "connections %d, %d of them drained by GOAWAY (%d starting with last-stream-id 2^31-1, %d then closed "
              "by the server); "
              "workers recycled by max_requests %d; upgrades adopted %d; %s; %.0fs"
              % (stats.ok, stats.retried_above_last_id, stats.retried_refused, stats.connections,
                 stats.goaway_conns, stats.graceful_first, stats.closed_by_server, recycles, upgrades, gen_line,
                 time.monotonic() - t0))
        # a worker SIGKILLed by the supervisor takes its connections with it
        kills = [line.strip() for line in d.lines if line and ("killed" in line or "exited with status" in line
                                                              and "status 0" not in line)]
        for phase, what in (("paced", "each old generation drained before the next operation"),
                            ("overlapping", "operations back to back, generations overlapping")):
            fails = [f for f in stats.failures if f.startswith("[%s]" % phase)]
            check("0 failed requests, %s" % what, not fails,
                  "%d failures:\n    %s\n    drover's log, workers killed or failed during the run (%d):\n    %s"
                  % (len(fails), "\n    ".join(fails[:20]), len(kills), "\n    ".join(kills[:10])))
        rest = [f for f in stats.failures if not f.startswith("[paced]") and not f.startswith("[overlapping]")]
        check("0 failed requests outside the operations (%d answered in all)" % stats.ok, not rest and stats.ok > 0,
              "%d failures:\n    %s" % (len(rest), "\n    ".join(rest[:20])))
        check("drained connections got the graceful GOAWAY (2^31-1) first",
              stats.goaway_conns > 0 and not stats.not_graceful,
              "%d connections drained, first GOAWAY not 2^31-1 on: %s" % (stats.goaway_conns, stats.not_graceful[:5]))
        check("workers were recycled by max_requests = %d" % MAX_REQUESTS, recycles > 0 and recycled >= 0,
              "no 'reached max_requests' line in the log after %d requests" % stats.ok)
        check("drover alive after the load", d.alive(), d.log_tail())
    finally:
        stop.set()
        rc = d.stop()
        if os.environ.get("H2TEST_KEEP"):
            print("    kept %s (drover's log: %s)" % (tmp, d.logpath))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    check("graceful stop exits 0", rc == 0, "exit %s" % rc)
    failed = sum(1 for c in checks if not c)
    print("%d passed, %d failed" % (len(checks) - failed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
