#!/usr/bin/python3
"""Drive headless Chromium over the DevTools protocol for tests/browser/browser.sh.

The protocol runs over a pipe (--remote-debugging-pipe: Chromium reads
NUL-terminated JSON messages from fd 3 and writes them to fd 4), so no
debugging port is opened and no websocket client is needed (stdlib only).

    cdp.py CHROMIUM PROFILE_DIR SCRIPT.json RESULT.json

SCRIPT.json is a list of steps, run in order in one tab of one browser
(one profile, one HTTP cache):
    {"do": "navigate", "url": U, "name": N}  load U, wait for its load event,
        then await the page's window.droverResult and keep it as N, with
        N.network: the responses the browser's network layer reported
    {"do": "reload", "name": N}              the same after a reload (F5)
    {"do": "probe", "url": U, "name": N}     navigate to U, keep its error as N
    {"do": "screenshot", "path": P}          PNG of the viewport to P
    {"do": "record_video", "page": U, "path": P}  load U (a page that
        defines window.droverRecord(), a promise of a base64 WebM) and
        write the decoded video to P; its error, if any, is kept as "video"
RESULT.json gets {N: what the page answered, ..., "errors": [...]}.
Exit status 2: the browser did not start or answer (the caller skips).
"""
import base64
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time

STEP_TIMEOUT = 20.0


class Browser:
    def __init__(self, chromium, profile, extra):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # The child's ends become exactly fds 3 and 4: move them above 9
        # first so that the dup2s cannot overwrite each other.
        r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def child_fds():
            os.dup2(r, 3)
            os.dup2(w, 4)

        args = [chromium, "--remote-debugging-pipe", "--user-data-dir=" + profile] + extra + ["about:blank"]
        self.log = open(os.path.join(profile, "..", "chromium.log"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     preexec_fn=child_fds, pass_fds=(3, 4), start_new_session=True)
        # For the caller's clean-up, should this script be killed: the
        # browser leads a process group of its own.
        with open(os.path.join(profile, "..", "chromium.pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)
        os.close(r)
        os.close(w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def send(self, method, params=None, session=True, timeout=STEP_TIMEOUT):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self.read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the browser")
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise EOFError("the browser closed its pipe (exit status %s)" % self.proc.poll())
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def wait_event(self, method, timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["method"] == method:
                    return self.events.pop(i)
            m = self.read(deadline)
            if "method" in m:
                self.events.append(m)

    def evaluate(self, expression, timeout=STEP_TIMEOUT):
        r = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                           "returnByValue": True, "timeout": timeout * 1000}, timeout=timeout + 2)
        if "exceptionDetails" in r:
            raise RuntimeError("page script: %s" % json.dumps(r["exceptionDetails"])[:500])
        return r["result"].get("value")

    def load(self, action):
        self.events = [e for e in self.events if e["method"] not in ("Page.loadEventFired", "Network.responseReceived")]
        r = action()
        if r.get("errorText"):
            raise RuntimeError("navigation failed: %s" % r["errorText"])
        self.wait_event("Page.loadEventFired")

    def responses(self):
        """What the network layer reported for the responses since load()."""
        got = [e for e in self.events if e["method"] == "Network.responseReceived"]
        self.events = [e for e in self.events if e["method"] != "Network.responseReceived"]
        return [{"url": e["params"]["response"]["url"], "type": e["params"]["type"],
                 "status": e["params"]["response"]["status"],
                 "protocol": e["params"]["response"].get("protocol"),
                 "from_cache": e["params"]["response"].get("fromDiskCache", False)} for e in got]

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def main():
    # timeout(1)'s SIGTERM unwinds through the finally that closes the browser
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    chromium, profile, script_path, result_path = sys.argv[1:5]
    extra = sys.argv[5:]
    with open(script_path) as f:
        script = json.load(f)
    result = {"errors": []}
    b = Browser(chromium, profile, extra)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"}, session=False)
        b.session = b.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                           session=False)["sessionId"]
        b.send("Page.enable")
        b.send("Network.enable")
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": 1000, "height": 700, "deviceScaleFactor": 1, "mobile": False})
    except Exception as e:
        print("browser did not start: %s" % e, file=sys.stderr)
        b.close()
        sys.exit(2)
    try:
        for step in script:
            try:
                run_step(b, step, result)
            except Exception as e:
                result["errors"].append("%s: %s" % (json.dumps(step), e))
    finally:
        b.close()
        with open(result_path, "w") as f:
            json.dump(result, f, indent=1)


def run_step(b, step, result):
    do = step["do"]
    if do in ("navigate", "reload"):
        if do == "navigate":
            b.load(lambda: b.send("Page.navigate", {"url": step["url"]}))
        else:
            b.load(lambda: b.send("Page.reload", {}))
        page = b.evaluate("window.droverResult")
        if page is not None:
            page["network"] = b.responses()
        result[step["name"]] = page
    elif do == "probe":
        # A navigation expected to fail: keep what the browser said.
        r = b.send("Page.navigate", {"url": step["url"]})
        result[step["name"]] = r.get("errorText", "loaded")
    elif do == "screenshot":
        shot = b.send("Page.captureScreenshot", {"format": "png"})
        with open(step["path"], "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    elif do == "record_video":
        try:
            b.load(lambda: b.send("Page.navigate", {"url": step["page"]}))
            data = b.evaluate("window.droverRecord()")
        except Exception as e:
            result["video"] = str(e)
            return
        if not data:
            result["video"] = "the recorder gave nothing"
            return
        with open(step["path"], "wb") as f:
            f.write(base64.b64decode(data))
        result["video"] = "ok"


if __name__ == "__main__":
    main()
