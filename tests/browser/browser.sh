#!/bin/bash
# A real browser against the real drover: headless Chromium, driven over the
# DevTools protocol (tests/browser/cdp.py, on a pipe: no debugging port),
# loads a page with a stylesheet, an image and a short video over TLS
# (ALPN h2) and over a plain listener (HTTP/1.1). The page's own script
# reports what the browser measured (performance entries' nextHopProtocol,
# the computed style, the image's natural size, the video's state) and
# writes it into a visible table; this script checks it, the screenshot and
# drover's access log, then reloads the page and looks for the 304.
#
# The video is a WebM that the same browser records first from a canvas
# (MediaRecorder), as no encoder is assumed on the machine; if it cannot,
# the video checks are skipped (reported, not failed).
#
# The screenshot of the page over h2 goes to $DROVER_BROWSER_SHOT if set,
# else into the temporary directory, removed at the end unless
# DROVER_BROWSER_KEEP is set (the site, drover's and Chromium's logs, the
# access log and what the browser reported, result.json, stay there too).
#
# Traffic goes to 127.0.0.1 only: the URLs are IP literals, every host name
# resolves to nothing (--host-resolver-rules) and every non-loopback request
# goes to a proxy on 127.0.0.1 that answers nothing and notes it (a canary
# proves it; Chromium's own background requests caught there are listed).
# Exit 77 (skipped) if Chromium is missing or cannot start here.
set -u
case "${DROVER_SLOW_TESTS:-yes}" in
no | 0 | off)
	echo "SKIP: DROVER_SLOW_TESTS=$DROVER_SLOW_TESTS (CI runs this once, in the plain build)"
	exit 77
	;;
esac

drover=${DROVER_BIN:-./src/drover}
srcdir=${srcdir:-.}
py=/usr/bin/python3
chromium=${CHROMIUM:-}
if [ -z "$chromium" ]; then
	# Debian's /usr/bin/chromium is a launcher adding its own defaults
	# (extensions, GPU rasterisation): run the browser itself.
	if [ -x /usr/lib/chromium/chromium ]; then
		chromium=/usr/lib/chromium/chromium
	else
		chromium=$(command -v chromium || command -v chromium-browser || true)
	fi
fi
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
	echo "SKIP: chromium is not installed"
	exit 77
fi
for tool in openssl "$py"; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done

. "$(dirname "$0")/../lib.sh"
t_init browser
t_keep=${DROVER_BROWSER_KEEP:-}
trap_pid=
t_on_exit() {
	if [ -n "${hap_pid:-}" ]; then
		kill "$hap_pid" 2>/dev/null
		wait "$hap_pid" 2>/dev/null
	fi
	if [ -n "$trap_pid" ]; then
		kill "$trap_pid" 2>/dev/null
		wait "$trap_pid" 2>/dev/null
	fi
	# cdp.py closes the browser; if it was killed, its process group goes here
	if [ -s "$dir/chromium.pid" ] && kill -0 "$(cat "$dir/chromium.pid")" 2>/dev/null; then
		kill -KILL -- "-$(cat "$dir/chromium.pid")" 2>/dev/null
	fi
}

# result NAME PYTHON-EXPRESSION: true on what the browser reported, as r
result() {
	local name=$1
	check "$name" "$py" -c '
import json, sys
r = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
	print("false:", sys.argv[2])
	json.dump(r, sys.stdout, indent=1)
	sys.exit(1)' "$dir/result.json" "$2"
}
logged() { # logged REGEX: a line of the access log matches
	grep -E -q "$1" "$dir/access.log" || { echo "no line matches: $1"; cat "$dir/access.log"; false; }
}

# ---------------------------------------------------------------- the site
www=$dir/www
mkdir -p "$www" "$dir/profile"
"$py" - "$www/pic.png" <<'EOF'
# A 128 x 64 RGB PNG: a gradient with a dark frame.
import struct, sys, zlib
w, h = 128, 64
rows = b""
for y in range(h):
    rows += b"\0"
    for x in range(w):
        edge = x < 4 or y < 4 or x >= w - 4 or y >= h - 4
        rows += bytes((20, 20, 20) if edge else (x * 2, y * 4, 200))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
    chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
EOF
cat >"$www/style.css" <<'EOF'
body { font-family: sans-serif; background: rgb(250, 246, 230); margin: 20px; }
h1 { background: rgb(20, 110, 180); color: rgb(255, 255, 255); padding: 12px; font-size: 22px; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid rgb(120, 120, 120); padding: 3px 8px; text-align: left; }
td.protocol { font-weight: bold; color: rgb(0, 120, 0); }
EOF
cat >"$www/index.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>drover: a page in a real browser</title>
<link rel="stylesheet" href="style.css">
</head><body>
<h1 id="title">drover: a page, its stylesheet, an image and a video</h1>
<p><img id="pic" src="pic.png" alt="a gradient"> <video id="clip" src="clip.webm" muted preload="auto" width="160" height="120"></video></p>
<table id="resources"><thead><tr><th>resource</th><th>type</th><th>status</th><th>protocol</th></tr></thead><tbody></tbody></table>
<script>
// Once the page and the video's first frame are in (or 8 s passed), list
// every resource with the protocol it came over, and answer the test.
window.droverResult = new Promise(function (resolve) {
	function videoSettled() {
		return new Promise(function (done) {
			var v = document.getElementById('clip');
			if (v.readyState >= 2 || v.error) return done();
			v.addEventListener('loadeddata', done);
			v.addEventListener('error', done);
			setTimeout(done, 8000);
		});
	}
	function row(name, type, status, protocol) {
		var tr = document.createElement('tr');
		[name, type, String(status), protocol].forEach(function (text, i) {
			var td = document.createElement('td');
			td.textContent = text;
			if (i === 3) td.className = 'protocol';
			tr.appendChild(td);
		});
		document.querySelector('#resources tbody').appendChild(tr);
	}
	window.addEventListener('load', function () {
		videoSettled().then(function () {
			var nav = performance.getEntriesByType('navigation')[0];
			var res = performance.getEntriesByType('resource').map(function (e) {
				return {name: e.name, type: e.initiatorType, protocol: e.nextHopProtocol, status: e.responseStatus};
			});
			row(nav.name, 'navigation (' + nav.type + ')', nav.responseStatus, nav.nextHopProtocol);
			res.forEach(function (e) { row(e.name, e.type, e.status, e.protocol); });
			var title = getComputedStyle(document.getElementById('title'));
			var img = document.getElementById('pic');
			var v = document.getElementById('clip');
			resolve({
				url: location.href,
				navigation: nav.nextHopProtocol,
				navigation_type: nav.type,
				resources: res,
				table_rows: document.querySelectorAll('#resources tbody tr').length,
				table_protocols: Array.prototype.map.call(document.querySelectorAll('#resources td.protocol'),
					function (td) { return td.textContent; }),
				title_background: title.backgroundColor,
				title_color: title.color,
				image: {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight},
				video: {readyState: v.readyState, width: v.videoWidth, height: v.videoHeight,
					error: v.error ? v.error.code : null}
			});
		});
	});
});
</script>
</body></html>
EOF
cat >"$www/record.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>recorder</title></head><body>
<script>
// 1.2 s of a 160 x 120 canvas animation as WebM, base64 (null if this
// browser cannot record).
window.droverRecord = function () {
	return new Promise(function (resolve) {
		var types = ['video/webm;codecs=vp8', 'video/webm;codecs=vp9', 'video/webm'];
		var type = types.find(function (t) { return window.MediaRecorder && MediaRecorder.isTypeSupported(t); });
		if (!type) return resolve(null);
		var c = document.createElement('canvas');
		c.width = 160; c.height = 120;
		document.body.appendChild(c);
		var g = c.getContext('2d'), n = 0;
		function draw() {
			g.fillStyle = 'rgb(200, 60, 40)'; g.fillRect(0, 0, 160, 120);
			g.fillStyle = 'rgb(255, 255, 255)'; g.fillRect((n * 6) % 160, 40, 30, 40);
			n++;
		}
		draw();
		var rec = new MediaRecorder(c.captureStream(25), {mimeType: type}), chunks = [];
		rec.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
		rec.onerror = function () { resolve(null); };
		rec.onstop = function () {
			var r = new FileReader();
			r.onload = function () { resolve(r.result.split(',')[1] || null); };
			r.readAsDataURL(new Blob(chunks, {type: 'video/webm'}));
		};
		var timer = setInterval(draw, 40);
		rec.start(200);
		setTimeout(function () { clearInterval(timer); rec.stop(); }, 1200);
	});
};
</script>
</body></html>
EOF

# ---------------------------------------------------------------- drover
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
# The browser trusts this one key (its SPKI hash), not every bad certificate.
spki=$(openssl x509 -in "$dir/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | openssl enc -base64)

p_tls=$(t_free_port)
p_h1=$(t_free_port)
p_proxy=$(t_free_port) # the browser's proxy for anything not on loopback
p_lb=$(t_free_port)    # drover's listener behind HAProxy (PROXY protocol v2)
p_hap=$(t_free_port)   # HAProxy's frontend
cat >"$dir/drover.ini" <<EOF
[server]
workers = 2
shutdown_timeout = 10s
control_socket = off
[listener tls]
address = 127.0.0.1:$p_tls
protocol = http
tls = yes
[listener plain]
address = 127.0.0.1:$p_h1
protocol = http
[listener lb]
address = 127.0.0.1:$p_lb
protocol = http
proxy_protocol = yes
[certificate main]
certificate = $dir/cert.pem
private_key = $dir/key.pem
[http]
root = $www
access_log = $dir/access.log
EOF

t_start_drover "$dir/drover.ini" || exit 1
h2="https://127.0.0.1:$p_tls"
h1="http://127.0.0.1:$p_h1"
# The browser's proxy: anything not for loopback would arrive here (and get
# no answer); it notes the first line of every connection.
: >"$dir/proxy.log"
"$py" -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
	c, _ = s.accept()
	c.settimeout(1)
	try:
		line = c.recv(512).split(b"\r\n")[0]
	except OSError:
		line = b""
	line = line or b"(a connection that sent nothing)"
	with open(sys.argv[2], "a") as f:
		f.write(line.decode("latin-1") + "\n")
	c.close()' "$p_proxy" "$dir/proxy.log" &
trap_pid=$!

# HAProxy in front of drover, as in tests/fleet (there in network
# namespaces): the browser's third view of the page goes through it.
hap_pid=
lb_step=
if command -v haproxy >/dev/null; then
	cat >"$dir/haproxy.cfg" <<EOF
global
	log stderr format short local0 notice
defaults
	mode http
	timeout connect 2s
	timeout client 10s
	timeout server 10s
frontend fe
	bind 127.0.0.1:$p_hap
	default_backend drover
backend drover
	http-reuse always
	server d 127.0.0.1:$p_lb send-proxy-v2
EOF
	haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
	hap_pid=$!
	# Until it listens (bounded): a connection that is accepted.
	for _ in $(seq 100); do
		"$py" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' \
			"$p_hap" 2>/dev/null && break
		kill -0 "$hap_pid" 2>/dev/null || break
		"$py" -c 'import time; time.sleep(0.05)'
	done
	lb_step=', {"do": "navigate", "url": "http://127.0.0.1:'"$p_hap"'/", "name": "lb"}'
else
	echo "note: haproxy is not installed: the view through HAProxy is left out"
fi

# ---------------------------------------------------------------- the browser
shot=${DROVER_BROWSER_SHOT:-$dir/h2-screenshot.png}
cat >"$dir/script.json" <<EOF
[
 {"do": "record_video", "page": "$h1/record.html", "path": "$www/clip.webm"},
 {"do": "navigate", "url": "$h2/", "name": "h2"},
 {"do": "screenshot", "path": "$shot"},
 {"do": "reload", "name": "h2_reload"},
 {"do": "navigate", "url": "$h1/", "name": "h1"}$lb_step,
 {"do": "probe", "url": "http://drover-canary.invalid/", "name": "canary"}
]
EOF
flags=(--headless=new --disable-gpu --disable-dev-shm-usage --no-first-run --no-default-browser-check
	--disable-background-networking --disable-component-update --disable-sync --disable-default-apps
	--disable-extensions --disable-domain-reliability --disable-client-side-phishing-detection --no-pings
	--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,CertificateTransparencyComponentUpdater,AutofillServerCommunication,NetworkTimeServiceQuerying
	--disable-breakpad --metrics-recording-only --disable-component-extensions-with-background-pages
	--enable-automation --password-store=basic
	--mute-audio --hide-scrollbars --window-size=1000,700
	--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" --proxy-server="http://127.0.0.1:$p_proxy"
	--ignore-certificate-errors-spki-list="$spki")
if [ "$(id -u)" -eq 0 ]; then
	flags+=(--no-sandbox) # Chromium's sandbox refuses to run as root
fi
start=$SECONDS
timeout 60 "$py" "$srcdir/tests/browser/cdp.py" "$chromium" "$dir/profile" "$dir/script.json" "$dir/result.json" "${flags[@]}"
status=$?
if [ "$status" -eq 2 ]; then
	echo "SKIP: chromium does not start here:"
	tail -n 15 "$dir/chromium.log"
	exit 77
fi
echo "browser: $((SECONDS - start)) s (exit status $status)"
check "the browser ran every step" "$py" -c '
import json, sys
r = json.load(open(sys.argv[1]))
for e in r["errors"]:
	print(e)
sys.exit(1 if r["errors"] else 0)' "$dir/result.json"
if [ ! -f "$dir/result.json" ]; then
	tail -n 30 "$dir/chromium.log"
	t_summary
	exit 1
fi
video=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("video"))' "$dir/result.json")

# Over TLS: the page rendered, all of it over h2
result "h2: the page's script ran and filled its table (a row per resource)" \
	'r["h2"]["table_rows"] == 1 + len(r["h2"]["resources"]) >= 3'
result "h2: the stylesheet applied (computed style of the heading)" \
	'r["h2"]["title_background"] == "rgb(20, 110, 180)" and r["h2"]["title_color"] == "rgb(255, 255, 255)"'
result "h2: the image loaded (128 x 64)" \
	'r["h2"]["image"] == {"complete": True, "width": 128, "height": 64}'
result "h2: the page came over h2" 'r["h2"]["navigation"] == "h2"'
result "h2: style.css and pic.png are among the resources" \
	'{"'"$h2"'/style.css", "'"$h2"'/pic.png"} <= {e["name"] for e in r["h2"]["resources"]}'
result "h2: every resource came over h2" 'all(e["protocol"] == "h2" for e in r["h2"]["resources"])'
result "h2: the table's protocol column says h2 on every row" \
	'r["h2"]["table_protocols"] == ["h2"] * r["h2"]["table_rows"]'
result "h2: the browser's network layer got the page and 3 resources, all over h2, none from its cache" \
	'len(r["h2"]["network"]) >= 4 and all(n["protocol"] == "h2" and not n["from_cache"] for n in r["h2"]["network"])'
if [ "$video" = ok ]; then
	result "h2: the video loaded (its first frame, 160 x 120)" \
		'r["h2"]["video"]["error"] is None and r["h2"]["video"]["readyState"] >= 2 and r["h2"]["video"]["width"] == 160'
else
	echo "SKIP: video checks (this browser could not record a WebM: $video)"
fi

check "screenshot: a 1000 x 700 PNG showing the styled heading and the image" "$py" - "$shot" <<'EOF'
# Decode the PNG (8-bit RGB or RGBA, not interlaced) and count the pixels of
# the heading's background colour, which only the stylesheet paints (the
# heading is 960 x 50), and of the image's dark frame (1472 pixels).
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, ihdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        ihdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = ihdr
print("PNG %d x %d, %d bytes" % (w, h, len(data)))
assert (w, h) == (1000, 700), "size"
assert depth == 8 and ctype in (2, 6) and interlace == 0, "format %s" % (ihdr,)
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, count, frame = bytearray(stride), 0, 0
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        px = line[x:x + 3]
        if abs(px[0] - 20) <= 2 and abs(px[1] - 110) <= 2 and abs(px[2] - 180) <= 2:
            count += 1
        elif max(abs(px[0] - 20), abs(px[1] - 20), abs(px[2] - 20)) <= 1:
            frame += 1
    prev = line
print("%d pixels of the heading's colour, %d of the image's frame" % (count, frame))
assert count >= 40000, "the heading is not there"
assert frame >= 1400, "the image is not there"
EOF

# Drover's side: the browser's requests, over HTTP/2
check "access log: GET / over HTTP/2.0, 200" logged '"GET / HTTP/2\.0" 200 .*Chrome'
check "access log: GET /style.css over HTTP/2.0, 200" logged '"GET /style\.css HTTP/2\.0" 200 '
check "access log: GET /pic.png over HTTP/2.0, 200" logged '"GET /pic\.png HTTP/2\.0" 200 '
if [ "$video" = ok ]; then
	check "access log: GET /clip.webm over HTTP/2.0, 200 or 206" logged '"GET /clip\.webm HTTP/2\.0" 20[06] '
fi

# The reload revalidates: the page is asked for again with a validator, 304
result "reload: the page came over h2 again, as a reload, every response over h2" \
	'r["h2_reload"]["navigation"] == "h2" and r["h2_reload"]["navigation_type"] == "reload" and all(n["protocol"] == "h2" for n in r["h2_reload"]["network"])'
check "access log: the reload's conditional GET / answered 304 (no body)" logged '"GET / HTTP/2\.0" 304 - '
"$py" -c '
import json, sys
n = json.load(open(sys.argv[1]))["h2_reload"]["network"]
print("note: on the reload the browser reported %s" % ", ".join("%s %s" % (e["url"].rsplit("/", 1)[1] or "/", e["status"]) for e in n))' "$dir/result.json"

# Over the plain listener: the same page, HTTP/1.1
result "http/1.1: the page rendered (styled, image loaded)" \
	'r["h1"]["title_background"] == "rgb(20, 110, 180)" and r["h1"]["image"]["width"] == 128 and r["h1"]["table_rows"] >= 3'
result "http/1.1: the page and every resource came over http/1.1 (timing entries and network layer)" \
	'r["h1"]["navigation"] == "http/1.1" and all(e["protocol"] == "http/1.1" for e in r["h1"]["resources"] + r["h1"]["network"]) and len(r["h1"]["network"]) >= 4'
check "access log: GET /style.css over HTTP/1.1, 200" logged '"GET /style\.css HTTP/1\.1" 200 '
check "access log: GET /clip.webm over HTTP/1.1, 200 or 206" logged '"GET /clip\.webm HTTP/1\.1" 20[06] '

# Through HAProxy (PROXY protocol v2 to drover): the same page
if [ -n "$lb_step" ]; then
	result "through HAProxy: the page rendered (styled, image loaded)" \
		'r["lb"]["title_background"] == "rgb(20, 110, 180)" and r["lb"]["image"]["width"] == 128 and r["lb"]["table_rows"] >= 3'
	check "through HAProxy: drover logged the page and its stylesheet" \
		sh -c "test \$(grep -c '\"GET /style\\.css HTTP/1\\.1\" [23]0[04] ' '$dir/access.log') -ge 2"
fi

# Nothing left 127.0.0.1: host names resolve to nothing and the proxy on
# 127.0.0.1 took everything not for loopback. The canary (a host name, last)
# proves the trap was armed. Chromium's own background requests that no
# switch silences (this 156: accounts.google.com, the component updater)
# end there too; they are listed, not failed on.
result "the browser's request for a host name ended at the trap on 127.0.0.1" \
	'r["canary"] in ("net::ERR_EMPTY_RESPONSE", "net::ERR_CONNECTION_CLOSED", "net::ERR_TUNNEL_CONNECTION_FAILED")'
check "the trap saw the canary" grep -q '^GET http://drover-canary\.invalid/ ' "$dir/proxy.log"
grep -v 'drover-canary\.invalid' "$dir/proxy.log" | cut -c1-100 | sort | uniq -c |
	sed 's/^ */note: caught by the trap (never left 127.0.0.1): /'

kill -TERM "$pid"
wait "$pid"
status=$?
pid=
check "graceful stop exits 0" test "$status" -eq 0

if [ "$failed" -gt 0 ]; then
	for f in drover.log access.log proxy.log chromium.log; do
		echo "--- $f (last lines)"
		grep -v 'dbus/' "$dir/$f" | tail -n 25
	done
fi
t_summary
