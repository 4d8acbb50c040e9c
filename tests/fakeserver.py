#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""fakeserver.py: a stand-in for the Data Nadhi server, for tests and the demo.

It runs as its own process with two HTTP/1.1 ports on 127.0.0.1:

  MAIN     what echopost talks to.  Any GET is the health check; a POST
           to any path ending in /log (a server under a base path) takes a
           delivery.  Everything else is 404.
  CONTROL  what the test talks to:
             POST /config  {...}   merge into the config ("state" switches
                                   up/down); answers the full config
             GET  /config          the current config and state, and
                                   "posts_in_flight": the POSTs to /log
                                   being answered now
             GET  /requests[?path=P]  recorded main-port requests; a
                                   POST /log's has "in_flight": how many
                                   were being answered when it came, itself
                                   included
             POST /reset           forget the recorded requests

Config fields (all optional when posting):
  state            "up" | "down"   down = MAIN refuses connections
  health_status    200             status for any GET on MAIN
  log_status       200             status for POST /log
  log_status_count null            if N, only the next N POSTs to /log get
                                   log_status, later ones get 200 (counts
                                   down; setting log_status alone resets it
                                   to null)
  retry_after      null            Retry-After header on non-2xx /log answers
  body             null            /log answer body (with log_status only);
                                   default {"ok":true} or {"error":"..."}
  delay            0               seconds to sleep before any MAIN answer
  log_delay        0               more seconds to sleep before a POST /log
                                   answer only (health checks stay quick)
  hangup           null            if N, the next N POSTs to /log get only
                                   part of their answer (see hangup_at), then
                                   the connection is closed; counts down like
                                   log_status_count.  Such requests are
                                   recorded with "hangup": true.
  serial           false           true: POST /log answers one at a time, as
                                   a server with one worker (with log_delay,
                                   the round trip grows with the requests
                                   in flight)
  hangup_at        "body"          what is sent before the close: "status"
                                   (the status line only), "headers" (the
                                   status line and some headers, without the
                                   blank line that ends them) or "body" (all
                                   headers, with a Content-Length, and half
                                   the body)

Command line:
  fakeserver.py [--port N] [--control-port N] [--state up|down]
                [--port-file PATH] [--record PATH] [--verbose]

Once both ports listen it prints {"port": P, "control_port": C, "pid": PID}
on stdout and writes it to --port-file; SIGTERM or SIGINT ends it (exit 0).

From a Python test in this folder:

  from fakeserver import FakeServer
  with FakeServer() as srv:            # a separate server process
      ...point echopost at srv.url...
      srv.set(log_status=503, log_status_count=2, retry_after="1")
      srv.down(); srv.up()
      assert srv.requests("/log")[0]["headers"]["datanadhi-api-key"] == "KEY"
"""

import argparse
import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
HERE = os.path.dirname(os.path.abspath(__file__))

DEFAULT_CONFIG = {
    "state": "up",
    "health_status": 200,
    "log_status": 200,
    "log_status_count": None,
    "retry_after": None,
    "body": None,
    "delay": 0.0,
    "log_delay": 0.0,
    "hangup": None,
    "hangup_at": "body",
    "serial": False,
}

HANGUP_POINTS = ("status", "headers", "body")

_NO_LOCK = contextlib.nullcontext()

VERBOSE = False


def _json_bytes(obj):
    return (json.dumps(obj) + "\n").encode("utf-8")


def _reason(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "status %d" % status


# --------------------------------------------------------------------------
# Shared HTTP plumbing

class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: every answer carries a Content-Length and
    every request body is read in full, so the connection stays in step."""

    protocol_version = "HTTP/1.1"
    timeout = None          # idle keep-alive connections may wait forever

    def log_message(self, fmt, *args):
        if VERBOSE:
            sys.stderr.write("fakeserver %s: %s\n" % (self.server.name, fmt % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer lines up to the empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()       # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def answer(self, status, body, headers=None):
        self.send_response(status)
        # 204 and 304 never carry a body (nor, for 204, a Content-Length).
        no_body = self.command == "HEAD" or status in (204, 304)
        self.send_header("Content-Type", "application/json")
        if status != 204:
            self.send_header("Content-Length", str(0 if status == 304 else len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not no_body:
            self.wfile.write(body)
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True      # SO_REUSEADDR: rebind the same port at once

    def __init__(self, name, app, port, handler):
        super().__init__((HOST, port), handler, bind_and_activate=False)
        self.name = name
        self.app = app
        self.conn_lock = threading.Lock()
        self.conns = set()
        self.closing = False
        try:
            self.server_bind()
            self.server_activate()
        except OSError:
            self.socket.close()
            raise
        self.port = self.server_address[1]
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02},
            name="fakeserver-" + name, daemon=True)
        self.thread.start()

    def server_bind(self):
        # HTTPServer.server_bind would call socket.getfqdn(), a reverse DNS
        # lookup that can be slow; up/down must stay quick.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    # Connections are tracked so that going down can cut them off too.
    def track(self, conn):
        with self.conn_lock:
            if not self.closing:
                self.conns.add(conn)
                return
        # Accepted just as the server went down: drop it at once.
        _shut(conn)

    def untrack(self, conn):
        with self.conn_lock:
            self.conns.discard(conn)

    def close_all(self):
        """Stop accepting, close the listening socket and cut every open
        connection, so that clients see the server really go away."""
        self.shutdown()             # returns within one poll_interval
        self.server_close()
        with self.conn_lock:
            self.closing = True
            conns, self.conns = self.conns, set()
        for conn in conns:
            _shut(conn)

    def handle_error(self, request, client_address):
        # A connection we cut while its handler was busy; not worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


def _shut(conn):
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _TrackedHandler(_Handler):
    # Headers and body leave in two writes; without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK hold the body back ~40 ms.
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)


# --------------------------------------------------------------------------
# MAIN port: the pretend Data Nadhi server

class MainHandler(_TrackedHandler):
    def serve(self):
        app = self.server.app
        raw = self.read_body()
        delay = app.get("delay")
        if delay:
            time.sleep(delay)
        path = urllib.parse.urlsplit(self.path).path
        headers = {}
        hangup_at = None
        in_flight = None
        if self.command == "GET":
            status = app.get("health_status")
            body = None
        elif self.command == "POST" and path.endswith("/log"):
            in_flight = app.begin_post()
            try:
                with app.serial_lock if app.get("serial") else _NO_LOCK:
                    log_delay = app.get("log_delay")
                    if log_delay:
                        time.sleep(log_delay)
                    status, body = app.next_log_answer()
            finally:
                app.end_post()
            if not 200 <= status < 300 and app.get("retry_after") is not None:
                headers["Retry-After"] = str(app.get("retry_after"))
            hangup_at = app.next_hangup()
        else:
            status, body = 404, None
        if body is None:
            body = {"ok": True} if 200 <= status < 300 else {"error": _reason(status)}
            body = json.dumps(body)
        body = body.encode("utf-8") if isinstance(body, str) else body
        if hangup_at is not None:
            app.record(self, raw, status, in_flight, hangup=True)
            self.hang_up(status, body, hangup_at)
            return
        # Record before answering: once the client has its answer, the test
        # can already see the request on the control port.
        app.record(self, raw, status, in_flight)
        self.answer(status, body, headers)

    def hang_up(self, status, body, at):
        """Send part of an answer, then close the connection."""
        out = ("HTTP/1.1 %d %s\r\n" % (status, _reason(status))).encode("ascii")
        if at in ("headers", "body"):
            out += b"Content-Type: application/json\r\n"
        if at == "body":
            # The full length is announced, half of it is sent.
            out += b"Content-Length: %d\r\n\r\n" % max(len(body), 2)
            out += body[:max(len(body), 2) // 2]
        self.close_connection = True
        try:
            self.wfile.write(out)
            self.wfile.flush()
        except OSError:
            pass
        _shut(self.connection)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = serve


# --------------------------------------------------------------------------
# CONTROL port

class ControlHandler(_Handler):
    def do_GET(self):
        self.read_body()
        url = urllib.parse.urlsplit(self.path)
        app = self.server.app
        if url.path == "/config":
            self.answer(200, _json_bytes(app.snapshot()))
        elif url.path == "/requests":
            want = urllib.parse.parse_qs(url.query).get("path", [None])[0]
            self.answer(200, _json_bytes(app.recorded(want)))
        else:
            self.answer(404, _json_bytes({"error": "no such control path"}))

    def do_POST(self):
        raw = self.read_body()
        path = urllib.parse.urlsplit(self.path).path
        app = self.server.app
        if path == "/reset":
            app.reset()
            self.answer(200, _json_bytes({"ok": True}))
        elif path == "/config":
            try:
                update = json.loads(raw.decode("utf-8") or "{}")
                app.configure(update)
            except (ValueError, TypeError) as e:
                self.answer(400, _json_bytes({"error": str(e)}))
                return
            except OSError as e:
                self.answer(500, _json_bytes({"error": str(e)}))
                return
            self.answer(200, _json_bytes(app.snapshot()))
        else:
            self.answer(404, _json_bytes({"error": "no such control path"}))


# --------------------------------------------------------------------------
# The application state: config, recorded requests, the up/down switch

def _check_status(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or not 200 <= v <= 599:
        raise ValueError("%s must be an integer status 200..599" % name)


class App:
    def __init__(self, port, state, record_path):
        self.lock = threading.Lock()            # config and records
        self.serial_lock = threading.Lock()     # "serial": one answer at a time
        self.posts_in_flight = 0
        self.state_lock = threading.Lock()      # serialises up/down
        self.config = dict(DEFAULT_CONFIG)
        self.requests = []
        self.record_file = open(record_path, "a", encoding="utf-8") if record_path else None
        self.main = None          # the listening _Server when up
        self.placeholder = None   # a bound, non-listening socket when down
        self.port = port
        self.control_port = None
        self.set_state(state)

    def get(self, key):
        with self.lock:
            return self.config[key]

    def snapshot(self):
        with self.lock:
            return dict(self.config, port=self.port, control_port=self.control_port,
                        posts_in_flight=self.posts_in_flight)

    def configure(self, update):
        if not isinstance(update, dict):
            raise ValueError("config must be a JSON object")
        unknown = set(update) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError("unknown config fields: %s" % ", ".join(sorted(unknown)))
        for key in ("health_status", "log_status"):
            if key in update:
                _check_status(key, update[key])
        n = update.get("log_status_count")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError("log_status_count must be null or an integer >= 0")
        for key in ("delay", "log_delay"):
            d = update.get(key, 0)
            if not isinstance(d, (int, float)) or isinstance(d, bool) or d < 0:
                raise ValueError("%s must be a number of seconds >= 0" % key)
        n = update.get("hangup")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError("hangup must be null or an integer >= 0")
        if update.get("hangup_at", "body") not in HANGUP_POINTS:
            raise ValueError("hangup_at must be one of %s" % ", ".join(HANGUP_POINTS))
        if not isinstance(update.get("serial", False), bool):
            raise ValueError("serial must be true or false")
        for key in ("retry_after", "body"):
            if update.get(key) is not None and not isinstance(update[key], str):
                raise ValueError("%s must be a string or null" % key)
        if update.get("state", "up") not in ("up", "down"):
            raise ValueError('state must be "up" or "down"')

        with self.lock:
            # A new log_status without a count means "from now on", not
            # "for whatever is left of an earlier count".
            if "log_status" in update and "log_status_count" not in update:
                self.config["log_status_count"] = None
            self.config.update({k: v for k, v in update.items() if k != "state"})
        if "state" in update:
            self.set_state(update["state"])

    def next_log_answer(self):
        """Status and configured body (or None) for one POST /log."""
        with self.lock:
            n = self.config["log_status_count"]
            if n is None:
                return self.config["log_status"], self.config["body"]
            if n > 0:
                self.config["log_status_count"] = n - 1
                return self.config["log_status"], self.config["body"]
            return 200, None

    def next_hangup(self):
        """Where to cut the answer to this POST /log, or None."""
        with self.lock:
            n = self.config["hangup"]
            if not n:
                return None
            self.config["hangup"] = n - 1
            return self.config["hangup_at"]

    def begin_post(self):
        with self.lock:
            self.posts_in_flight += 1
            return self.posts_in_flight

    def end_post(self):
        with self.lock:
            self.posts_in_flight -= 1

    def record(self, handler, raw, status, in_flight=None, hangup=False):
        headers = {}
        for name, value in handler.headers.items():
            name = name.lower()
            headers[name] = headers[name] + ", " + value if name in headers else value
        entry = {
            "time": time.time(),
            "method": handler.command,
            "path": handler.path,
            "headers": headers,
            "body": raw.decode("utf-8", errors="replace"),
            "status": status,
        }
        if in_flight is not None:
            entry["in_flight"] = in_flight
        if hangup:
            entry["hangup"] = True
        with self.lock:
            self.requests.append(entry)
            if self.record_file:
                self.record_file.write(json.dumps(entry) + "\n")
                self.record_file.flush()

    def recorded(self, path=None):
        with self.lock:
            reqs = list(self.requests)
        if path is None:
            return reqs
        # Match the path with or without its query string.
        return [r for r in reqs
                if r["path"] == path or urllib.parse.urlsplit(r["path"]).path == path]

    def reset(self):
        with self.lock:
            self.requests.clear()

    def set_state(self, state):
        with self.state_lock:
            if state == "up" and self.main is None:
                # Free the port held while down and listen on it again.
                if self.placeholder:
                    self.placeholder.close()
                    self.placeholder = None
                self.main = _retry_bind(
                    lambda: _Server("main", self, self.port, MainHandler))
                self.port = self.main.port
            elif state == "down" and self.main is None and self.placeholder is None:
                self.placeholder = _retry_bind(lambda: _placeholder(self.port))
                self.port = self.placeholder.getsockname()[1]
            elif state == "down" and self.main is not None:
                self.main.close_all()
                self.main = None
                self.placeholder = _retry_bind(lambda: _placeholder(self.port))
            with self.lock:
                self.config["state"] = state

    def close(self):
        with self.state_lock:
            if self.main:
                self.main.close_all()
                self.main = None
            if self.placeholder:
                self.placeholder.close()
                self.placeholder = None
        if self.record_file:
            self.record_file.close()


def _placeholder(port):
    """While down, keep the port bound but not listening.  A SYN to it still
    gets a RST (ECONNREFUSED), but the kernel cannot hand the port out as the
    ephemeral source port of some client meanwhile; on loopback that could
    even make the agent connect to itself, or stop us from coming back up."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
    except OSError:
        s.close()
        raise
    return s


def _retry_bind(make, seconds=2.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return make()
        except OSError as e:
            if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


# --------------------------------------------------------------------------
# Process entry point

def main(argv=None):
    global VERBOSE
    p = argparse.ArgumentParser(description="Fake Data Nadhi server for tests.")
    p.add_argument("--port", type=int, default=0, help="main port (0: any free)")
    p.add_argument("--control-port", type=int, default=0, help="control port (0: any free)")
    p.add_argument("--state", choices=("up", "down"), default="up")
    p.add_argument("--port-file", help="write the ports as one JSON line here")
    p.add_argument("--record", help="append each main-port request here as a JSON line")
    p.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = p.parse_args(argv)
    VERBOSE = args.verbose

    # Block SIGTERM/SIGINT before any thread starts (threads inherit the
    # mask), then wait for them synchronously below: no handler runs at an
    # awkward moment and the wake-up is immediate.
    # SIG_DFL first: a shell starting us with "&" leaves SIGINT ignored, and
    # an ignored signal is discarded instead of waiting for sigwait().
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    for sig in stop_signals:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    app = App(args.port, args.state, args.record)
    control = _Server("control", app, args.control_port, ControlHandler)
    app.control_port = control.port

    line = json.dumps({"port": app.port, "control_port": control.port, "pid": os.getpid()})
    if args.port_file:
        # Atomic: a reader never sees a half-written file.
        tmp = "%s.%d.tmp" % (args.port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, args.port_file)
    print(line, flush=True)

    signal.sigwait(stop_signals)
    control.shutdown()
    control.server_close()
    app.close()
    return 0


# --------------------------------------------------------------------------
# Library use from Python tests

class FakeServer:
    """Runs fakeserver.py in a child process and drives its control port."""

    def __init__(self, port=0, control_port=0, record=None, verbose=False,
                 python="/usr/bin/python3"):
        self.want_port = port
        self.want_control_port = control_port
        self.record = record
        self.verbose = verbose
        self.python = python
        self.proc = None
        self.port = None
        self.control_port = None
        self.pid = None

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    def start(self, state="up", timeout=5.0):
        tmpdir = tempfile.mkdtemp(prefix="fakeserver-")
        port_file = os.path.join(tmpdir, "ports.json")
        cmd = [self.python, os.path.join(HERE, "fakeserver.py"),
               "--port", str(self.want_port),
               "--control-port", str(self.want_control_port),
               "--state", state, "--port-file", port_file]
        if self.record:
            cmd += ["--record", self.record]
        if self.verbose:
            cmd.append("--verbose")
        # stdout repeats the port file; stderr is left to show any crash.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while not os.path.exists(port_file):
                if self.proc.poll() is not None:
                    raise RuntimeError("fakeserver exited with %d" % self.proc.returncode)
                if time.monotonic() > deadline:
                    raise RuntimeError("fakeserver did not start in %gs" % timeout)
                time.sleep(0.01)
            with open(port_file) as f:
                info = json.load(f)
        except BaseException:
            self.stop()
            raise
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        self.port = info["port"]
        self.control_port = info["control_port"]
        self.pid = info["pid"]
        return self

    def _call(self, method, path, payload=None):
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        req = urllib.request.Request(
            "http://%s:%d%s" % (HOST, self.control_port, path), data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raise RuntimeError("fakeserver %s %s: %d %s"
                               % (method, path, e.code,
                                  e.read().decode("utf-8", "replace").strip()))

    def set(self, **config):
        """Merge config (see the module docstring); returns the full config."""
        return self._call("POST", "/config", config)

    def config(self):
        return self._call("GET", "/config")

    def up(self):
        return self.set(state="up")

    def down(self):
        return self.set(state="down")

    def requests(self, path=None):
        q = "" if path is None else "?" + urllib.parse.urlencode({"path": path})
        return self._call("GET", "/requests" + q)

    def reset(self):
        self._call("POST", "/reset", {})

    def stop(self, timeout=5.0):
        """SIGTERM, wait, SIGKILL if need be; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code, self.proc = self.proc.returncode, None
        return code

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
