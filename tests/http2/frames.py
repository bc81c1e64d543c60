#!/usr/bin/python3
"""Frame-level HTTP/2 tests of drover (issue 19), over h2c with prior
knowledge on a plain listener with http2 = yes.

  semantics    GET/HEAD, 404, 301, 405 + allow, 304, Range 206, multipart/
               byteranges, 416, the health path, 1 MiB byte for byte
  malformed    RFC 9113 section 8: each request must get a stream error
               (RST_STREAM(PROTOCOL_ERROR) or a 400), and a valid GET on the
               same connection must still get 200
  attacks      rapid reset, CONTINUATION flood, HPACK bomb, PING / SETTINGS /
               empty-frame floods, zero window, 1-byte window updates: the
               attacking connection is closed (GOAWAY as the case says) or
               held, a second client on another connection gets 200 while the
               attack is under way, the worker is the same process afterwards
               and its peak RSS grew by less than 64 MiB
  limits       a stream never finished (header_timeout), max_concurrent_streams,
               keepalive_requests, keepalive_timeout, a graceful stop, and
               bursts a busy browser makes that must not count as floods
  tls_*        the same cases again over TLS with ALPN h2 (drover's TLS
               transport buffers and blocks on its own), if openssl is here

Each case prints PASS: or FAIL: with what was sent, what came back and what
was expected; the last line is "N passed, N failed". Cases can be chosen by
name: frames.py rapid_reset malformed_uppercase_name ...

Env: DROVER_BIN (default ./src/drover). H2TEST_SERVER=nghttpd runs the cases
against nghttpd (Debian's nghttp2-server) instead, to check the client side;
only the frame-level behaviour is comparable there.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2lib import (  # noqa: E402
    CANCEL, CONTINUATION, END_HEADERS, END_STREAM, ENHANCE_YOUR_CALM, HEADERS,
    NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE, SETTINGS_NO_RFC7540_PRIORITIES, Conn, Drover, data_frame, err_name, frame,
    free_port, h2_get, ping_frame, proc_kib, reset_peak, rst_frame, settings_frame,
    window_update_frame)

MIB = 1024 * 1024
RSS_BOUND_KIB = 64 * 1024


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


# ---------------------------------------------------------------- servers
def drover_ini(port, www, keepalive_requests=1000, tls_port=None, cert_dir=None):
    tls = "" if not tls_port else """[listener tls]
address = 127.0.0.1:{tls_port}
protocol = http
tls = yes
[certificate main]
certificate = {d}/cert.pem
private_key = {d}/key.pem
""".format(tls_port=tls_port, d=cert_dir)
    return tls + """[server]
workers = 1
shutdown_timeout = 10s
control_socket = off
[listener web]
address = 127.0.0.1:{port}
protocol = http
http2 = yes
[http]
root = {www}
header_timeout = 2s
send_timeout = 2s
keepalive_timeout = 5s
keepalive_requests = {kr}
max_header_size = 8192
[http2]
max_concurrent_streams = 128
initial_window_size = 65535
max_header_list_size = 8192
""".format(port=port, www=www, kr=keepalive_requests)


class DroverServer:
    kind = "drover"

    def __init__(self, tmp, www, name, keepalive_requests=1000, tls=False):
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.d = Drover(tmp, name, drover_ini(self.port, www, keepalive_requests, self.tls_port, tmp))
        if self.d.wait_line(r"ready: generation 1", 20) < 0:
            log = self.d.log_tail()
            self.d.stop()
            raise Failure("drover did not start:\n" + log)

    def alive(self):
        return self.d.alive()

    def worker(self):
        w = self.d.workers()
        return w[0] if len(w) == 1 else None

    def log_tail(self):
        return self.d.log_tail(15)

    def stop(self):
        return self.d.stop()


class NghttpdServer:
    """Development only: the same client code against nghttpd."""
    kind = "nghttpd"

    def __init__(self, tmp, www, name, keepalive_requests=1000, tls=False):
        self.port = free_port()
        self.tls_port = None
        self.proc = subprocess.Popen(["nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", www,
                                      "-m", "128", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):  # dev mode: nghttpd says nothing when it listens
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise Failure("nghttpd did not start")

    def alive(self):
        return self.proc.poll() is None

    def worker(self):
        return self.proc.pid

    def log_tail(self):
        return ""

    def stop(self):
        self.proc.terminate()
        return self.proc.wait()


# ---------------------------------------------------------------- fixture
class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="drover-h2frames.")
        self.www = os.path.join(self.tmp, "www")
        os.makedirs(os.path.join(self.www, "dir"))
        self.files = {}
        self.put("small.txt", b"hello from drover over h2\n")
        self.put("medium.bin", os.urandom(64 * 1024))
        self.put("big.bin", os.urandom(MIB))
        self.put("dir/index.html", b"<html><body>dir index</body></html>\n")
        # 32 MiB for the zero-window case; its bytes are never compared
        with open(os.path.join(self.www, "huge.bin"), "wb") as f:
            for _ in range(32):
                f.write(os.urandom(MIB))
        cls = NghttpdServer if os.environ.get("H2TEST_SERVER") == "nghttpd" else DroverServer
        self.server_class = cls
        # a certificate for the TLS listener (ALPN h2), if openssl is here
        self.cert = None
        if cls is DroverServer and shutil.which("openssl"):
            r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                                "subjectAltName=DNS:localhost", "-keyout", os.path.join(self.tmp, "key.pem"),
                                "-out", os.path.join(self.tmp, "cert.pem")], capture_output=True, timeout=60)
            if r.returncode == 0:
                self.cert = os.path.join(self.tmp, "cert.pem")
        try:
            self.srv = cls(self.tmp, self.www, "main", tls=self.cert is not None)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.port = self.srv.port
        self.kind = cls.kind
        self.use_tls = False  # set while a TLS variant of a case runs

    def put(self, name, data):
        with open(os.path.join(self.www, name), "wb") as f:
            f.write(data)
        self.files[name] = data

    def conn(self, settings=None, **kw):
        """A new h2 connection: h2c with prior knowledge, or TLS with ALPN h2
        to the TLS listener while a TLS variant runs."""
        if self.use_tls:
            return Conn(self.srv.tls_port, settings, tls=self.cert, authority=self.authority(), **kw).handshake()
        return Conn(self.port, settings, **kw).handshake()

    def authority(self):
        return "localhost:%d" % self.srv.tls_port if self.use_tls else "127.0.0.1:%d" % self.port

    def close(self):
        try:
            self.srv.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def good_get(env, path="/small.txt", port=None):
    """The well-behaved client (python3-h2, a new connection): 200 and the
    exact bytes, or a Failure saying what came back."""
    try:
        status, hdrs, body = h2_get(port or env.port, path, timeout=10)
    except Exception as e:  # noqa: BLE001
        raise Failure("second client (python3-h2, own connection) GET %s: %s" % (path, e))
    want = env.files[path.lstrip("/")]
    check(status == 200 and body == want,
          "second client GET %s: status %s, %d bytes (want 200, %d bytes)" % (path, status, len(body), len(want)))


def valid_get_on(c, env, what):
    """A valid GET on the same connection gets 200 and the bytes."""
    if c.closed or c.goaways:
        raise Failure("%s; then the connection was not usable for a valid GET: %s" % (what, c.summary()))
    sid = c.request("GET", "/small.txt")
    s = c.response(sid, 10)
    check(s.status == 200 and s.ended and bytes(s.body) == env.files["small.txt"],
          "%s; then a valid GET /small.txt on the same connection (stream %d) got %s; %s" %
          (what, sid, s.describe(), c.summary()))


# ---------------------------------------------------------------- registry
TESTS = []


def case(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------- semantics
def get(c, method, path, extra=(), timeout=10):
    sid = c.request(method, path, extra)
    s = c.response(sid, timeout)
    check(s.done and s.rst is None,
          "%s %s (stream %d): %s; %s" % (method, path, sid, s.describe(), c.summary()))
    return s


@case
def semantics_get_head_404_301_405(env):
    c = env.conn()
    small = env.files["small.txt"]
    s = get(c, "GET", "/small.txt")
    check(s.status == 200 and bytes(s.body) == small and s.header("content-length") == str(len(small)),
          "GET /small.txt: status %s, content-length %s, body %r" % (s.status, s.header("content-length"), bytes(s.body)))
    s = get(c, "HEAD", "/small.txt")
    check(s.status == 200 and len(s.body) == 0 and s.header("content-length") == str(len(small)),
          "HEAD /small.txt: status %s, content-length %s, %d body bytes (want 200, %d, 0)" %
          (s.status, s.header("content-length"), len(s.body), len(small)))
    s = get(c, "GET", "/nope.txt")
    check(s.status == 404, "GET /nope.txt: status %s, want 404" % s.status)
    s = get(c, "GET", "/dir")
    loc = s.header("location") or ""
    check(s.status == 301 and loc.endswith("/dir/"), "GET /dir: status %s, location %r (want 301 to .../dir/)" % (s.status, loc))
    s = get(c, "GET", "/dir/")
    check(s.status == 200 and b"dir index" in s.body, "GET /dir/: status %s (want 200 with the index)" % s.status)
    s = get(c, "DELETE", "/small.txt")
    allow = s.header("allow") or ""
    check(s.status == 405 and "GET" in allow, "DELETE /small.txt: status %s, allow %r (want 405 with allow naming GET)" % (s.status, allow))
    s = get(c, "GET", "/big.bin")
    check(s.status == 200 and bytes(s.body) == env.files["big.bin"] and s.header("content-length") == str(MIB),
          "GET /big.bin: status %s, %d bytes, identical %s" % (s.status, len(s.body), bytes(s.body) == env.files["big.bin"]))


@case
def semantics_conditional_and_ranges(env):
    c = env.conn()
    big = env.files["big.bin"]
    s = get(c, "HEAD", "/big.bin")
    etag = s.header("etag")
    check(s.status == 200 and etag, "HEAD /big.bin: status %s, etag %r" % (s.status, etag))
    s = get(c, "GET", "/big.bin", [("if-none-match", etag)])
    check(s.status == 304 and len(s.body) == 0, "GET /big.bin If-None-Match %s: status %s, %d bytes (want 304, none)" % (etag, s.status, len(s.body)))
    s = get(c, "GET", "/big.bin", [("range", "bytes=100-199")])
    check(s.status == 206 and bytes(s.body) == big[100:200] and s.header("content-range") == "bytes 100-199/%d" % len(big),
          "Range bytes=100-199: status %s, content-range %r, %d bytes" % (s.status, s.header("content-range"), len(s.body)))
    s = get(c, "GET", "/big.bin", [("range", "bytes=0-9,1000-1009")])
    ctype = s.header("content-type") or ""
    check(s.status == 206 and ctype.startswith("multipart/byteranges") and "boundary=" in ctype,
          "Range bytes=0-9,1000-1009: status %s, content-type %r (want 206 multipart/byteranges)" % (s.status, ctype))
    boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
    parts = [p for p in bytes(s.body).split(b"--" + boundary) if p.strip(b"\r\n") not in (b"", b"--")]
    got = []
    for p in parts:
        head, _, data = p.lstrip(b"\r\n").partition(b"\r\n\r\n")
        got.append((head.lower(), data[:-2] if data.endswith(b"\r\n") else data))
    check(len(got) == 2, "multipart body has %d parts, want 2: %r" % (len(got), bytes(s.body)[:300]))
    check(b"content-range: bytes 0-9/%d" % len(big) in got[0][0] and got[0][1] == big[0:10],
          "first part wrong: %r" % (got[0],))
    check(b"content-range: bytes 1000-1009/%d" % len(big) in got[1][0] and got[1][1] == big[1000:1010],
          "second part wrong: %r" % (got[1],))
    s = get(c, "GET", "/big.bin", [("range", "bytes=%d-" % (2 * len(big)))])
    check(s.status == 416 and s.header("content-range") == "bytes */%d" % len(big),
          "unsatisfiable range: status %s, content-range %r (want 416, bytes */%d)" % (s.status, s.header("content-range"), len(big)))
    s = get(c, "GET", "/healthz")
    check(s.status == 200, "GET /healthz: status %s, want 200" % s.status)


@case
def settings_advertised(env):
    """The server's SETTINGS say what [http2] configures (issue 19), and
    SETTINGS_NO_RFC7540_PRIORITIES = 1 (RFC 9218 priorities)."""
    c = env.conn()
    ss = c.server_settings
    want = {SETTINGS_MAX_CONCURRENT_STREAMS: 128, SETTINGS_MAX_HEADER_LIST_SIZE: 8192,
            SETTINGS_NO_RFC7540_PRIORITIES: 1}
    bad = {k: ss.get(k) for k, v in want.items() if ss.get(k) != v}
    iws = ss.get(SETTINGS_INITIAL_WINDOW_SIZE, 65535)  # absent means the default 65535
    c.wait(lambda: c.settings_acked >= 1, 5)
    check(not bad and iws == 65535 and c.settings_acked >= 1, "server SETTINGS %s: wrong %s (want MAX_CONCURRENT_STREAMS 128, MAX_HEADER_LIST_SIZE 8192, "
          "NO_RFC7540_PRIORITIES 1, INITIAL_WINDOW_SIZE 65535); our SETTINGS acked %d times" % (ss, bad, c.settings_acked))


@case
def header_list_over_limit_gets_431(env):
    """One 10000-byte cookie (over max_header_list_size 8192): 431 or a
    stream reset, never 200; the connection goes on."""
    c = env.conn()
    sid = c.request("GET", "/small.txt", [("cookie", "a=" + "b" * 10000)])
    s = c.response(sid)
    sent = "HEADERS GET /small.txt with a 10002-byte cookie (max_header_list_size 8192)"
    check((s.status == 431 or (s.rst is not None and s.status is None)) and not c.goaways,
          "%s; got %s; %s (want 431 or RST_STREAM, connection kept)" % (sent, s.describe(), c.summary()))
    valid_get_on(c, env, "%s, got %s" % (sent, s.describe()))


# ---------------------------------------------------------------- malformed
def base_headers(env, method="GET", path="/small.txt"):
    return [(":method", method), (":scheme", "https" if env.use_tls else "http"), (":authority", env.authority()),
            (":path", path)]


MALFORMED = {
    "uppercase_name": lambda e: base_headers(e) + [("X-Upper", "1")],
    "connection": lambda e: base_headers(e) + [("connection", "close")],
    "keep_alive": lambda e: base_headers(e) + [("keep-alive", "timeout=5")],
    "proxy_connection": lambda e: base_headers(e) + [("proxy-connection", "keep-alive")],
    "transfer_encoding": lambda e: base_headers(e) + [("transfer-encoding", "chunked")],
    "upgrade": lambda e: base_headers(e) + [("upgrade", "h2c")],
    "te_gzip": lambda e: base_headers(e) + [("te", "gzip")],
    "missing_method": lambda e: [h for h in base_headers(e) if h[0] != ":method"],
    "missing_scheme": lambda e: [h for h in base_headers(e) if h[0] != ":scheme"],
    "missing_path": lambda e: [h for h in base_headers(e) if h[0] != ":path"],
    "repeated_path": lambda e: base_headers(e) + [(":path", "/small.txt")],
    "repeated_method": lambda e: base_headers(e)[:1] + [(":method", "GET")] + base_headers(e)[1:],
    "pseudo_after_regular": lambda e: [h for h in base_headers(e) if h[0] != ":path"] + [("accept", "*/*"), (":path", "/small.txt")],
    "unknown_pseudo": lambda e: base_headers(e) + [(":foo", "bar")],
    "path_empty": lambda e: base_headers(e, path=""),
    "path_not_origin_form": lambda e: base_headers(e, path="small.txt"),
    "path_absolute_form": lambda e: base_headers(e, path="http://127.0.0.1/small.txt"),
    "path_asterisk_for_get": lambda e: base_headers(e, path="*"),
    # RFC 9113 section 8.2.1: field validity
    "value_with_crlf": lambda e: base_headers(e) + [("x-v", "a\r\nx-injected: 1")],
    "value_with_nul": lambda e: base_headers(e) + [("x-v", "a\x00b")],
    "value_leading_space": lambda e: base_headers(e) + [("x-v", " a")],
    "value_trailing_tab": lambda e: base_headers(e) + [("x-v", "a\t")],
    "name_with_space": lambda e: base_headers(e) + [("x v", "1")],
    "name_with_colon": lambda e: base_headers(e) + [("x:v", "1")],
    "empty_name": lambda e: base_headers(e) + [("", "1")],
}
# (method, content-length, DATA bytes actually sent with END_STREAM)
CONTENT_LENGTH = {
    "content_length_more_than_data_get": ("GET", 10, 5),
    "content_length_less_than_data_get": ("GET", 5, 10),
    "content_length_more_than_data_post": ("POST", 10, 5),
    "content_length_less_than_data_post": ("POST", 5, 10),
}


def expect_stream_error(env, c, sid, sent):
    s = c.response(sid, 10)
    ok = (s.rst == PROTOCOL_ERROR and s.status in (None, 400)) or (s.status == 400 and s.rst in (None, NO_ERROR, PROTOCOL_ERROR))
    check(ok and not c.goaways and not c.closed,
          "sent %s; got %s; %s (want RST_STREAM(PROTOCOL_ERROR) or a 400, connection kept)" % (sent, s.describe(), c.summary()))
    valid_get_on(c, env, "sent %s, got %s" % (sent, s.describe()))


def make_malformed(name, build):
    def run(env):
        c = env.conn()
        hdrs = build(env)
        sid = c.raw_request(hdrs, end_stream=True)
        expect_stream_error(env, c, sid, "HEADERS(stream %d, END_STREAM) %r" % (sid, hdrs))
    run.__name__ = "malformed_" + name
    return run


def make_content_length(name, spec):
    method, declared, sent_len = spec

    def run(env):
        c = env.conn()
        hdrs = base_headers(env, method) + [("content-length", str(declared))]
        sid = c.raw_request(hdrs, end_stream=True, body=b"x" * sent_len)
        expect_stream_error(env, c, sid, "HEADERS %s /small.txt content-length %d + DATA(%d bytes, END_STREAM) in one write"
                            % (method, declared, sent_len))
    run.__name__ = "malformed_" + name
    return run


MALFORMED_CASES = {}
for _n, _b in MALFORMED.items():
    MALFORMED_CASES[_n] = case(make_malformed(_n, _b))
for _n, _s in CONTENT_LENGTH.items():
    MALFORMED_CASES[_n] = case(make_content_length(_n, _s))


def make_trailers(name, trailer, end_stream):
    def run(env):
        c = env.conn()
        sid = c.new_sid()
        c.stream(sid)
        c.queue(c.headers_bytes(sid, base_headers(env, "GET") + [("content-length", "1")], end_stream=False))
        c.queue(data_frame(sid, b"x"))
        c.queue(c.headers_bytes(sid, trailer, end_stream=end_stream))
        c.flush()
        expect_stream_error(env, c, sid, "HEADERS GET /small.txt (no END_STREAM) + DATA(1 byte) + trailing HEADERS %r%s "
                            "in one write" % (trailer, " with END_STREAM" if end_stream else " without END_STREAM"))
    run.__name__ = "malformed_" + name
    return run


case(make_trailers("pseudo_header_in_trailers", [(":path", "/x")], True))
case(make_trailers("trailers_without_end_stream", [("x-t", "1")], False))


@case
def wellformed_te_trailers_and_options_asterisk(env):
    """Controls: te: trailers is allowed; OPTIONS * is not a stream error."""
    c = env.conn()
    sid = c.raw_request(base_headers(env) + [("te", "trailers")])
    s = c.response(sid)
    check(s.status == 200 and bytes(s.body) == env.files["small.txt"],
          "GET with te: trailers got %s (want 200); %s" % (s.describe(), c.summary()))
    sid = c.raw_request(base_headers(env, "OPTIONS", "*"))
    s = c.response(sid)
    check(s.status is not None and s.rst is None and s.status != 400,
          "OPTIONS * got %s (want an answer, not a stream error); %s" % (s.describe(), c.summary()))
    valid_get_on(c, env, "OPTIONS *")


# ---------------------------------------------------------------- attacks
class Attack:
    """An attack in a thread: it calls underway() once part of the flood is
    out, then waits (bounded) until the second client was served, then goes
    on. Meanwhile the main thread runs the second client."""

    def __init__(self, env, fn):
        self.env = env
        self.fn = fn
        self.underway_ev = threading.Event()
        self.good_done = threading.Event()
        self.result = None
        self.error = None
        self.worker = env.srv.worker()
        self.rss0 = proc_kib(self.worker, "VmRSS") if self.worker else None
        if self.worker:
            reset_peak(self.worker)

    def underway(self):
        self.underway_ev.set()
        self.good_done.wait(30)

    def _run(self):
        try:
            self.result = self.fn(self)
        except Exception as e:  # noqa: BLE001
            self.error = "%s\n%s" % (e, traceback.format_exc())
        finally:
            self.underway_ev.set()

    def run(self, timeout=60):
        t = threading.Thread(target=self._run, daemon=True)
        t.start()
        self.underway_ev.wait(timeout)
        good_err = None
        try:
            good_get(self.env)
        except Failure as e:
            good_err = str(e)
        finally:
            self.good_done.set()
        t.join(timeout)
        check(not t.is_alive(), "the attack did not end in %ds" % timeout)
        if self.error:
            raise Failure("the attack client failed: " + self.error)
        check(good_err is None, "during the attack: %s" % good_err)
        self.after()
        return self.result

    def after(self):
        env = self.env
        check(env.srv.alive(), "drover is gone after the attack")
        w = env.srv.worker()
        check(w == self.worker, "the worker changed during the attack: pid %s before, %s after (it died?)\n%s"
              % (self.worker, w, env.srv.log_tail()))
        if self.worker and self.rss0 is not None:
            hwm = proc_kib(self.worker, "VmHWM")
            self.grew = hwm - self.rss0
            check(self.grew < RSS_BOUND_KIB, "worker peak RSS grew by %d KiB during the attack (bound %d KiB)"
                  % (self.grew, RSS_BOUND_KIB))
        good_get(env)


def closed_with(c, codes, what, allow_plain_close=False):
    """The attacking connection ended with GOAWAY(one of codes), or closed
    without one if allow_plain_close."""
    if not c.closed:
        c.wait_closed(30)
    gw_codes = [code for _, code, _ in c.goaways]
    if any(code in codes for code in gw_codes) and c.closed:
        return
    if allow_plain_close and c.closed and not any(code == NO_ERROR for code in gw_codes) and not gw_codes:
        return
    raise Failure("%s; got %s (want GOAWAY(%s)%s, then close)" %
                  (what, c.summary(), "|".join(err_name(x) for x in codes), " or a close" if allow_plain_close else ""))


@case
def attack_rapid_reset(env):
    n_total, batch = 5000, 100

    def attack(a):
        c = env.conn(auto_window=False)
        sent = 0
        state = "sent"
        for i in range(n_total // batch):
            buf = bytearray()
            for _ in range(batch):
                sid = c.new_sid()
                buf += c.headers_bytes(sid, c.request_headers("GET", "/big.bin"))
                buf += rst_frame(sid, CANCEL)
            state = c.send(buf, timeout=10)
            sent += batch
            if i == 4:
                a.underway()
            if state != "sent":
                break
        return c, sent, state

    c, sent, state = Attack(env, attack).run()
    what = "sent %d x (HEADERS GET /big.bin + RST_STREAM(CANCEL)) (writes ended: %s)" % (sent, state)
    closed_with(c, [ENHANCE_YOUR_CALM], what)
    last = [l for l, code, _ in c.goaways if code == ENHANCE_YOUR_CALM][0]
    check(last < 2 * n_total - 1, "%s; GOAWAY(ENHANCE_YOUR_CALM) only after every stream (last %d)" % (what, last))
    print("    rapid reset: GOAWAY(ENHANCE_YOUR_CALM) at last-stream-id %d of %d" % (last, 2 * n_total - 1))


def continuation_flood(env, one_byte):
    n = 10000
    field = b"\x00\x03x-c\x08aaaaaaaa"  # literal without indexing, new name

    def attack(a):
        c = env.conn(auto_window=False)
        sid = c.new_sid()
        block = c.encode(c.request_headers("GET", "/small.txt"))
        c.queue(frame(HEADERS, END_STREAM, sid, block))  # no END_HEADERS
        if one_byte:
            stream = field * (n // len(field) + 1)
            payloads = [stream[i:i + 1] for i in range(n)]
        else:
            payloads = [field] * n
        sent = 0
        state = "sent"
        for i in range(0, n, 500):
            c.queue(b"".join(frame(CONTINUATION, 0, sid, p) for p in payloads[i:i + 500]))
            state = c.flush(10)
            sent = i + 500
            if i == 1000:
                a.underway()
            if state != "sent":
                break
        return c, sent, state

    c, sent, state = Attack(env, attack).run()
    what = "HEADERS without END_HEADERS + %d CONTINUATION of %s (writes ended: %s)" % (
        sent, "1 byte" if one_byte else "one 15-byte field", state)
    gw = [code for _, code, _ in c.goaways]
    if not c.closed:
        c.wait_closed(30)
    check(c.closed and NO_ERROR not in gw, "%s; got %s (want GOAWAY with an error code, or a close)" % (what, c.summary()))
    check(not c.stream(1).status == 200, "%s; the stream got 200" % what)


@case
def attack_continuation_flood_fields(env):
    continuation_flood(env, False)


@case
def attack_continuation_flood_1_byte(env):
    continuation_flood(env, True)


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(b):
    return hpack_int(len(b), 7) + b


@case
def attack_hpack_bomb(env):
    n_refs, n_streams = 12000, 10

    def block():
        b = bytearray(b"\x82\x86")  # :method GET, :scheme http (static table)
        b += hpack_int(4, 4) + hpack_str(b"/small.txt")  # :path, literal without indexing
        b += hpack_int(1, 4) + hpack_str(("127.0.0.1:%d" % env.port).encode())  # :authority
        b += b"\x40" + hpack_str(b"x-bomb") + hpack_str(b"a" * 4000)  # into the dynamic table (index 62)
        b += b"\xbe" * n_refs  # index 62, one byte each: 12000 x 4 KiB decoded
        return bytes(b)

    def attack(a):
        c = env.conn(auto_window=False)
        sids = []
        for i in range(n_streams):
            sid = c.new_sid()
            sids.append(sid)
            c.queue(frame(HEADERS, END_STREAM | END_HEADERS, sid, block()))
            c.flush(10)
            if i == 2:
                a.underway()
        c.wait(lambda: c.closed or all(c.stream(s).done for s in sids), 20)
        return c, sids

    at = Attack(env, attack)
    c, sids = at.run()
    what = ("%d streams, each one HEADERS (%d bytes) inserting a 4000-byte x-bomb field and referencing it %d times "
            "(~%d MiB decoded)" % (n_streams, len(block()), n_refs, n_refs * 4000 // MIB))
    answers = {sid: c.stream(sid).describe() for sid in sids}
    check(not any(c.stream(s).status == 200 for s in sids), "%s: a stream got 200: %s" % (what, answers))
    eyc = any(code == ENHANCE_YOUR_CALM for _, code, _ in c.goaways)
    each = all(c.stream(s).status == 431 or c.stream(s).rst is not None for s in sids)
    if not each and eyc:
        # streams left unanswered must be above the GOAWAY's last id or reset
        last = min(l for l, code, _ in c.goaways if code == ENHANCE_YOUR_CALM)
        each = all(c.stream(s).status == 431 or c.stream(s).rst is not None or s > last for s in sids)
    check(each or eyc, "%s: want each stream 431 or RST_STREAM, or GOAWAY(ENHANCE_YOUR_CALM); got %s; %s"
          % (what, answers, c.summary()))
    print("    hpack bomb: %s; %s; worker RSS grew %s KiB" % (
        sorted(set(answers.values())), c.goaway_desc(), getattr(at, "grew", "?")))


def flood(env, name, make_frames, n, read, allowed, allow_plain_close, pre=None, recv_bufsize=None):
    def attack(a):
        c = env.conn(auto_window=False, auto_ping=False, recv_bufsize=recv_bufsize)
        if pre:
            pre(c)
        chunk = 2000
        sent = 0
        state = "sent"
        for i in range(0, n, chunk):
            c.queue(make_frames(c, min(chunk, n - i)))
            state = c.flush(10, read=read)
            sent = i + chunk
            if i == 4 * chunk:
                a.underway()
            if state != "sent":
                break
        return c, min(sent, n), state

    c, sent, state = Attack(env, attack).run()
    what = "%d %s%s (writes ended: %s)" % (sent, name, "" if read else " without reading", state)
    closed_with(c, allowed, what, allow_plain_close)
    print("    %s: %s" % (name, c.summary()))


@case
def attack_ping_flood(env):
    flood(env, "PING", lambda c, k: ping_frame(b"floodpng", ack=False) * k, 100000, False,
          [ENHANCE_YOUR_CALM], True, recv_bufsize=16384)


@case
def attack_settings_flood(env):
    flood(env, "SETTINGS(INITIAL_WINDOW_SIZE=65535)",
          lambda c, k: settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 65535}) * k, 100000, False,
          [ENHANCE_YOUR_CALM], True, recv_bufsize=16384)


@case
def attack_empty_data_flood(env):
    def pre(c):
        c.sid = c.new_sid()
        c.queue(c.headers_bytes(c.sid, c.request_headers("POST", "/small.txt"), end_stream=False))
    flood(env, "zero-length DATA (no END_STREAM) on an open POST stream",
          lambda c, k: data_frame(c.sid, b"") * k, 100000, True,
          [ENHANCE_YOUR_CALM, PROTOCOL_ERROR], True, pre=pre)


@case
def attack_empty_continuation_flood(env):
    def pre(c):
        c.sid = c.new_sid()
        c.queue(frame(HEADERS, END_STREAM, c.sid, c.encode(c.request_headers("GET", "/small.txt"))))
    flood(env, "zero-length CONTINUATION after HEADERS without END_HEADERS",
          lambda c, k: frame(CONTINUATION, 0, c.sid, b"") * k, 100000, True,
          [ENHANCE_YOUR_CALM, PROTOCOL_ERROR], True, pre=pre)


@case
def attack_empty_headers_flood(env):
    """HEADERS frames with an empty header block (END_HEADERS|END_STREAM),
    each on a new stream: each is malformed (no pseudo-header)."""
    flood(env, "empty HEADERS (zero-length block, END_STREAM|END_HEADERS), a new stream each",
          lambda c, k: b"".join(frame(HEADERS, END_STREAM | END_HEADERS, c.new_sid(), b"") for _ in range(k)),
          100000, True, [ENHANCE_YOUR_CALM, PROTOCOL_ERROR], True)


@case
def attack_zero_window(env):
    n = 100

    def attack(a):
        c = env.conn({SETTINGS_INITIAL_WINDOW_SIZE: 0}, auto_window=False, recv_bufsize=16384)
        sids = []
        for _ in range(n):
            sid = c.new_sid()
            sids.append(sid)
            c.queue(c.headers_bytes(sid, c.request_headers("GET", "/huge.bin")))
        state = c.flush(10, read=False)
        a.underway()
        c.wait_closed(30)
        return c, sids, state

    at = Attack(env, attack)
    c, sids, state = at.run(90)
    what = ("SETTINGS_INITIAL_WINDOW_SIZE=0, %d x GET /huge.bin (32 MiB), no WINDOW_UPDATE (writes ended: %s)"
            % (n, state))
    check(c.closed, "%s; after 30 s: %s (want the connection closed after send_timeout)" % (what, c.summary()))
    got = sum(len(c.stream(s).body) for s in sids)
    check(got == 0, "%s; %d DATA bytes came through a zero window" % (what, got))
    print("    zero window: %s; worker RSS grew %s KiB" % (c.summary(), getattr(at, "grew", "?")))


@case
def attack_one_byte_window_updates(env):
    n_streams, n_updates = 10, 5000

    def attack(a):
        c = env.conn({SETTINGS_INITIAL_WINDOW_SIZE: 1}, auto_window=False)
        sids = []
        for _ in range(n_streams):
            sid = c.new_sid()
            sids.append(sid)
            c.queue(c.headers_bytes(sid, c.request_headers("GET", "/big.bin")))
        c.queue(window_update_frame(0, 100 * MIB))  # the connection's window is not what limits
        c.flush(10)
        sent = 0
        # Rounds of one 1-byte update per stream, each followed by a PING
        # whose ACK says the server has read them: the server sees the
        # updates one round at a time, not batched by the kernel.
        for r in range(n_updates // n_streams):
            c.queue(b"".join(window_update_frame(sid, 1) for sid in sids))
            sent += n_streams
            if not c.ping_round_trip(10) or c.closed:
                break
            if r == 100:
                a.underway()
        c.ping_round_trip(10)
        return c, sids, sent

    c, sids, sent = Attack(env, attack).run()
    small = sum(1 for s in sids for (ln, fl) in c.stream(s).data_frames if ln < 1024 and not fl & END_STREAM)
    total = sum(len(c.stream(s).data_frames) for s in sids)
    what = ("SETTINGS_INITIAL_WINDOW_SIZE=1, %d x GET /big.bin, %d WINDOW_UPDATE(+1), one per stream "
            "and a PING round trip at a time" % (n_streams, sent))
    eyc = any(code == ENHANCE_YOUR_CALM for _, code, _ in c.goaways)
    check(small < 100 or eyc, "%s; got %d DATA frames under 1024 bytes (not final) of %d DATA frames; %s "
          "(want < 100 small frames, or GOAWAY(ENHANCE_YOUR_CALM))" % (what, small, total, c.summary()))
    print("    1-byte window updates: %d small DATA frames of %d; %s" % (small, total, c.summary()))


# ---------------------------------------------------------------- limits
@case
def stream_never_finished_gets_408_or_reset(env):
    c = env.conn()
    sid = c.request("POST", "/small.txt", [("content-length", "100")], end_stream=False)
    s = c.stream(sid)
    # the connection serves a second stream meanwhile
    valid_get_on(c, env, "an unfinished POST on stream %d" % sid)
    c.wait(lambda: s.rst is not None or s.status == 408, 30)
    check(s.rst is not None or s.status == 408,
          "HEADERS POST /small.txt content-length 100 without END_STREAM, no DATA: after 30 s stream %d has %s; %s "
          "(want 408 or RST_STREAM after header_timeout 2s)" % (sid, s.describe(), c.summary()))
    valid_get_on(c, env, "stream %d ended with %s" % (sid, s.describe()))
    print("    unfinished POST: %s" % s.describe())


@case
def max_concurrent_streams_129th_refused(env):
    c = env.conn({SETTINGS_INITIAL_WINDOW_SIZE: 0})
    adv = c.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
    check(adv == 128, "server SETTINGS_MAX_CONCURRENT_STREAMS is %s, want 128" % adv)
    sids = []
    for _ in range(129):
        sid = c.new_sid()
        sids.append(sid)
        c.queue(c.headers_bytes(sid, c.request_headers("GET", "/medium.bin")))
    c.flush(10)
    last = c.stream(sids[-1])
    c.wait(lambda: last.done or last.status is not None, 10)
    what = "SETTINGS_INITIAL_WINDOW_SIZE=0, 129 x HEADERS GET /medium.bin in one write"
    check(last.rst in (REFUSED_STREAM, PROTOCOL_ERROR) and last.status is None and not c.goaways,
          "%s; stream %d got %s; %s (want RST_STREAM(REFUSED_STREAM|PROTOCOL_ERROR), connection kept)"
          % (what, last.sid, last.describe(), c.summary()))
    # open the windows: the first 128 are answered in full
    c.queue(settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20}) + window_update_frame(0, 128 * 65536))
    c.flush()
    c.wait(lambda: all(c.stream(s).done for s in sids[:128]), 30)
    med = env.files["medium.bin"]
    bad = [(s, c.stream(s).describe()) for s in sids[:128]
           if not (c.stream(s).status == 200 and c.stream(s).ended and bytes(c.stream(s).body) == med)]
    check(not bad, "%s; of the first 128, %d not answered 200 with the exact bytes: %s; %s"
          % (what, len(bad), bad[:5], c.summary()))


@case
def keepalive_requests_ends_with_goaway(env):
    srv = env.server_class(env.tmp, env.www, "keepalive10", keepalive_requests=10)
    try:
        small = env.files["small.txt"]
        # one stream at a time
        c = Conn(srv.port).handshake()
        sids = []
        for i in range(10):
            check(not c.closed and not any(code != NO_ERROR for _, code, _ in c.goaways),
                  "before request %d: %s" % (i + 1, c.summary()))
            sid = c.request("GET", "/small.txt")
            sids.append(sid)
            s = c.response(sid)
            check(s.status == 200 and bytes(s.body) == small, "request %d (stream %d): %s; %s" % (i + 1, sid, s.describe(), c.summary()))
        c.wait(lambda: c.goaways and c.goaways[-1][0] != 2**31 - 1, 10)
        c.wait_closed(15)
        what = "keepalive_requests = 10, 10 GETs one after another"
        check(c.goaways and c.goaways[-1][0] == 19 and c.goaways[-1][1] == NO_ERROR and c.closed,
              "%s; got %s (want GOAWAY(last 19, NO_ERROR), then close)" % (what, c.summary()))
        # fifteen at once
        c = Conn(srv.port).handshake()
        sids = []
        for _ in range(15):
            sid = c.new_sid()
            sids.append(sid)
            c.queue(c.headers_bytes(sid, c.request_headers("GET", "/small.txt")))
        c.flush()
        c.wait_closed(15)
        what = "keepalive_requests = 10, 15 GETs in one write"
        check(c.goaways and c.closed, "%s; got %s (want GOAWAY, then close)" % (what, c.summary()))
        last = c.goaways[-1][0]
        below = [s for s in sids if s <= last]
        bad = [(s, c.stream(s).describe()) for s in below
               if not (c.stream(s).status == 200 and c.stream(s).ended and bytes(c.stream(s).body) == small)]
        above_ok = [s for s in sids if s > last and c.stream(s).status == 200]
        check(last <= 19 and not bad and c.goaways[-1][1] == NO_ERROR,
              "%s; %s; streams <= last id not answered in full: %s; (want last id <= 19, NO_ERROR, all below it 200)"
              % (what, c.summary(), bad))
        print("    keepalive_requests: 15 at once -> %s, %d answered, %d above the last id answered anyway"
              % (c.goaway_desc(), len(below), len(above_ok)))
    finally:
        srv.stop()


@case
def legitimate_bursts_are_not_attacks(env):
    """What a busy browser does must not look like a flood: 100 PINGs, 20
    SETTINGS and 100 cancelled requests in bursts on one connection, then
    a GET there gets 200."""
    c = env.conn()
    c.send(ping_frame(b"burst!!!") * 100)
    c.wait(lambda: len(c.ping_acks) >= 100, 10)
    c.send(settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 65535}) * 20)
    c.wait(lambda: c.settings_acked >= 21, 10)
    buf = bytearray()
    for _ in range(100):
        sid = c.new_sid()
        buf += c.headers_bytes(sid, c.request_headers("GET", "/big.bin")) + rst_frame(sid, CANCEL)
    c.send(buf)
    valid_get_on(c, env, "100 PINGs (%d acked), 20 SETTINGS (%d acked), 100 x HEADERS + RST_STREAM(CANCEL)"
                 % (len(c.ping_acks), c.settings_acked))


@case
def credit_per_frame_client_downloads_without_goaway(env):
    """A legitimate client that returns flow-control credit for every DATA
    frame it reads (as RFC 9113 allows, and as a python-h2 client that
    acknowledges each chunk does) keeps 4 downloads of 1 MiB in flight, 64
    in all: every body arrives byte for byte, and no GOAWAY. Small DATA
    frames forced by window remainders must not be taken for the 1-byte
    window-update attack."""
    c = env.conn()
    big = env.files["big.bin"]
    live = [c.request("GET", "/big.bin") for _ in range(4)]
    done = bad = 0
    small = frames_n = 0
    deadline = time.monotonic() + 60
    for _ in range(10**6):
        if c.closed or c.goaways or done >= 64 or time.monotonic() > deadline:
            break
        c.poll(1.0)
        for sid in list(live):
            st = c.stream(sid)
            if st.done:
                live.remove(sid)
                done += 1
                bad += not (st.status == 200 and bytes(st.body) == big)
                small += sum(1 for ln, fl in st.data_frames if ln < 1024 and not fl & END_STREAM)
                frames_n += len(st.data_frames)
                if done + len(live) < 64:
                    live.append(c.request("GET", "/big.bin"))
    check(done >= 64 and not bad and not c.goaways and not c.closed,
          "4 x GET /big.bin in flight, WINDOW_UPDATE (stream and connection) for every DATA frame read: %d of 64 "
          "done, %d wrong; the server sent %d non-final DATA frames under 1 KiB of %d; %s (want all 64 byte for byte, "
          "no GOAWAY)" % (done, bad, small, frames_n, c.summary()))
    print("    credit per frame: %d non-final DATA frames under 1 KiB of %d" % (small, frames_n))


@case
def idle_connection_closed_after_keepalive_timeout(env):
    c = env.conn()
    sid = c.request("GET", "/small.txt")
    s = c.response(sid)
    check(s.status == 200, "GET /small.txt: %s" % s.describe())
    c.wait_closed(20)
    check(c.closed and all(code == NO_ERROR for _, code, _ in c.goaways),
          "one GET, then idle: after 20 s %s (want closed after keepalive_timeout 5s, any GOAWAY NO_ERROR)" % c.summary())
    print("    idle connection: %s" % c.summary())


@case
def graceful_stop_answers_open_streams(env):
    """SIGTERM with 10 streams held by a zero window: GOAWAY (2^31-1 first),
    then every stream at or below the last id answered in full once the
    client opens its window, then close, and drover exits 0."""
    if env.kind != "drover":
        raise Failure("needs drover")
    srv = env.server_class(env.tmp, env.www, "stop")
    try:
        c = Conn(srv.port, {SETTINGS_INITIAL_WINDOW_SIZE: 0}).handshake()
        sids = []
        for _ in range(10):
            sid = c.new_sid()
            sids.append(sid)
            c.queue(c.headers_bytes(sid, c.request_headers("GET", "/big.bin")))
        c.flush()
        c.wait(lambda: all(c.stream(x).status is not None for x in sids), 10)
        srv.d.proc.terminate()
        c.wait(lambda: c.goaways and c.goaways[-1][0] != 2**31 - 1, 10)
        what = "10 x GET /big.bin held by SETTINGS_INITIAL_WINDOW_SIZE=0, then SIGTERM to drover"
        check(c.goaways and c.goaways[0][0] == 2**31 - 1 and c.goaways[-1][0] >= sids[-1] and not c.closed,
              "%s; got %s (want GOAWAY(2^31-1), then GOAWAY(last >= %d), connection open)" % (what, c.summary(), sids[-1]))
        c.queue(settings_frame({SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20}) + window_update_frame(0, 16 * MIB))
        c.flush()
        c.wait(lambda: all(c.stream(x).done for x in sids), 30)
        bad = [(x, c.stream(x).describe()) for x in sids
               if not (c.stream(x).status == 200 and bytes(c.stream(x).body) == env.files["big.bin"])]
        check(not bad, "%s, then the window opened; not answered in full: %s; %s" % (what, bad, c.summary()))
        c.wait_closed(15)
        check(c.closed, "%s; every stream answered, but the connection is still open: %s" % (what, c.summary()))
        rc = srv.d.proc.wait(30)
        check(rc == 0, "%s; drover exited %s" % (what, rc))
    finally:
        srv.stop()


# ---------------------------------------------------------------- TLS
class Skip(Exception):
    pass


def tls_variant(fn):
    """The same case over TLS (ALPN h2) on the TLS listener: drover's TLS
    transport buffers and blocks differently from the plain one."""
    def run(env):
        if not env.cert:
            raise Skip("no TLS listener (openssl missing, or not drover)")
        env.use_tls = True
        try:
            fn(env)
        finally:
            env.use_tls = False
    run.__name__ = "tls_" + fn.__name__
    return run


for _fn in [semantics_get_head_404_301_405, semantics_conditional_and_ranges, MALFORMED_CASES["uppercase_name"],
            MALFORMED_CASES["content_length_less_than_data_get"], attack_rapid_reset, attack_continuation_flood_fields,
            attack_hpack_bomb, attack_ping_flood, attack_settings_flood, attack_empty_data_flood,
            attack_zero_window, attack_one_byte_window_updates, stream_never_finished_gets_408_or_reset,
            max_concurrent_streams_129th_refused, credit_per_frame_client_downloads_without_goaway]:
    case(tls_variant(_fn))


# ---------------------------------------------------------------- main
def main(argv):
    try:
        import h2  # noqa: F401
        import hpack  # noqa: F401
    except ImportError as e:
        print("SKIP: python3-h2 is not installed (%s)" % e)
        return 77
    chosen = [t for t in TESTS if not argv[1:] or any(a in t.__name__ for a in argv[1:])]
    try:
        env = Env()
    except (Failure, OSError) as e:
        print("FAIL: setup: %s" % e)
        print("0 passed, 1 failed")
        return 1
    passed = failed = skipped = 0
    t_start = time.monotonic()
    try:
        for t in chosen:
            t0 = time.monotonic()
            try:
                t(env)
                print("PASS: %s (%.1fs)" % (t.__name__, time.monotonic() - t0))
                passed += 1
            except Skip as e:
                print("SKIP: %s: %s" % (t.__name__, e))
                skipped += 1
            except Failure as e:
                print("FAIL: %s: %s" % (t.__name__, e))
                failed += 1
            except Exception as e:  # noqa: BLE001
                print("FAIL: %s: %s\n%s" % (t.__name__, e, traceback.format_exc()))
                failed += 1
            sys.stdout.flush()
            if not env.srv.alive():
                print("FAIL: the server is gone after %s" % t.__name__)
                failed += 1
                break
    finally:
        rc = env.srv.stop()
        if env.kind == "drover" and rc != 0:
            print("FAIL: drover's graceful stop exited %s" % rc)
            failed += 1
        env.close()
    print("(%d cases against %s in %.0fs)" % (len(chosen), env.kind, time.monotonic() - t_start))
    if skipped:
        print("(%d skipped)" % skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
