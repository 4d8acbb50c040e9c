# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""What the Python tests share: paths, the generated gRPC stubs, the
build's own constants (c_define), a client that calls SendLog the way the
Data Nadhi SDK does, hand-made requests and /proc figures, EchoPostTest, a
base class that runs echopost and a fake server per test and cleans up,
and ReliabilityTest, what the tests of things going wrong add to it; and
the records of a sealed file, as the spool echopost 1 would have kept.

Paths come from the environment that "make check" sets (ECHOPOST,
ECHOPOST_SEND, ECHOPOST_PROTO), or default to the source tree.
"""

import ast
import atexit
import concurrent.futures
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from fakeserver import FakeServer  # noqa: E402

ECHOPOST = os.environ.get("ECHOPOST") or os.path.join(REPO, "src", "echopost")
ECHOPOST_SEND = (os.environ.get("ECHOPOST_SEND")
                 or os.path.join(REPO, "tests", "echopost-send"))
ECHOPOST_PROTO = (os.environ.get("ECHOPOST_PROTO")
                  or os.path.join(REPO, "proto", "logagent.proto"))
# A cross-built echopost runs under an emulator (qemu-user), a test build
# under valgrind: /proc/PID/cmdline then shows the wrapper's own command
# line, which echopost cannot rewrite.
EMULATED = bool(os.environ.get("ECHOPOST_EMULATOR"))
WRAPPED = EMULATED or bool(os.environ.get("ECHOPOST_REAL"))

_stubs = None


def load_stubs():
    """Generate logagent_pb2 and logagent_pb2_grpc with protoc and Debian's
    grpc_python_plugin, once per process, and return the two modules."""
    global _stubs
    if _stubs is None:
        if not os.access(ECHOPOST, os.X_OK):
            raise RuntimeError("no echopost binary at %s (run make)"
                               % ECHOPOST)
        out = tempfile.mkdtemp(prefix="ep-stubs-", dir="/tmp")
        atexit.register(shutil.rmtree, out, True)
        proto = os.path.abspath(ECHOPOST_PROTO)
        subprocess.run(
            ["protoc", "-I" + os.path.dirname(proto), "--python_out=" + out,
             "--grpc_python_out=" + out,
             "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
             proto], check=True, timeout=60)
        sys.path.insert(0, out)
        import logagent_pb2
        import logagent_pb2_grpc
        _stubs = (logagent_pb2, logagent_pb2_grpc)
    return _stubs


_defines = None


def c_define(name):
    """The value of "#define name" in the sources under src/, so that a
    test follows the build instead of a copy that could drift from it: a
    string literal as str, an integer expression (+, -, *, and other such
    macros) as int. Whichever file defines it: a value defined two ways
    is an error."""
    global _defines
    if _defines is None:
        _defines = {}
        for path in sorted(glob.glob(os.path.join(REPO, "src", "*.[ch]"))):
            with open(path, encoding="utf-8") as f:
                for n, value in re.findall(
                        r"^#define[ \t]+(\w+)[ \t]+(.+?)[ \t]*(?:/\*.*)?$",
                        f.read(), re.M):
                    _defines.setdefault(n, set()).add(value)
    values = _defines.get(name, set())
    if len(values) != 1:
        raise LookupError("src/ defines %s %d ways: %s"
                          % (name, len(values), sorted(values)))
    value = next(iter(values))
    if value.startswith('"'):
        return ast.literal_eval(value)
    try:
        tree = ast.parse(re.sub(r"\b(\d+)[uUlL]+\b", r"\1", value),
                         mode="eval")
    except SyntaxError:
        raise ValueError("%s: cannot evaluate %s" % (name, value)) from None
    return _c_int(tree.body, name)


def _c_int(node, name):
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        return c_define(node.id)
    if isinstance(node, ast.BinOp):
        left, right = _c_int(node.left, name), _c_int(node.right, name)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
    raise ValueError("%s: cannot evaluate %s" % (name, ast.unparse(node)))


# Names fixed by the SDK's contract, spelled out here: should echopost
# stray from them, the tests must fail.
SOCKET_NAME = "data-nadhi-agent.sock"
STATUS_LOCK = "agent-status.lock"
METHOD = "/logagent.LogAgent/SendLog"   # proto/logagent.proto
# echopost's own files and its test hook, named as the build names them.
PID_FILE = c_define("PID_FILE_NAME")
ANCHOR = c_define("SOCKET_ANCHOR_NAME")
QUARANTINE = c_define("QUARANTINE_NAME")
REFUSED = c_define("REFUSED_NAME")
SPOOL = c_define("SPOOL_NAME")
POSITION = SPOOL + c_define("POSITION_SUFFIX")
JOURNAL_RE = re.compile(re.escape(SPOOL + c_define("JOURNAL_SUFFIX"))
                        + r"\d+")
SEALED_RE = re.compile(re.escape(SPOOL + c_define("SEALED_SUFFIX"))
                       + r"(\d+)-(\d+)")
JOURNAL_SIZE_ENV = c_define("JOURNAL_SIZE_ENV")
SESSION_RE = re.compile(r"^session-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$")
RFC3339_UTC_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# sun_path less its NUL: the kernel's limit, which echopost must meet.
SUN_PATH_MAX = 107


def as_user(user):
    """The setpriv(1) prefix that runs a command as (uid, gid, groups)."""
    uid, gid, groups = user
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid] + (
        ["--groups=" + ",".join(map(str, groups))] if groups
        else ["--clear-groups"])


def spool_names(dir):
    """The spool's files in dir: journals, sealed files, the position."""
    return sorted(n for n in os.listdir(dir)
                  if n == SPOOL or n.startswith(SPOOL + "."))


def spool_kept(dir):
    """Whether dir holds records not delivered yet: a journal or a sealed
    file."""
    return any(JOURNAL_RE.fullmatch(n) or SEALED_RE.fullmatch(n)
               for n in spool_names(dir))

# The SDK polls for the socket every 50 ms and gives up after 2 s.
def default_concurrency():
    """The most requests echopost keeps in flight by default, from its
    --help (the build's own number, not a copy)."""
    text = subprocess.run([ECHOPOST, "--help"], capture_output=True,
                          text=True).stdout
    m = re.search(r"--replay-concurrency N.*?\(default (\d+)", text, re.S)
    if m is None:
        raise AssertionError("--help names no default concurrency")
    return int(m.group(1))


def order_slack():
    """How far out of arrival order a record may reach the server: twice
    the replay's window (forwarder.c's set_up). A record is sent only
    while every record a window older is settled, and a failed request is
    sent again before anything new; so what reaches the server between a
    record and one stored before it are the failed records of one window
    and the records of the next."""
    window = (c_define("WINDOW_PER_REQUEST") * default_concurrency() +
              c_define("ENDPOINT_RUN"))
    return 2 * window


SOCKET_POLL = 0.05
SOCKET_WAIT = 2.0
# Under valgrind nothing starts in 2 s: ECHOPOST_SLOW=10 stretches every
# wait tenfold, so that such a run checks memory errors, not timing.
SLOW = float(os.environ.get("ECHOPOST_SLOW", "1"))
STRACE = shutil.which("strace")
SOCKET_WAIT *= SLOW
# Generous bounds: a hung echopost fails a test instead of hanging the suite.
EXIT_WAIT = 15.0 * SLOW
RPC_TIMEOUT = 10.0 * SLOW

# --------------------------------------------------------------------------
# Helpers

def wait_until(predicate, timeout, step=0.02):
    """Poll predicate until it is true or timeout seconds have passed;
    returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def socket_appears(proc, sock, limit):
    """Poll, as the SDK does, until sock exists: True; False if proc
    exited first or limit seconds passed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if os.path.exists(sock):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return os.path.exists(sock)


def send_log(sock, json_data, pipelines=(), api_key="", timeout=RPC_TIMEOUT):
    """One SendLog over a NEW channel, closed after, as the SDK does.
    Returns the LogResponse; raises grpc.RpcError on an RPC failure."""
    pb, pb_grpc = load_stubs()
    # unix:NAME is relative to the working directory, unix:///PATH not.
    channel = grpc.insecure_channel(
        ("unix://" if sock.startswith("/") else "unix:") + sock)
    try:
        stub = pb_grpc.LogAgentStub(channel)
        return stub.SendLog(pb.LogRequest(json_data=json_data,
                                          pipelines=list(pipelines),
                                          api_key=api_key),
                            timeout=timeout)
    finally:
        channel.close()


def read_events(path):
    """The JSON event lines of a file (stdout capture or agent.log)."""
    events = []
    if not os.path.exists(path):
        return events
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                events.append(json.loads(line))
    return events


def sockets_under(top):
    """Every UNIX socket file under top, whatever its name. A file
    renamed away between the listing and its lstat (echopost.status.new)
    is not one."""
    found = []
    for root, dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(root, name)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    found.append(path)
            except FileNotFoundError:
                pass
    return found


def read_json_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def files_under(top):
    """Every regular file under top (a socket cannot be read)."""
    for root, dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                yield path


def log_text(thread, seq, tag="x"):
    """A json_data text with odd spacing, key order and a non-ASCII
    string, so that "as received" can be checked byte for byte."""
    return ('{"thread": %d,  "seq":%d, "b": 1.50, "a":  "x",'
            ' "tag":"%s", "msg": "h\u00e9llo \u2713"}' % (thread, seq, tag))


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def varint(n):
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out += bytes([low | 0x80])
        else:
            return out + bytes([low])


def pb_field(number, data):
    """A length-delimited protobuf field, built by hand: the Python
    library refuses to serialize invalid UTF-8."""
    return varint(number << 3 | 2) + varint(len(data)) + data


def raw_call(sock, data, timeout=10.0):
    """Call SendLog with data as the raw request bytes. Returns the decoded
    LogResponse; raises grpc.RpcError on an RPC failure."""
    pb, _ = load_stubs()
    channel = grpc.insecure_channel("unix://" + sock)
    try:
        call = channel.unary_unary(METHOD, request_serializer=None,
                                   response_deserializer=None)
        return pb.LogResponse.FromString(call(data, timeout=timeout))
    finally:
        channel.close()


# HTTP/2 by hand, for a client that opens a call and never finishes it.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(kind, flags, stream, payload):
    return (struct.pack(">I", len(payload))[1:] + bytes([kind, flags])
            + struct.pack(">I", stream) + payload)


def hpack_literal(name, value):
    # Literal header field without indexing, new name, no Huffman.
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def half_open_call():
    """Preface, SETTINGS, the HEADERS of a SendLog call and a DATA frame
    announcing a 100-byte message of which only 10 bytes come."""
    headers = b"".join(hpack_literal(n, v) for n, v in (
        (b":method", b"POST"), (b":scheme", b"http"),
        (b":path", METHOD.encode()), (b":authority", b"localhost"),
        (b"content-type", b"application/grpc"), (b"te", b"trailers")))
    return (H2_PREFACE + h2_frame(4, 0, 0, b"")
            + h2_frame(1, 4, 1, headers)
            + h2_frame(0, 0, 1, b"\x00" + struct.pack(">I", 100)
                       + b"x" * 10))


def drain_socket(s, seconds):
    """Read whatever the peer says for up to seconds, or until it closes."""
    s.settimeout(0.1)
    deadline = time.monotonic() + seconds
    got = b""
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    return got


def record_size(text, pipelines_json="[]", api_key=""):
    """Size of a spool record (src/record.c): its header, then three
    fields of a 4-byte length, the bytes and a NUL."""
    return (c_define("HEADER_SIZE") + 3 * (4 + 1) + len(api_key.encode())
            + len(pipelines_json.encode()) + len(text.encode()))


class Datum(ctypes.Structure):
    _fields_ = [("dptr", ctypes.c_void_p), ("dsize", ctypes.c_int)]


class Gdbm:
    """The few calls of libgdbm (gdbm.h) these tests need, through ctypes:
    Debian's /usr/bin/python3 has no gdbm module without python3-gdbm."""

    READER, NEWDB, NOLOCK, REPLACE = 0, 3, 0x40, 1
    ITEM_NOT_FOUND = 15

    def __init__(self):
        self.lib = ctypes.CDLL("libgdbm.so.6")
        self.libc = ctypes.CDLL(None)
        self.lib.gdbm_open.restype = ctypes.c_void_p
        self.lib.gdbm_open.argtypes = [ctypes.c_char_p, ctypes.c_int,
                                       ctypes.c_int, ctypes.c_int,
                                       ctypes.c_void_p]
        for name, args in (("gdbm_firstkey", [ctypes.c_void_p]),
                           ("gdbm_nextkey", [ctypes.c_void_p, Datum]),
                           ("gdbm_fetch", [ctypes.c_void_p, Datum])):
            getattr(self.lib, name).restype = Datum
            getattr(self.lib, name).argtypes = args
        self.lib.gdbm_store.argtypes = [ctypes.c_void_p, Datum, Datum,
                                        ctypes.c_int]
        self.lib.gdbm_close.argtypes = [ctypes.c_void_p]
        self.lib.gdbm_errno_location.restype = ctypes.POINTER(ctypes.c_int)
        self.libc.free.argtypes = [ctypes.c_void_p]

    def _take(self, d):
        """The bytes of a datum GDBM malloc'd, which is then freed."""
        data = ctypes.string_at(d.dptr, d.dsize)
        self.libc.free(d.dptr)
        return data

    def read_all(self, path):
        """Every key of the file at path, and its value."""
        db = self.lib.gdbm_open(path.encode(), 0, self.READER | self.NOLOCK,
                                0, None)
        assert db, "gdbm_open %s failed" % path
        items = {}
        key = self.lib.gdbm_firstkey(db)
        while key.dptr:
            value = self.lib.gdbm_fetch(db, key)
            assert value.dptr, "gdbm_fetch failed in %s" % path
            following = self.lib.gdbm_nextkey(db, key)
            items[self._take(key)] = self._take(value)
            key = following
        errno = self.lib.gdbm_errno_location().contents.value
        assert errno == self.ITEM_NOT_FOUND, \
            "gdbm_nextkey failed in %s: GDBM error %d" % (path, errno)
        assert self.lib.gdbm_close(db) == 0
        return items

    def write_all(self, path, items):
        """A new GDBM file at path holding items, key -> value."""
        db = self.lib.gdbm_open(path.encode(), 0, self.NEWDB, 0o600, None)
        assert db, "gdbm_open %s failed" % path
        for key, value in items.items():
            k = ctypes.create_string_buffer(key, len(key))
            v = ctypes.create_string_buffer(value, len(value))
            assert self.lib.gdbm_store(
                db, Datum(ctypes.cast(k, ctypes.c_void_p), len(key)),
                Datum(ctypes.cast(v, ctypes.c_void_p), len(value)),
                self.REPLACE) == 0
        assert self.lib.gdbm_close(db) == 0


def sealed_key_number(key):
    """The number a sealed file's record key holds, or None for a name:
    10 bytes of 7 bits, low bits first (key_order 3), or 8 bytes,
    little-endian (key_order 2)."""
    if len(key) == 10:
        return sum((byte & 0x7f) << (7 * i) for i, byte in enumerate(key))
    if len(key) == 8:
        return struct.unpack("<Q", key)[0]
    return None


def records_of_sealed(path):
    """The records of a sealed file, seq -> bytes: blocks of consecutive
    records keyed by the first's number (sealed_key_number), each record
    its length (4 bytes, little-endian) and its bytes."""
    records = {}
    for key, value in Gdbm().read_all(path).items():
        seq, at = sealed_key_number(key), 0
        if seq is None:
            continue
        while at < len(value):
            length = struct.unpack_from("<I", value, at)[0]
            records[seq] = value[at + 4:at + 4 + length]
            seq, at = seq + 1, at + 4 + length
    return records


def echopost1_spool(records, first, end, path):
    """Write at path the spool echopost 1 kept of records: a GDBM file of a
    record a value keyed big-endian, with its "head" and "next", not
    marked clean (as a kill left it)."""
    items = {struct.pack(">Q", seq): data for seq, data in records.items()}
    items[b"head"] = struct.pack(">Q", first)
    items[b"next"] = struct.pack(">Q", end)
    Gdbm().write_all(path, items)


def log_data_of(post):
    return json.loads(post["body"])["log_data"]


class Sent:
    """One log a test sent and what it knows about it."""

    def __init__(self, thread, seq, text, pipelines, api_key, run=0):
        self.run = run          # which echopost run it was sent to
        self.thread = thread
        self.seq = seq
        self.text = text
        self.pipelines = list(pipelines)
        self.api_key = api_key
        self.started = None     # monotonic time the call began
        self.acked = None       # monotonic time success: true came back
        self.response = None
        self.error = None

    @property
    def key(self):
        return (self.run, self.thread, self.seq)


# strace(1) output, as the tests ask for it: -f -qq -o FILE (and -y, for a
# descriptor shown as "N</its/path>"), so that each line is
# "PID call(args) = result", and a call another thread interrupted is split
# into "... <unfinished ...>" and "<... call resumed> ...".

CALL_RE = re.compile(r"^(\d+)\s+(\w+)\((.*)$")
RESUMED_RE = re.compile(r"^(\d+)\s+<\.\.\. (\w+) resumed>(.*)$")
RESULT_RE = re.compile(r"\)\s+=\s+(-?\d+|\?)(?:\s+(\w+))?[^)]*\)?\s*$")


def traced_calls(path):
    """The calls of an strace -f log, in the order they returned:
    (name, its arguments' text, its result, its errno name or None)."""
    pending, calls = {}, []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = RESUMED_RE.match(line)
            if m:
                pid, name, rest = m.groups()
                start = pending.pop((pid, name), "")
                line_args, tail = start, rest
            else:
                m = CALL_RE.match(line)
                if not m:
                    continue
                pid, name, rest = m.groups()
                if rest.endswith("<unfinished ...>"):
                    pending[(pid, name)] = rest[:-len("<unfinished ...>")]
                    continue
                line_args, tail = rest, rest
            r = RESULT_RE.search(tail)
            if r is None:
                continue
            if tail is line_args:
                line_args = tail[:r.start()]
            else:
                line_args += tail[:r.start()]
            calls.append((name, line_args, r.group(1), r.group(2)))
    return calls


class EchoPostTest(unittest.TestCase):
    """Per-test temp dir, fake server and echopost processes, all cleaned
    up whatever happens."""

    API_KEY = "KEY-sekrit-123"

    def need_strace(self):
        """Skip, saying why, where strace(1) cannot trace echopost."""
        if STRACE is None:
            self.skipTest("strace(1) is not installed")
        # A container may forbid ptrace(2): then strace cannot run at all.
        probe = subprocess.run([STRACE, "-qq", "-o", os.devnull, "true"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=30 * SLOW)
        if probe.returncode != 0:
            self.skipTest("strace(1) cannot trace here: %s"
                          % probe.stderr.decode(errors="replace").strip())

    def setUp(self):
        # Short paths: the socket path must stay within 107 bytes.
        self.tmp = tempfile.mkdtemp(prefix="ep-", dir="/tmp")
        self.dir = os.path.join(self.tmp, "dn")
        self.sock = os.path.join(self.dir, SOCKET_NAME)
        self.procs = []
        self.outputs = 0
        self.server = None
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.kill()
                except OSError:
                    pass
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        if self.server is not None:
            self.server.stop()
        if os.environ.get("ECHOPOST_KEEP_TMP"):
            print("kept %s" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the fake server ----------------------------------------------------

    def start_server(self, state="down", **config):
        self.server = FakeServer().start(state=state)
        if config:
            self.server.set(**config)
        return self.server

    def posts(self):
        return self.server.requests("/log")

    def posts_in_flight(self):
        """How many POSTs to /log the server is answering now."""
        return self.server.config()["posts_in_flight"]

    # -- echopost -----------------------------------------------------------

    def start_echopost(self, args=None, sdk=False, env_key=None,
                       interval="100ms", dir=None, key=API_KEY, cwd=None,
                       journal_size=None, user=None, extra=(),
                       program=None):
        """Start echopost. args None: the SDK's own command line
        (-datanadhi DIR -api-key KEY -health-url URL) plus the health
        interval. sdk=True: stdio on /dev/null and a new session, like the
        SDK; otherwise stdout and stderr go to files in the temp dir
        (proc.out_path, proc.err_path). journal_size: bytes after which a
        journal is closed (ECHOPOST_TEST_JOURNAL_SIZE), so that a few logs
        make echopost rotate and seal journals. user: (uid, gid, groups)
        to run it as, through setpriv(1), which needs root. extra: more
        arguments after those. program: another echopost than ECHOPOST."""
        dir = self.dir if dir is None else dir
        if args is None:
            args = ["-datanadhi", dir]
            if key is not None:
                args += ["-api-key", key]
            args += ["-health-url", self.server.url]
            if interval:
                args += ["--health-interval", interval]
        args = list(args) + list(extra)
        env = dict(os.environ)
        env.pop("DATANADHI_API_KEY", None)
        if env_key is not None:
            env["DATANADHI_API_KEY"] = env_key
        if journal_size is not None:
            env[JOURNAL_SIZE_ENV] = str(journal_size)
        command = [program or ECHOPOST] + args
        if user is not None:
            command = as_user(user) + command
        self.outputs += 1
        out_path = os.path.join(self.tmp, "out-%d.txt" % self.outputs)
        err_path = os.path.join(self.tmp, "err-%d.txt" % self.outputs)
        if sdk:
            proc = subprocess.Popen(command, env=env, cwd=cwd,
                                    stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        else:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen(command, env=env, cwd=cwd,
                                        stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=err)
        proc.out_path = out_path
        proc.err_path = err_path
        self.procs.append(proc)
        return proc

    def store(self, text, pipelines=()):
        """Send one log to self.sock and assert that it was stored."""
        r = send_log(self.sock, text, pipelines)
        self.assertTrue(r.success, r.message)
        return r

    def start_with_log(self, text, pipelines=(), **kwargs):
        """Server down, echopost started (kwargs as for start_echopost),
        one log stored; returns the process."""
        self.start_server("down")
        proc = self.start_echopost(**kwargs)
        self.wait_socket(proc)
        self.store(text, pipelines)
        return proc

    def wait_socket(self, proc, sock=None, not_inode=None):
        """Poll like the SDK (every 50 ms) and assert that the socket is
        there within 2 s. not_inode: wait for a socket other than that one
        (a stale file already in place)."""
        sock = self.sock if sock is None else sock
        deadline = time.monotonic() + SOCKET_WAIT
        while True:
            try:
                st = os.lstat(sock)
                if stat.S_ISSOCK(st.st_mode) and st.st_ino != not_inode:
                    return st
            except FileNotFoundError:
                pass
            if proc.poll() is not None:
                self.fail("echopost exited with %s before its socket "
                          "appeared; stderr: %s"
                          % (proc.returncode, self.stderr_of(proc)))
            if time.monotonic() > deadline:
                self.fail("socket %s did not appear within %gs"
                          % (sock, SOCKET_WAIT))
            time.sleep(SOCKET_POLL)

    def wait_exit(self, proc, timeout=EXIT_WAIT):
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            self.fail("echopost did not exit within %gs" % timeout)

    def stop_echopost(self, proc, sig=signal.SIGTERM, timeout=EXIT_WAIT):
        proc.send_signal(sig)
        return self.wait_exit(proc, timeout)

    def stderr_of(self, proc):
        try:
            with open(proc.err_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def events_of(self, proc):
        return read_events(proc.out_path)

    def names_of(self, proc):
        return [e["event"] for e in self.events_of(proc)]

    def sessions(self, dir=None):
        dir = self.dir if dir is None else dir
        return sorted(os.path.join(dir, n) for n in os.listdir(dir)
                      if n.startswith("session-"))

    def session_file(self, name, dir=None):
        """Lines of name from every session directory, oldest first."""
        lines = []
        for session in self.sessions(dir):
            path = os.path.join(session, name)
            if os.path.exists(path):
                lines += read_json_lines(path)
        return lines

    # -- clients ------------------------------------------------------------

    def send_threads(self, threads, count, make, sock=None, stop=None):
        """threads workers, each sending count logs in order, one new
        channel per log; make(thread, seq) -> Sent. A worker stops at its
        first log that is not stored. Returns the Sent objects of every
        attempt."""
        sock = self.sock if sock is None else sock
        results = []
        lock = threading.Lock()

        def worker(t):
            for i in range(count):
                if stop is not None and stop.is_set():
                    return
                s = make(t, i)
                s.started = time.monotonic()
                try:
                    s.response = send_log(sock, s.text, s.pipelines,
                                          s.api_key)
                    if s.response.success:
                        s.acked = time.monotonic()
                except grpc.RpcError as e:
                    s.error = e
                with lock:
                    results.append(s)
                if s.acked is None:
                    return

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            for f in [pool.submit(worker, t) for t in range(threads)]:
                f.result(timeout=120)
        return results

    def send_during(self, background, threads=4):
        """Send logs {"thread": T, "seq": N} from threads until stopped,
        while background(stop) runs in a thread of its own and may set the
        stop event. Returns the Sent objects of every attempt."""
        stop = threading.Event()

        def make(t, i):
            return Sent(t, i, '{"thread": %d, "seq": %d}' % (t, i), [], "")

        helper = threading.Thread(target=background, args=(stop,))
        helper.start()
        try:
            return self.send_threads(threads, 100000, make, stop=stop)
        finally:
            stop.set()
            helper.join()

    # -- admin commands and left spools ------------------------------------

    def admin(self, *args, url=None):
        """Run an admin command on the test's DIR; (exit code, stdout,
        stderr)."""
        url = self.server.url if url is None else url
        result = subprocess.run(
            [ECHOPOST, "-datanadhi", self.dir, "-health-url", url] +
            list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=30)
        return (result.returncode, result.stdout.decode(),
                result.stderr.decode())

    def store_logs(self, count, tag="x"):
        """Start echopost with the server down and store count logs;
        returns the running process and the texts sent."""
        proc = self.start_echopost()
        self.wait_socket(proc)
        texts = [log_text(0, i, tag) for i in range(count)]
        for text in texts:
            self.assertTrue(send_log(self.sock, text, ["pl"], "").success)
        return proc, texts

    def spooled(self):
        """Records in the spool of self.dir now, as --status counts them
        (0 while there is no spool to count)."""
        code, out, err = self.admin("--status", "--json")
        try:
            return json.loads(out)["spool"]["records"]
        except (ValueError, KeyError, TypeError):
            return 0

    def spool_left(self, count):
        """A spool of count logs left by a run stopped with SIGTERM."""
        proc, texts = self.store_logs(count)
        self.assertEqual(self.stop_echopost(proc), 0)
        self.assertTrue(spool_kept(self.dir))
        return texts

    def delivered_payloads(self):
        return [json.dumps(json.loads(p["body"])["log_data"],
                           sort_keys=True) for p in self.posts()]

    @staticmethod
    def canonical(texts):
        return [json.dumps(json.loads(t), sort_keys=True) for t in texts]

    def assert_all_stored(self, sent):
        bad = [(s.thread, s.seq, s.error or s.response) for s in sent
               if s.acked is None]
        self.assertEqual(bad, [], "logs not answered success: true")

    # -- checks on what the server got ---------------------------------------

    def assert_arrival_order(self, arrived, stored, slack=None, once=False):
        """arrived: what the server got, in the order it came; stored: the
        same logs in the order they were stored. Each stored log arrives,
        nothing else does, duplicates only if not once (at least once),
        and none arrives more than slack places after one stored later
        (requests in flight at once complete out of order; slack 0 is the
        strict order of --replay-concurrency 1)."""
        if slack is None:
            slack = order_slack()

        def key(x):
            return json.dumps(x, sort_keys=True)
        place = {}
        for i, s in enumerate(stored):
            place.setdefault(key(s), i)
        firsts = []
        for a in arrived:
            k = key(a)
            if k in firsts:
                self.assertFalse(once, "%r arrived twice" % (a,))
                continue
            self.assertIn(k, place, "%r arrived, never stored" % (a,))
            firsts.append(k)
        self.assertEqual(sorted(set(place) - set(firsts)), [],
                         "stored logs never arrived")
        latest = -1
        for k in firsts:
            self.assertGreater(place[k], latest - slack,
                               "%s arrived far out of order" % k)
            latest = max(latest, place[k])

    def assert_in_ack_order(self, sent, posts, slack=None):
        """The server must get the logs in the order they were stored: a
        log acknowledged before another was even sent must arrive first,
        give or take slack places (records in flight at once complete out
        of order; slack 0 for --replay-concurrency 1). Every acknowledged
        log must arrive. Duplicates are allowed (at least once); the first
        arrival counts. Logs carry run (default 0), thread and seq in their
        JSON."""
        if slack is None:
            slack = order_slack()
        first = {}
        for p in posts:
            d = json.loads(p["body"])["log_data"]
            first.setdefault((d.get("run", 0), d["thread"], d["seq"]),
                             len(first))
        acked = [s for s in sent if s.acked is not None]
        lost = [s.key for s in acked if s.key not in first]
        self.assertEqual(lost, [], "acknowledged logs never delivered")
        # Per thread: each thread's (run, seq) values increase.
        for t in sorted({s.thread for s in acked}):
            mine = sorted((s for s in acked if s.thread == t),
                          key=lambda s: (s.run, s.seq))
            latest = -1
            for s in mine:
                self.assertGreater(first[s.key], latest - slack,
                                   "thread %d delivered out of order: %r"
                                   % (t, s.key))
                latest = max(latest, first[s.key])
        # Across threads: walk the logs by start time, keeping the latest
        # delivery position among those acknowledged before that start.
        by_ack = sorted(acked, key=lambda s: s.acked)
        latest, latest_key, j = -1, None, 0
        for b in sorted(acked, key=lambda s: s.started):
            while j < len(by_ack) and by_ack[j].acked < b.started:
                if first[by_ack[j].key] > latest:
                    latest, latest_key = first[by_ack[j].key], by_ack[j].key
                j += 1
            self.assertGreater(first[b.key], latest - slack,
                               "log %r was acknowledged before %r was sent, "
                               "but delivered after it"
                               % (latest_key, b.key))


class ReliabilityTest(EchoPostTest):
    """EchoPostTest plus what the tests of things going wrong share
    (test_storage, test_disk, test_hostile, test_files, test_server)."""

    def args(self, dir=None, extra=(), interval="100ms"):
        """The SDK's command line, plus the health interval and extra."""
        dir = self.dir if dir is None else dir
        return (["-datanadhi", dir, "-api-key", self.API_KEY,
                 "-health-url", self.server.url,
                 "--health-interval", interval] + list(extra))

    def start_in(self, dir, extra=(), interval="100ms", journal_size=None):
        """Start echopost on dir and wait (as the SDK does, 2 s at most)
        for its socket. Returns (proc, socket path)."""
        sock = os.path.join(dir, SOCKET_NAME)
        proc = self.start_echopost(self.args(dir, extra, interval),
                                   journal_size=journal_size)
        self.wait_socket(proc, sock=sock)
        return proc, sock

    def assert_serving(self, proc, sock=None, tag="probe"):
        """echopost is alive and stores a good log; returns its text."""
        sock = self.sock if sock is None else sock
        self.assertIsNone(proc.poll(), "echopost died (exit %s); stderr: %s"
                          % (proc.returncode, self.stderr_of(proc)))
        text = json.dumps({"good": tag})
        r = send_log(sock, text)
        self.assertTrue(r.success, "a good log was refused: %s" % r.message)
        self.assertIsNone(proc.poll())
        return text

    def deliver_and_exit(self, proc):
        """Server up: echopost must deliver everything it can read and
        exit: 0, or EX_IOERR (74) when it named records it could not
        deliver (record_missing, record_quarantined), and then only."""
        self.server.up()
        code = self.wait_exit(proc)
        undelivered = [e for e in self.events_of(proc) if e["event"] in
                       ("record_missing", "record_quarantined")]
        self.assertEqual(code, 74 if undelivered else 0,
                         self.stderr_of(proc))
        return self.posts()

    def store_seq_logs(self, sock, count, pad=100):
        """Store logs {"seq": i, "pad": "xx.."}; all must be acknowledged.
        Returns their texts, by seq."""
        texts = []
        for i in range(count):
            text = '{"seq": %d, "pad": "%s"}' % (i, "x" * pad)
            r = send_log(sock, text)
            self.assertTrue(r.success, "log %d refused: %s" % (i, r.message))
            texts.append(text)
        return texts
