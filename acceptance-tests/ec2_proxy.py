"""A fault-injecting HTTP proxy for the EC2/STS query API, in front of LocalStack.

Run as its own process:

    python ec2_proxy.py --port 4570 [--upstream http://127.0.0.1:4566]

Every request is forwarded to the upstream unchanged, except when a rule for its `Action=`
(parsed from the form body, where the AWS query protocol puts it) says otherwise. Control
requests are GETs under `/_proxy/` on the same port:

    /_proxy/counts                         JSON {"calls": {Action: n}, "held": {Action: n}}
    /_proxy/hold?action=A[&match=S]        hold every A call (whose body contains S) until released
    /_proxy/release?action=A&forward=0|1   let held A calls go on: forwarded (1) or dropped (0,
                                           the connection is closed without an answer)
    /_proxy/fail?action=A&status=400&code=C   answer every A call with an EC2 error C
    /_proxy/clear                          remove every rule (held calls are dropped)
    /_proxy/reset                          clear, and zero the counters

`calls` counts every request per action as it arrives (held and failed ones included).
"""
import argparse
import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
CALLS = {}
HELD = {}
HOLDS = {}  # action -> {"match": str, "event": Event, "forward": [bool]}
FAILS = {}  # action -> (status, code)


def _bump(table, action, n=1):
    with LOCK:
        table[action] = table.get(action, 0) + n


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ("127.0.0.1", 4566)

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _control(self):
        u = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        cmd = u.path[len("/_proxy/"):]
        action = q.get("action", "")
        with LOCK:
            if cmd == "counts":
                return self._send(200, json.dumps({"calls": CALLS, "held": HELD}))
            if cmd == "hold":
                HOLDS[action] = {"match": q.get("match", ""), "event": threading.Event(), "forward": [True]}
            elif cmd == "release":
                h = HOLDS.pop(action, None)
                if h:
                    h["forward"][0] = q.get("forward", "1") == "1"
                    h["event"].set()
            elif cmd == "fail":
                FAILS[action] = (int(q.get("status", "400")), q.get("code", "UnauthorizedOperation"))
            elif cmd in ("clear", "reset"):
                for h in HOLDS.values():
                    h["forward"][0] = False
                    h["event"].set()
                HOLDS.clear()
                FAILS.clear()
                if cmd == "reset":
                    CALLS.clear()
                    HELD.clear()
            else:
                return self._send(404, json.dumps({"error": f"unknown command {cmd}"}))
        return self._send(200, json.dumps({"ok": True}))

    def do_GET(self):
        if self.path.startswith("/_proxy/"):
            return self._control()
        return self._forward(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        return self._forward(body)

    def _forward(self, body):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", ["?"])[0]
        _bump(CALLS, action)
        with LOCK:
            hold = HOLDS.get(action)
            if hold and hold["match"] and hold["match"] not in body.decode("utf-8", "replace"):
                hold = None
            fail = FAILS.get(action)
        if hold:
            _bump(HELD, action)
            hold["event"].wait()
            if not hold["forward"][0]:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
        if fail:
            status, code = fail
            xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                   f"<Code>{code}</Code><Message>injected by ec2_proxy for {action}</Message>"
                   "</Error></Errors><RequestID>ec2-proxy</RequestID></Response>")
            return self._send(status, xml, "text/xml")
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            return self._send(502, json.dumps({"error": str(e)}))
        finally:
            conn.close()
        skip = ("transfer-encoding", "connection", "content-length", "keep-alive")
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in skip:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", default="http://127.0.0.1:4566")
    a = ap.parse_args()
    up = urllib.parse.urlparse(a.upstream)
    Proxy.upstream = (up.hostname, up.port or 80)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Proxy)
    srv.daemon_threads = True
    print(f"ec2_proxy listening on 127.0.0.1:{a.port} -> {a.upstream}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
