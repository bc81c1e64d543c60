#!/usr/bin/env python3
"""Bounded HTTP/1.1 load for tests/systemd/run.sh.

Runs CONNS client threads against http://HOST:PORT/PATH until STOPFILE
exists, MAX_SECONDS pass or MAX_REQUESTS requests were sent, checks every
response (status 200, complete body of Content-Length bytes, identical to
the first body seen) and prints one JSON summary line.

Half the threads use keep-alive (several requests per connection, as a
browser does), half open a fresh connection per request. A request is
"lost" when it got no complete, correct response: connection refused or
reset, a truncated or malformed response, a wrong status or body. The one
exception RFC 9112 section 9.3.1 allows clients to retry: the server closed
an idle keep-alive connection (clean EOF, no byte of the response) just as a
request was written on it. Those are counted as "retried" and re-sent on a
new connection, as curl and browsers do; they are not lost.

With --tls-ca, every connection is HTTPS, verified against that CA for
--servername; a server that closes without close_notify reads as an EOF.

"reconnects" counts the connections a keep-alive thread opened again
without the server having said Connection: close (one closed under it).

Exit status 0 when nothing was lost and at least one request succeeded.
"""
import argparse
import json
import os
import socket
import ssl
import threading
import time


class Lost(Exception):
    pass


class Retry(Exception):
    pass


def recv(sock, n):
    try:
        return sock.recv(n)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return b""


def read_response(sock, buf):
    """Read one response; return (status, headers, body, rest, close)."""
    while b"\r\n\r\n" not in buf:
        chunk = recv(sock, 65536)
        if not chunk:
            if not buf:
                raise Retry("EOF before any response byte")
            raise Lost("EOF inside response headers")
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise Lost("bad status line %r" % lines[0][:80])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip()
    if b"content-length" not in headers:
        raise Lost("no Content-Length")
    length = int(headers[b"content-length"])
    while len(buf) < length:
        chunk = recv(sock, 65536)
        if not chunk:
            raise Lost("EOF after %d of %d body bytes" % (len(buf), length))
        buf += chunk
    body, rest = buf[:length], buf[length:]
    close = headers.get(b"connection", b"").lower() == b"close"
    return status, headers, body, rest, close


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.lost = 0
        self.retried = 0
        self.sent = 0
        self.server_closes = 0
        self.reconnects = 0
        self.errors = {}
        self.first_body = None

    def add_error(self, msg):
        with self.lock:
            self.lost += 1
            self.errors[msg] = self.errors.get(msg, 0) + 1


def worker(args, stats, deadline, keepalive):
    sock = None
    buf = b""
    reused = False
    req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: drover-systemd-test\r\n%s\r\n" % (
        args.path, args.host, args.port, "" if keepalive else "Connection: close\r\n")).encode()
    pending_retry = False
    opened = 0
    closed_by_server = False
    while True:
        if not pending_retry:
            if time.monotonic() > deadline or os.path.exists(args.stopfile):
                break
            with stats.lock:
                if stats.sent >= args.max_requests:
                    break
                stats.sent += 1
        pending_retry = False
        try:
            if sock is None:
                sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
                if args.tls:
                    sock = args.tls.wrap_socket(sock, server_hostname=args.servername)
                buf = b""
                reused = False
                # A keep-alive client opening a connection again when the
                # server had not said Connection: close (a reload that
                # closed it: drover hands them over instead).
                if keepalive and opened and not closed_by_server:
                    with stats.lock:
                        stats.reconnects += 1
                opened += 1
                closed_by_server = False
            sock.sendall(req)
            status, headers, body, buf, close = read_response(sock, buf)
            if status != 200:
                raise Lost("status %d" % status)
            with stats.lock:
                if stats.first_body is None:
                    stats.first_body = body
                same = body == stats.first_body
            if not same:
                raise Lost("body differs (%d bytes)" % len(body))
            with stats.lock:
                stats.ok += 1
            if close or not keepalive:
                if close and keepalive:
                    closed_by_server = True
                    with stats.lock:
                        stats.server_closes += 1
                sock.close()
                sock = None
            else:
                reused = True
            if args.pause:
                time.sleep(args.pause)
        except Retry as e:
            if sock is not None:
                sock.close()
                sock = None
            if reused:
                with stats.lock:
                    stats.retried += 1
                pending_retry = True
            else:
                stats.add_error("fresh connection: " + str(e))
        except Lost as e:
            stats.add_error(str(e))
            if sock is not None:
                sock.close()
                sock = None
        except OSError as e:
            stats.add_error("%s%s" % ("reused connection: " if reused else "", e.strerror or e.__class__.__name__))
            if sock is not None:
                sock.close()
                sock = None
    if sock is not None:
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--path", default="/")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--pause", type=float, default=0.002, help="seconds between requests per thread")
    ap.add_argument("--stopfile", default="/nonexistent")
    ap.add_argument("--tls-ca", help="speak HTTPS, verifying the server against this CA file")
    ap.add_argument("--servername", default="localhost")
    args = ap.parse_args()
    args.tls = ssl.create_default_context(cafile=args.tls_ca) if args.tls_ca else None

    stats = Stats()
    deadline = time.monotonic() + args.max_seconds
    threads = [threading.Thread(target=worker, args=(args, stats, deadline, i % 2 == 0), daemon=True)
               for i in range(args.conns)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.max_seconds + 2 * args.timeout + 5)
    hung = sum(t.is_alive() for t in threads)
    out = {"ok": stats.ok, "lost": stats.lost + hung, "retried": stats.retried,
           "server_closes": stats.server_closes, "reconnects": stats.reconnects, "hung_threads": hung,
           "seconds": round(time.monotonic() - t0, 2), "errors": stats.errors}
    print(json.dumps(out, sort_keys=True), flush=True)
    return 0 if out["lost"] == 0 and stats.ok > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
