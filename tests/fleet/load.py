#!/usr/bin/python3
"""A bounded HTTP load client for tests/fleet/fleet.sh.

THREADS keep-alive connections to HOST:PORT, each sending GET PATH one
request at a time with a short pause between them (a steady trickle, not a
benchmark), until STOPFILE exists, MAX_REQUESTS have been sent, or
MAX_SECONDS have passed. Every response is checked: status 200 and the
expected body; anything else (another status, a short body, a reset, a
timeout) is a failure, written to FAILLOG with its time and what it was.
The counts ("sent ok failed") are rewritten to STATUSFILE every 50 ms and
at the end, so the test can read them at any moment.

Usage: load.py HOST PORT PATH BODYFILE THREADS STOPFILE STATUSFILE FAILLOG
               MAX_REQUESTS MAX_SECONDS
"""
import http.client
import os
import sys
import threading
import time

(host, port, path, bodyfile, threads, stopfile, statusfile, faillog, max_requests,
 max_seconds) = sys.argv[1:11]
port, threads, max_requests, max_seconds = int(port), int(threads), int(max_requests), float(max_seconds)
expected = open(bodyfile, "rb").read()
lock = threading.Lock()
counts = {"sent": 0, "ok": 0, "failed": 0}
deadline = time.monotonic() + max_seconds
done = threading.Event()
fails = open(faillog, "a")


def take_one():
    """Count one request about to go out; False when the bound is reached."""
    with lock:
        if counts["sent"] >= max_requests:
            return False
        counts["sent"] += 1
        return True


def result(ok, why=""):
    with lock:
        counts["ok" if ok else "failed"] += 1
        if not ok:
            fails.write("%.3f %s\n" % (time.time(), why))
            fails.flush()


def client(i):
    conn = None
    while not done.is_set() and time.monotonic() < deadline and not os.path.exists(stopfile):
        if not take_one():
            break
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", path, headers={"Host": "fleet.test"})
            r = conn.getresponse()
            body = r.read()
            if r.status == 200 and body == expected:
                result(True)
            else:
                result(False, "thread %d: status %d, %d bytes" % (i, r.status, len(body)))
            if (r.getheader("Connection") or "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # a reset, a timeout, a closed connection
            result(False, "thread %d: %r" % (i, e))
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(0.004)
    if conn is not None:
        conn.close()


def write_status():
    with lock:
        text = "%d %d %d\n" % (counts["sent"], counts["ok"], counts["failed"])
    tmp = statusfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, statusfile)


workers = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(threads)]
for w in workers:
    w.start()
while any(w.is_alive() for w in workers):
    write_status()
    time.sleep(0.05)
done.set()
write_status()
sys.exit(0)
