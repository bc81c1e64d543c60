"""Shared pieces of the HTTP/2 frame-level tests (tests/http2/frames.py and
tests/http2/drain.py): a hand-built frame client, a python3-h2 client for the
well-behaved side, and drover started from a config with its log watched.

The hand-built client (Conn) writes frames byte by byte (struct) and encodes
header blocks with hpack (a dependency of python3-h2), so it can send what h2
refuses to build: uppercase names, misplaced pseudo-headers, floods, bombs.
It reads every frame the server sends, decodes response header blocks in
order, acknowledges SETTINGS and PING and (unless told not to) returns flow
control credit for the DATA it reads.

Traffic goes to 127.0.0.1 only; every loop is bounded in count and time.
"""
import errno
import os
import re
import select
import socket
import ssl
import struct
import subprocess
import threading
import time

import hpack

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE",
               "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, \
    CONNECT_ERROR, ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, HTTP_1_1_REQUIRED = range(14)
ERROR_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
               "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
               "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
               "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]

SETTINGS_HEADER_TABLE_SIZE = 1
SETTINGS_ENABLE_PUSH = 2
SETTINGS_MAX_CONCURRENT_STREAMS = 3
SETTINGS_INITIAL_WINDOW_SIZE = 4
SETTINGS_MAX_FRAME_SIZE = 5
SETTINGS_MAX_HEADER_LIST_SIZE = 6
SETTINGS_NO_RFC7540_PRIORITIES = 9

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
MAX_WINDOW = 2**31 - 1


def err_name(code):
    return ERROR_NAMES[code] if 0 <= code < len(ERROR_NAMES) else "0x%x" % code


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def settings_frame(settings=None, ack=False):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (settings or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def window_update_frame(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def rst_frame(sid, code):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def ping_frame(data=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def goaway_frame(last_sid, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_sid, code) + debug)


def data_frame(sid, data, end_stream=False):
    return frame(DATA, END_STREAM if end_stream else 0, sid, data)


def header_block_frames(sid, block, end_stream=False, max_frame=16384):
    """HEADERS (+ CONTINUATION) frames carrying one header block."""
    chunks = [block[i:i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
    out = []
    for i, c in enumerate(chunks):
        last = i == len(chunks) - 1
        if i == 0:
            flags = (END_STREAM if end_stream else 0) | (END_HEADERS if last else 0)
            out.append(frame(HEADERS, flags, sid, c))
        else:
            out.append(frame(CONTINUATION, END_HEADERS if last else 0, sid, c))
    return b"".join(out)


class Closed(Exception):
    pass


class Stream:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []  # final response headers, (name, value) str
        self.informational = []
        self.trailers = None
        self.body = bytearray()
        self.data_frames = []  # (length, flags) of each DATA frame
        self.ended = False  # END_STREAM received
        self.rst = None  # RST_STREAM error code received

    @property
    def done(self):
        return self.ended or self.rst is not None

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def describe(self):
        if self.rst is not None:
            what = "RST_STREAM(%s)" % err_name(self.rst)
            if self.status is not None:
                what = "%s after status %s" % (what, self.status)
            return what
        if self.status is not None:
            return "status %s, %d body bytes%s" % (self.status, len(self.body),
                                                   "" if self.ended else ", not ended")
        return "no answer"


class Conn:
    """One HTTP/2 connection with hand-built frames (prior knowledge, h2c)."""

    def __init__(self, port, settings=None, auto_window=True, auto_ping=True,
                 authority=None, connect=True, recv_bufsize=None, tls=None):
        self.port = port
        self.authority = authority or "127.0.0.1:%d" % port
        self.settings = dict(settings or {})
        self.auto_window = auto_window
        self.auto_ping = auto_ping
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 24
        self.out = bytearray()
        self.inbuf = bytearray()
        self.streams = {}
        self.goaways = []  # (last_stream_id, error code, debug data)
        self.closed = False
        self.reset = False  # closed by a TCP reset
        self.server_settings = {}
        self.server_settings_seen = False
        self.settings_acked = 0
        self.ping_acks = []
        self.next_sid = 1
        self.pending_block = None  # (sid, flags, bytearray) while CONTINUATION expected
        self.frame_counts = [0] * 16
        self.frames_total = 0
        self.bytes_in = 0
        self.sock = None
        self.tls = tls
        self._wlen = 0
        if connect:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if recv_bufsize:  # before connect, so the window scale follows it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_bufsize)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", port))
            if tls:
                # tls: the CA file to trust; ALPN h2, as a browser asks
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.load_verify_locations(tls)
                ctx.set_alpn_protocols(["h2"])
                sock = ctx.wrap_socket(sock, server_hostname="localhost")
                if sock.selected_alpn_protocol() != "h2":
                    sock.close()
                    raise Closed("TLS: the server chose ALPN %r, not h2" % sock.selected_alpn_protocol())
            self.sock = sock
            self.sock.setblocking(False)

    # ------------------------------------------------------------ I/O
    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.closed = True

    def queue(self, data):
        self.out += data

    def _recv(self):
        """Bytes read; b"" at the end of the stream; None if nothing can be
        read now. Raises OSError on a reset."""
        try:
            b = self.sock.recv(1 << 20)
        except WOULD_BLOCK:
            return None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""
        if b and self.tls:
            # decrypted bytes the TLS layer holds wake no select()
            for _ in range(1000):
                n = self.sock.pending()
                if not n:
                    break
                b += self.sock.recv(n)
        return b

    def _write_some(self):
        if not self.out or self.closed:
            return 0
        # A TLS write that would block is retried with the same length.
        n_try = self._wlen or min(len(self.out), 262144)
        try:
            n = self.sock.send(self.out[:n_try])
        except WOULD_BLOCK:
            self._wlen = n_try if self.tls else 0
            return 0
        except OSError as e:
            self.out.clear()
            self._mark_closed(reset=isinstance(e, ConnectionResetError) or getattr(e, "errno", None) == errno.ECONNRESET)
            return 0
        self._wlen = 0
        del self.out[:n]
        return n

    def _mark_closed(self, reset=False):
        # Whatever is still in our receive queue is read before we give up
        # the socket: a GOAWAY may sit behind the answers we did not read.
        if self.sock is not None and not self.closed:
            deadline = time.monotonic() + 5
            for _ in range(100000):
                if time.monotonic() > deadline:
                    break
                try:
                    b = self._recv()
                except OSError:
                    reset = True
                    break
                if b is None:
                    r, _, _ = select.select([self.sock], [], [], 0.5)
                    if not r:
                        break
                    continue
                if not b:
                    break
                self.inbuf += b
                self.bytes_in += len(b)
            self._parse()
        self.closed = True
        self.reset = self.reset or reset

    def _read_some(self):
        try:
            b = self._recv()
        except OSError:
            self._mark_closed(reset=True)
            return 0
        if b is None:
            return 0
        if not b:
            self._mark_closed()
            return 0
        self.inbuf += b
        self.bytes_in += len(b)
        self._parse()
        return len(b)

    def poll(self, timeout, read=True):
        """One round: wait up to timeout for the socket, then read and/or
        write what it allows. Returns True if anything moved."""
        if self.closed:
            return False
        rl = [self.sock] if read else []
        wl = [self.sock] if self.out else []
        if not rl and not wl:
            return False
        r, w, _ = select.select(rl, wl, [], max(0.0, timeout))
        moved = False
        if w:
            moved = self._write_some() > 0 or moved
        if r and not self.closed:
            moved = self._read_some() > 0 or moved
        return moved

    def flush(self, timeout=10, read=True):
        """Write everything queued; reads meanwhile if read. Returns "sent",
        "closed" or "held" (the server took no byte for timeout seconds)."""
        last = time.monotonic()
        for _ in range(10**7):
            if self.closed:
                return "closed"
            if not self.out:
                return "sent"
            before = len(self.out)
            self.poll(min(1.0, timeout), read=read)
            if len(self.out) < before:
                last = time.monotonic()
            elif time.monotonic() - last > timeout:
                return "held"
        return "held"

    def send(self, data, timeout=10):
        self.queue(data)
        return self.flush(timeout)

    def wait(self, cond, timeout=10):
        """Read (and write) until cond() holds, the connection closes or
        timeout passes. Returns cond()."""
        deadline = time.monotonic() + timeout
        for _ in range(10**7):
            if cond():
                return True
            if self.closed:
                return cond()
            left = deadline - time.monotonic()
            if left <= 0:
                return cond()
            self.poll(min(left, 1.0))
        return cond()

    def wait_closed(self, timeout=30):
        return self.wait(lambda: self.closed, timeout)

    # ------------------------------------------------------------ frames in
    def _parse(self):
        buf = self.inbuf
        pos = 0
        while len(buf) - pos >= 9:
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if len(buf) - pos < 9 + length:
                break
            ftype = buf[pos + 3]
            flags = buf[pos + 4]
            sid = struct.unpack_from(">I", buf, pos + 5)[0] & 0x7FFFFFFF
            payload = bytes(buf[pos + 9:pos + 9 + length])
            pos += 9 + length
            self._on_frame(ftype, flags, sid, payload)
        if pos:
            del buf[:pos]

    def stream(self, sid):
        s = self.streams.get(sid)
        if s is None:
            s = self.streams[sid] = Stream(sid)
        return s

    def _on_frame(self, ftype, flags, sid, payload):
        self.frames_total += 1
        if ftype < 16:
            self.frame_counts[ftype] += 1
        if ftype == DATA:
            s = self.stream(sid)
            body = payload
            if flags & PADDED and payload:
                body = payload[1:len(payload) - payload[0]]
            s.body += body
            s.data_frames.append((len(payload), flags))
            if flags & END_STREAM:
                s.ended = True
            if self.auto_window and payload and not self.closed:
                self.queue(window_update_frame(0, len(payload)))
                if not s.ended:
                    self.queue(window_update_frame(sid, len(payload)))
        elif ftype == HEADERS or ftype == CONTINUATION:
            if ftype == HEADERS:
                p = payload
                if flags & PADDED:
                    pad = p[0]
                    p = p[1:len(p) - pad]
                if flags & PRIORITY_FLAG:
                    p = p[5:]
                self.pending_block = (sid, flags, bytearray(p))
            elif self.pending_block is not None:
                self.pending_block[2].extend(payload)
            if flags & END_HEADERS and self.pending_block is not None:
                bsid, bflags, block = self.pending_block
                self.pending_block = None
                self._on_header_block(bsid, bflags, bytes(block))
        elif ftype == RST_STREAM:
            self.stream(sid).rst = struct.unpack(">I", payload[:4])[0] if len(payload) >= 4 else -1
        elif ftype == SETTINGS:
            if flags & ACK:
                self.settings_acked += 1
            else:
                for i in range(0, len(payload) - 5, 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    self.server_settings[k] = v
                self.server_settings_seen = True
                if not self.closed:
                    self.queue(settings_frame(ack=True))
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks.append(payload)
            elif self.auto_ping and not self.closed:
                self.queue(ping_frame(payload, ack=True))
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaways.append((last & 0x7FFFFFFF, code, payload[8:]))

    def _on_header_block(self, sid, flags, block):
        headers = self.dec.decode(block)
        s = self.stream(sid)
        status = None
        for k, v in headers:
            if k == ":status":
                status = v
        if s.status is None and status is not None and status.startswith("1"):
            s.informational.append(headers)
        elif s.status is None:
            s.status = int(status) if status is not None else -1
            s.headers = [(k, v) for k, v in headers]
        else:
            s.trailers = headers
        if flags & END_STREAM:
            s.ended = True

    # ------------------------------------------------------------ frames out
    def handshake(self, timeout=10):
        """Preface, our SETTINGS, and the server's SETTINGS read and
        acknowledged."""
        self.queue(PREFACE + settings_frame(self.settings))
        self.flush(timeout)
        if not self.wait(lambda: self.server_settings_seen, timeout):
            raise Closed("no SETTINGS from the server (closed=%s, goaway=%s)" % (self.closed, self.goaways))
        self.flush(timeout)
        return self

    def new_sid(self):
        sid = self.next_sid
        self.next_sid += 2
        return sid

    def encode(self, headers):
        return self.enc.encode(headers, huffman=False)

    def request_headers(self, method, path, extra=()):
        return [(":method", method), (":scheme", "http"), (":authority", self.authority),
                (":path", path)] + list(extra)

    def headers_bytes(self, sid, headers, end_stream=True):
        return header_block_frames(sid, self.encode(headers), end_stream,
                                   self.server_settings.get(SETTINGS_MAX_FRAME_SIZE, 16384))

    def request(self, method, path, extra=(), end_stream=True, body=None, send=True):
        """Send a request on a new stream; returns its id."""
        sid = self.new_sid()
        self.stream(sid)
        hdrs = self.request_headers(method, path, extra)
        self.queue(self.headers_bytes(sid, hdrs, end_stream and body is None))
        if body is not None:
            self.queue(data_frame(sid, body, end_stream))
        if send:
            self.flush()
        return sid

    def raw_request(self, headers, end_stream=True, body=None):
        """Send exactly these header fields (in order, as given) on a new
        stream; returns its id."""
        sid = self.new_sid()
        self.stream(sid)
        self.queue(self.headers_bytes(sid, headers, end_stream and body is None))
        if body is not None:
            self.queue(data_frame(sid, body, end_stream))
        self.flush()
        return sid

    def response(self, sid, timeout=10):
        s = self.stream(sid)
        self.wait(lambda: s.done, timeout)
        return s

    def ping_round_trip(self, timeout=10, data=b"h2tests!"):
        n = len(self.ping_acks)
        self.send(ping_frame(data))
        return self.wait(lambda: len(self.ping_acks) > n, timeout)

    def goaway_desc(self):
        if not self.goaways:
            return "no GOAWAY"
        return ", ".join("GOAWAY(last %d, %s%s)" % (last, err_name(code), (", %r" % debug) if debug else "")
                         for last, code, debug in self.goaways)

    def summary(self):
        counts = ", ".join("%s %d" % (FRAME_NAMES[i], n) for i, n in enumerate(self.frame_counts[:10]) if n)
        return "%s; %s; frames in: %s" % (self.goaway_desc(),
                                          ("closed (reset)" if self.reset else "closed") if self.closed
                                          else "still open", counts or "none")


# ---------------------------------------------------------------- python3-h2 client
def h2_get(port, path, headers=(), timeout=10):
    """A well-behaved client built on python3-h2 (hyper-h2): a new connection,
    one GET, the whole response. Returns (status, headers dict, body)."""
    import h2.config
    import h2.connection
    import h2.events
    cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    c = h2.connection.H2Connection(config=cfg)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        c.initiate_connection()
        sock.sendall(c.data_to_send())
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                             (":authority", "127.0.0.1:%d" % port), (":path", path)] + list(headers),
                       end_stream=True)
        sock.sendall(c.data_to_send())
        status, hdrs, body = None, {}, bytearray()
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            if time.monotonic() > deadline:
                raise TimeoutError("h2 GET %s: no complete answer in %ds" % (path, timeout))
            data = sock.recv(65536)
            if not data:
                raise Closed("h2 GET %s: connection closed before the answer ended" % path)
            for ev in c.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    hdrs = dict(ev.headers)
                    status = int(hdrs[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise Closed("h2 GET %s: RST_STREAM(%s)" % (path, ev.error_code))
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    raise Closed("h2 GET %s: GOAWAY(%s)" % (path, ev.error_code))
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    c.close_connection()
                    try:
                        sock.sendall(c.data_to_send())
                    except OSError:
                        pass
                    return status, hdrs, bytes(body)
            out = c.data_to_send()
            if out:
                sock.sendall(out)
    finally:
        sock.close()
    raise TimeoutError("h2 GET %s: too many reads" % path)


# ---------------------------------------------------------------- the server
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Drover:
    """The real drover in the foreground (-c FILE), its stderr read line by
    line by a thread, so a test waits for a log line as it is written."""

    def __init__(self, tmpdir, name, body, binary=None):
        self.binary = binary or os.environ.get("DROVER_BIN") or "./src/drover"
        self.ini = os.path.join(tmpdir, name + ".ini")
        with open(self.ini, "w") as f:
            f.write(body)
        self.logpath = os.path.join(tmpdir, name + ".log")
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([self.binary, "-c", self.ini], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()

    def _read_log(self):
        with open(self.logpath, "w") as log:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                log.write(line)
                log.flush()
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=20, start=0):
        """Index of the first log line from start matching pattern."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            for _ in range(10**6):
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        return -1
                    if rx.search(line):
                        return i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return -1
                self.cond.wait(left)
        return -1

    def log_tail(self, n=30):
        with self.cond:
            return "".join(l for l in self.lines[-n:] if l)

    def alive(self):
        return self.proc.poll() is None

    def workers(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        return self.proc.returncode


def proc_kib(pid, key):
    """VmRSS / VmHWM of a process in KiB (None if it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak(pid):
    """Reset VmHWM (the peak RSS) of pid to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
