#!/usr/bin/python3
"""Reliability tests of EchoPost: what happens when things go wrong.

Each test runs the real echopost binary against the fake server
(fakeserver.py, its own process) and talks to it over its UNIX socket, and
then breaks something on purpose:

  1. the storage: a truncated spool, random bytes over the spool, a
     destroyed GDBM header;
  2. the disk: a real full file system (a small tmpfs; skipped where mount
     is not permitted), GDBM itself hitting ENOSPC, the --max-spool-size cap;
  3. the socket: oversized, malformed and hostile requests, raw non-gRPC
     bytes, silent clients, a thousand connections at once;
  4. files and permissions: modes, a symlinked or world-writable DIR, the
     API key kept out of every file, event and /proc/PID/cmdline;
  5. the server: never answering, answering slowly, hanging up in the
     middle of an answer, answering 2xx with garbage, flapping up and down.

Every test says in a comment which guarantee it protects; each one fails if
that guarantee is broken. Every wait is bounded and every test cleans up
its processes, mounts and temp dirs (support.EchoPostTest).

Paths come from the environment, as for test_e2e.py (ECHOPOST, ECHOPOST_PROTO).
Run with /usr/bin/python3 tests/test_reliability.py.
"""

import errno
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from support import (  # noqa: E402
    ECHOPOST, PID_FILE, POSITION, RFC3339_UTC_RE, SEALED_RE, SESSION_RE,
    SLOW, SOCKET_NAME, SPOOL, STATUS_LOCK, EchoPostTest, Sent, files_under,
    load_stubs, log_text, read_json_lines, send_log, spool_kept,
    spool_names, wait_until)


def setUpModule():
    load_stubs()


# src/listener.c CLOSE_GRACE_MS: calls still open at close get this long.
CLOSE_GRACE = 5.0
# src/spool.c DISK_MARGIN and DISK_CHECK_MS.
DISK_MARGIN = 8 * 1024 * 1024
DISK_CHECK = 0.1
QUARANTINE = "echopost-quarantine.jsonl"
ANCHOR = ".agent.sock"
METHOD = "/logagent.LogAgent/SendLog"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------
# Helpers


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
    """Size of a spool record (src/record.c): crc, version, time, then
    three fields of length + bytes + NUL."""
    return (4 + 1 + 8 + 3 * 5 + len(api_key.encode())
            + len(pipelines_json.encode()) + len(text.encode()))


def log_data_of(post):
    return json.loads(post["body"])["log_data"]


class ReliabilityTest(EchoPostTest):
    """EchoPostTest plus what these tests share."""

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
        """Server up: echopost must deliver everything and exit 0."""
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0, self.stderr_of(proc))
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


# --------------------------------------------------------------------------
# 1. Storage corruption

KINDS = ((False, "sealed"), (True, "echopost1"))


class StorageCorruptionTest(ReliabilityTest):
    """Damage found by a later start in a GDBM file of the spool: a sealed
    file (written once, then only read), or the same bytes as the spool of
    echopost 1 (echopost.spool, imported with gdbm_recover). The first run
    stores STORED logs in small journals, so that the mover seals most of
    them, and stops; each test damages a copy."""

    STORED = 200
    JOURNAL = 8192

    def make_spool(self):
        """Store STORED logs with the server down, wait until journals are
        sealed, stop with SIGTERM. Returns (texts, the largest sealed
        file's name, its bytes)."""
        self.start_server("down")
        proc = self.start_echopost(self.args(self.dir),
                                   journal_size=self.JOURNAL)
        sock = os.path.join(self.dir, SOCKET_NAME)
        self.wait_socket(proc, sock=sock)
        texts = self.store_seq_logs(sock, self.STORED)

        def sealed_names():
            return [n for n in os.listdir(self.dir) if SEALED_RE.fullmatch(n)]
        self.assertTrue(wait_until(sealed_names, 10 * SLOW),
                        "no journal was sealed")
        self.assertEqual(self.stop_echopost(proc), 0)
        name = max(sealed_names(), key=lambda n: os.path.getsize(
            os.path.join(self.dir, n)))
        with open(os.path.join(self.dir, name), "rb") as f:
            data = f.read()
        return texts, name, data

    def fresh_dir(self, name, sealed, data, legacy=False):
        """A new DIR holding the stopped run's spool files, with data in
        place of the sealed file, or (legacy) as echopost.spool instead."""
        parent = os.path.join(self.tmp, name)
        os.mkdir(parent)
        dir = os.path.join(parent, "dn")
        os.mkdir(dir, 0o750)
        for n in spool_names(self.dir):
            if n != sealed:
                shutil.copy2(os.path.join(self.dir, n), dir)
        fd = os.open(os.path.join(dir, SPOOL if legacy else sealed),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return dir

    def run_damaged(self, dir):
        """Start echopost on a DIR with a damaged spool, with the server
        down: the socket must appear within 2 s and a new log be stored.
        Then the server comes up: echopost must exit 0. Returns (proc,
        events, new log text, delivered seq->first position, posts)."""
        self.server.down()
        self.server.reset()
        proc, sock = self.start_in(dir)
        new_text = self.assert_serving(proc, sock, tag="after damage")
        posts = self.deliver_and_exit(proc)
        events = self.events_of(proc)
        first = {}
        for i, p in enumerate(posts):
            d = log_data_of(p)
            if "seq" in d:
                first.setdefault(d["seq"], i)
        bodies = [log_data_of(p) for p in posts]
        self.assertIn(json.loads(new_text), bodies,
                      "the log stored after the damage was not delivered")
        self.assertEqual([n for n in spool_names(dir) if ".damaged-" not in n],
                         [], "spool files left after a clean exit")
        return proc, events, new_text, first, posts

    def assert_delivered_intact(self, texts, first, posts):
        """What is delivered of the old spool is what was stored, once
        at least, in the order it was stored."""
        for p in posts:
            d = log_data_of(p)
            if "seq" not in d:
                continue
            self.assertIn(d["seq"], range(len(texts)),
                          "a record that was never stored was delivered")
            self.assertEqual(d, json.loads(texts[d["seq"]]),
                             "record %d delivered altered" % d["seq"])
        order = sorted(first, key=first.get)
        self.assert_arrival_order(order, sorted(order))

    def kept_files(self, events):
        """Files set aside, named by spool_damaged events (kept_as); each
        must exist and be private (0600)."""
        kept = []
        for e in events:
            if e["event"] == "spool_damaged":
                self.assertTrue(e.get("kept_as"),
                                "spool_damaged without kept_as: %r" % e)
                kept.append(e["kept_as"])
        for path in kept:
            self.assertTrue(os.path.isfile(path),
                            "kept copy %s does not exist" % path)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600,
                             "kept copy %s is not private" % path)
        return kept

    def assert_accounted(self, stored, delivered, quarantined, events,
                         legacy):
        """Every stored record is delivered, quarantined, or reported by a
        record_missing event (seq, count). An echopost 1 spool may also
        lose what gdbm_recover reports (spool_recovered: failed_keys, or
        failed buckets whose keys GDBM cannot count), or be set aside
        whole (spool_damaged); a sealed file's losses are all reported
        record by record, since its range is in its name."""
        reported = set()
        for e in events:
            if e["event"] == "record_missing":
                reported.update(range(e["seq"], e["seq"] + e["count"]))
        self.assertFalse(reported & set(delivered),
                         "a record reported missing was delivered")
        lost = sorted(set(stored) - set(delivered) - set(quarantined)
                      - reported)
        if not lost:
            return
        self.assertTrue(legacy, "%d records of a sealed file vanished "
                        "without a record_missing event: seqs %s"
                        % (len(lost), lost))
        if [e for e in events if e["event"] == "spool_damaged"]:
            return
        recovered = [e for e in events if e["event"] == "spool_recovered"]
        self.assertTrue(recovered, "%d records vanished without any "
                        "spool_damaged or spool_recovered event: seqs %s"
                        % (len(lost), lost))
        failed_keys = sum(e["failed_keys"] for e in recovered)
        if sum(e["failed_buckets"] for e in recovered) == 0:
            self.assertLessEqual(
                len(lost), failed_keys,
                "%d records lost but GDBM reported only %d failed keys "
                "(and no failed bucket): seqs %s"
                % (len(lost), failed_keys, lost))

    def check_quarantine(self, dir, events, spool_bytes):
        """The quarantine file: one JSON line per record_quarantined event
        with time, seq, reason and record_hex, the record's bytes as they
        were in the damaged spool. Returns the quarantined seqs."""
        path = os.path.join(dir, QUARANTINE)
        lines = read_json_lines(path) if os.path.exists(path) else []
        flagged = [e["seq"] for e in events
                   if e["event"] == "record_quarantined"]
        self.assertEqual(sorted(l["seq"] for l in lines), sorted(flagged),
                         "quarantine lines and record_quarantined events "
                         "do not match")
        for line in lines:
            self.assertEqual(set(line), {"time", "seq", "reason",
                                         "record_hex"})
            self.assertRegex(line["time"], RFC3339_UTC_RE)
            self.assertTrue(line["reason"])
            raw = bytes.fromhex(line["record_hex"])
            self.assertGreater(len(raw), 0)
            self.assertIn(raw, spool_bytes,
                          "quarantined bytes of seq %d are not the damaged "
                          "record's bytes" % line["seq"])
        if lines:
            self.assertEqual(
                stat.S_IMODE(os.stat(path).st_mode), 0o600)
        return [l["seq"] for l in lines]

    def test_truncated_spool_is_noticed_and_service_continues(self):
        # Protects: a truncated GDBM file neither stops echopost from
        # starting (the SDK gives it 2 s) nor is trusted silently: what is
        # lost is reported, new logs are served, exit is 0.
        texts, sealed, original = self.make_spool()
        for fraction in (0.9, 0.5, 0.05):
            cut = original[:int(len(original) * fraction)]
            for legacy, kind in KINDS:
                with self.subTest(fraction=fraction, kind=kind):
                    dir = self.fresh_dir("trunc-%d-%s" % (fraction * 100,
                                                          kind),
                                         sealed, cut, legacy)
                    proc, events, _, first, posts = self.run_damaged(dir)
                    self.kept_files(events)
                    self.assert_delivered_intact(texts, first, posts)
                    self.assert_accounted(range(len(texts)), first, [],
                                          events, legacy)

    def _scribble(self, data, seed, spots, width):
        """Random bytes over random places after the header."""
        rng = random.Random(seed)
        data = bytearray(data)
        for _ in range(spots):
            at = rng.randrange(4096, len(data) - width)
            data[at:at + width] = bytes(rng.randrange(256)
                                        for _ in range(width))
        return bytes(data)

    def test_scribbled_spool_quarantines_or_reports_never_drops(self):
        # Protects: random damage inside a GDBM file never makes a record
        # vanish silently. A record whose checksum fails goes to
        # DIR/echopost-quarantine.jsonl with a record_quarantined event; a
        # record GDBM cannot give is reported; every other record is
        # delivered; echopost starts, serves, exits 0.
        texts, sealed, original = self.make_spool()
        for seed in (1, 2, 3):
            damaged = self._scribble(original, seed, 20, 16)
            for legacy, kind in KINDS:
                with self.subTest(seed=seed, kind=kind):
                    dir = self.fresh_dir("scribble-%d-%s" % (seed, kind),
                                         sealed, damaged, legacy)
                    proc, events, _, first, posts = self.run_damaged(dir)
                    self.kept_files(events)
                    quarantined = self.check_quarantine(dir, events, damaged)
                    self.assertFalse(set(quarantined) & set(first),
                                     "a quarantined record was also "
                                     "delivered")
                    self.assert_delivered_intact(texts, first, posts)
                    self.assert_accounted(range(len(texts)), first,
                                          quarantined, events, legacy)

    def test_damaged_payloads_are_all_quarantined_rest_delivered(self):
        # Protects: the record checksum. Damage only inside records'
        # payloads (GDBM sees nothing wrong): exactly the damaged records
        # are quarantined, with their bytes, and every other record is
        # delivered intact and in order. Nothing is lost, nothing altered
        # is delivered.
        texts, sealed, original = self.make_spool()
        low, high = map(int, SEALED_RE.fullmatch(sealed).groups())
        rng = random.Random(7)
        data = bytearray(original)
        runs = [m.start() for m in re.finditer(rb"x{100}", original)]
        self.assertEqual(len(runs), high - low)
        hit = set()
        for at in rng.sample(runs, 10):
            seq = int(re.search(rb'\{"seq": (\d+), "pad": "$',
                                bytes(data[at - 40:at])).group(1))
            hit.add(seq)
            spot = at + rng.randrange(0, 92)
            data[spot:spot + 8] = bytes(rng.choice(
                [b for b in range(256) if b != ord("x")]) for _ in range(8))
        data = bytes(data)
        for legacy, kind in KINDS:
            with self.subTest(kind=kind):
                dir = self.fresh_dir("payloads-" + kind, sealed, data, legacy)
                proc, events, _, first, posts = self.run_damaged(dir)
                quarantined = self.check_quarantine(dir, events, data)
                self.assertEqual(sorted(quarantined), sorted(hit),
                                 "quarantined records are not the damaged "
                                 "ones")
                self.assertEqual(sorted(first),
                                 sorted(set(range(len(texts))) - hit),
                                 "undamaged records not all delivered")
                self.assert_delivered_intact(texts, first, posts)
                for line in read_json_lines(os.path.join(dir, QUARANTINE)):
                    self.assertEqual(len(bytes.fromhex(line["record_hex"])),
                                     record_size(texts[line["seq"]]))

    def test_destroyed_header_is_set_aside_and_fresh_spool_serves(self):
        # Protects: a GDBM file that cannot be opened is never deleted: it
        # is renamed to NAME.damaged-<time> (spool_damaged event), holding
        # the bytes as found; the records only it held are reported
        # missing (a sealed file's range is in its name); everything else
        # is delivered and new logs are served.
        texts, sealed, original = self.make_spool()
        low, high = map(int, SEALED_RE.fullmatch(sealed).groups())
        junk = random.Random(11).randbytes(4096)
        for header_kind, header in (("zeros", b"\0" * 4096), ("junk", junk)):
            damaged = header + original[4096:]
            for legacy, kind in KINDS:
                with self.subTest(header=header_kind, kind=kind):
                    dir = self.fresh_dir("header-%s-%s" % (header_kind, kind),
                                         sealed, damaged, legacy)
                    proc, events, new_text, first, posts = \
                        self.run_damaged(dir)
                    aside = [e for e in events
                             if e["event"] == "spool_damaged"]
                    self.assertEqual(len(aside), 1,
                                     "expected one spool_damaged event")
                    kept = aside[0]["kept_as"]
                    self.assertEqual(os.path.dirname(kept), dir)
                    self.assertTrue(os.path.basename(kept).startswith(
                        (SPOOL if legacy else sealed) + ".damaged-"), kept)
                    with open(kept, "rb") as f:
                        self.assertEqual(f.read(), damaged,
                                         "the set-aside file does not hold "
                                         "the damaged spool's bytes")
                    self.kept_files(events)
                    self.assertEqual(sorted(first), [
                        i for i in range(len(texts)) if not low <= i < high])
                    self.assert_accounted(range(len(texts)), first, [],
                                          events, legacy)


class FieldStateTest(ReliabilityTest):
    """Directories found in the field (tests/fixtures/README)."""

    def test_stuck_spool_serves_at_once_and_delivers_everything(self):
        # Protects: a spool of echopost 1 that a kill left inside a GDBM
        # store (the file longer than GDBM's header says) made every start
        # exit 74. Now the socket comes up within the SDK's 2 s, new logs
        # are stored, the old file is recovered from a copy in the
        # background, and every one of its 32 874 records is delivered
        # before the new log, after which nothing is left but the session.
        fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "fixtures", "stuck-spool.tar.xz")
        os.makedirs(self.dir)
        subprocess.run(["tar", "-C", self.dir, "-xJf", fixture], check=True,
                       timeout=60)
        self.start_server("down")
        # An admin looks first: what the journals hold is shown, and what
        # the file GDBM flags holds is said to wait for the next run.
        before = {n: os.stat(os.path.join(self.dir, n)).st_mtime_ns
                  for n in os.listdir(self.dir)}
        dump = subprocess.run([ECHOPOST, "--dump", "-datanadhi", self.dir],
                              capture_output=True, timeout=60 * SLOW)
        self.assertEqual(dump.returncode, 0, dump.stderr)
        self.assertEqual(len(dump.stdout.splitlines()), 32877 - 26253 + 1)
        self.assertIn(b"needs recovery", dump.stderr)
        status = subprocess.run([ECHOPOST, "--status", "--json",
                                 "-datanadhi", self.dir, "-health-url",
                                 self.server.url],
                                capture_output=True, timeout=60 * SLOW)
        spool = json.loads(status.stdout)["spool"]
        self.assertTrue(spool["readable"])
        self.assertIn("the next run imports it", spool["error"])
        self.assertEqual(before, {
            n: os.stat(os.path.join(self.dir, n)).st_mtime_ns
            for n in os.listdir(self.dir)}, "--dump or --status changed DIR")
        proc, sock = self.start_in(self.dir)
        new_text = self.assert_serving(proc, sock, tag="beside the fixture")
        self.server.up()
        self.assertEqual(self.wait_exit(proc, timeout=300 * SLOW), 0,
                         self.stderr_of(proc))
        delivered = [log_data_of(p) for p in self.posts()]
        ids = {d["id"] for d in delivered if "id" in d}
        self.assertEqual(len(ids), 32874)
        self.assertIn(json.loads(new_text), delivered)
        self.assertEqual(spool_names(self.dir), [])
        names = self.names_of(proc)
        self.assertIn("spool_imported", names)
        self.assertNotIn("record_missing", names)


# --------------------------------------------------------------------------
# 2. Full disk and spool cap

class DiskTest(ReliabilityTest):

    def cannot_mount(self, why):
        if os.environ.get("ECHOPOST_REQUIRE_TMPFS"):
            self.fail(why + " (ECHOPOST_REQUIRE_TMPFS is set)")
        self.skipTest(why)

    def mount_tmpfs(self, size):
        """A tmpfs of size under the temp dir, unmounted at cleanup (after
        every process is killed). Skips the test if mount is refused,
        unless ECHOPOST_REQUIRE_TMPFS is set (CI): then it fails."""
        if os.geteuid() != 0:
            self.cannot_mount("mounting a tmpfs needs root")
        fs = os.path.join(self.tmp, "fs")
        os.mkdir(fs)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%s,mode=0755" % size, "tmpfs", fs],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        if r.returncode != 0:
            self.cannot_mount("mount -t tmpfs not permitted here: %s"
                              % r.stderr.decode(errors="replace").strip())

        def unmount():
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
            subprocess.run(["umount", fs], stderr=subprocess.DEVNULL,
                           timeout=10)
            if os.path.ismount(fs):
                subprocess.run(["umount", "-l", fs], timeout=10)
        self.addCleanup(unmount)
        self.fs = fs
        self.filler = os.path.join(fs, "filler")
        return fs

    def free(self):
        st = os.statvfs(self.fs)
        return st.f_bavail * st.f_frsize

    def fill(self, leave):
        """Grow the filler file until at most leave bytes are free (or the
        file system is full)."""
        # Unbuffered: a short or failed write is seen at once, and closing
        # the file has nothing left to flush into a full file system.
        with open(self.filler, "ab", buffering=0) as f:
            while self.free() > leave:
                want = max(4096, min(1 << 20, self.free() - leave))
                try:
                    if f.write(b"\xa5" * want) == 0:
                        break
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break

    def test_full_disk_refuses_with_reason_and_resumes_by_itself(self):
        # Protects: on a nearly full disk, appends stop short of it
        # (DISK_MARGIN) with success false and "disk full" (the SDK then
        # falls back), nothing stored before is harmed, and accepting
        # resumes by itself once space returns; everything acknowledged is
        # delivered and echopost exits 0.
        fs = self.mount_tmpfs("16m")
        self.assertGreater(self.free(), DISK_MARGIN + (1 << 20))
        self.start_server("down")
        dir = os.path.join(fs, "dn")
        proc, sock = self.start_in(dir)
        acked = []
        for i in range(10):
            text = json.dumps({"n": i, "phase": "room"})
            r = send_log(sock, text)
            self.assertTrue(r.success, r.message)
            acked.append(text)

        self.fill(leave=4 << 20)
        self.assertLess(self.free(), DISK_MARGIN)
        time.sleep(DISK_CHECK * 1.5)
        refused = []
        for i in range(5):
            text = json.dumps({"n": i, "phase": "full"})
            r = send_log(sock, text)
            self.assertFalse(r.success,
                             "stored with %d bytes free, under the margin"
                             % self.free())
            self.assertIn("disk full", r.message)
            refused.append(text)
        self.assertIsNone(proc.poll())

        os.unlink(self.filler)
        # No restart, no signal: it must resume by itself, at once or
        # within a second at worst.
        first = json.dumps({"n": 0, "phase": "again"})
        ok = wait_until(lambda: send_log(sock, first).success, 1.0, 0.05)
        self.assertTrue(ok, "accepting did not resume after space returned")
        acked.append(first)
        for i in range(1, 5):
            text = json.dumps({"n": i, "phase": "again"})
            r = send_log(sock, text)
            self.assertTrue(r.success, r.message)
            acked.append(text)

        posts = self.deliver_and_exit(proc)
        # First arrivals, in order: the acknowledged ones exactly.
        self.assert_arrival_order([log_data_of(p) for p in posts],
                                  [json.loads(t) for t in acked])
        names = self.names_of(proc)
        self.assertNotIn("spool_recovered", names)
        self.assertNotIn("spool_damaged", names)

    def test_enospc_does_not_crash_and_recovers(self):
        # Protects: when the disk fills between two free-space checks, a
        # log is either acknowledged (it went into journal space written
        # ahead of time, so it is on disk) or refused with a reason; never
        # a crash. Then, with the disk still full, GDBM meets ENOSPC as
        # closed journals are sealed into it: echopost logs it, keeps the
        # journals, and goes on once space returns. Nothing acknowledged is
        # lost, the order holds, storing resumes, exit 0, and no debris of
        # a failed sealing is left in DIR.
        fs = self.mount_tmpfs("16m")
        self.start_server("down")
        dir = os.path.join(fs, "dn")
        proc, sock = self.start_in(dir, journal_size=256 * 1024)
        acked = []

        def send(text):
            r = send_log(sock, text)
            if r.success:
                acked.append(text)
            else:
                self.assertTrue(r.message, "refused without a reason")
            return r

        for i in range(10):
            self.assertTrue(send(json.dumps({"n": i})).success)
        big = "y" * 300000
        past_check = 0      # big logs that got past the free-space check
        for attempt in range(3):
            # A log >100 ms after the last one: this append checks the
            # free space (plenty); the next ones, a few ms later, do not.
            time.sleep(DISK_CHECK * 1.2)
            self.assertTrue(send(json.dumps({"attempt": attempt})).success)
            self.fill(leave=0)
            for i in range(3):
                r = send(json.dumps({"attempt": attempt, "big": big, "i": i}))
                self.assertIsNone(proc.poll(), "echopost died on ENOSPC")
                past_check += r.success or "disk full" not in r.message
            os.unlink(self.filler)
        self.fill(leave=0)
        # Sealing the closed journals needs room for a GDBM file.
        gdbm_full = wait_until(lambda: any(
            e["event"] == "spool_error" for e in self.events_of(proc)),
            3.0, 0.1)
        self.assertIsNone(proc.poll(), "echopost died on a full disk")
        os.unlink(self.filler)
        posts = self.deliver_and_exit(proc)
        delivered = [log_data_of(p) for p in posts]
        lost = [t for t in acked if json.loads(t) not in delivered]
        self.assertEqual(lost, [], "acknowledged logs lost after ENOSPC")
        self.assert_arrival_order(delivered, [json.loads(t) for t in acked])
        self.assertGreater(past_check, 0, "every big log met the free-space "
                           "check: writing on a full disk was not tried")
        self.assertTrue(gdbm_full, "GDBM never met the full disk: the "
                        "test did not test what it is for")
        # Last, so that the checks above are reported first: a failed
        # sealing must not leave its temporary file behind.
        self.assertEqual(spool_names(dir), [],
                         "spool files left in DIR after a clean exit")

    def fill_spool(self, sock, count, pad):
        """Send up to count logs of about pad bytes until one is refused:
        (texts acknowledged, the refusal's message or None)."""
        acked = []
        for i in range(count):
            text = json.dumps({"n": i, "pad": "z" * pad})
            r = send_log(sock, text)
            if not r.success:
                return acked, r.message
            acked.append(text)
        return acked, None

    def test_default_cap_is_a_quarter_of_the_file_system(self):
        # Protects: with no --max-spool-size, no client can fill the file
        # system: the spool takes at most a quarter of it (8G at most),
        # then logs are refused with the reason, and what was stored is
        # delivered.
        fs = self.mount_tmpfs("16m")
        self.start_server("down")
        proc, sock = self.start_in(os.path.join(fs, "dn"))
        acked, refusal = self.fill_spool(sock, 40, 200000)
        self.assertIsNotNone(refusal, "8 MB stored on a 16 MB file system")
        self.assertIn("spool full", refusal)
        self.assertIn("the limit is %d" % (4 << 20), refusal)
        self.assertGreater(self.free(), 8 << 20)
        posts = self.deliver_and_exit(proc)
        self.assert_arrival_order([log_data_of(p) for p in posts],
                                  [json.loads(t) for t in acked], once=True)

    def test_spool_cap_refuses_with_reason_and_keeps_acknowledged(self):
        # Protects: --max-spool-size: once the cap is reached, logs are
        # refused with a message naming "spool full" and the option; the
        # spool never exceeds the cap; every acknowledged log is delivered.
        self.start_server("down")
        proc, sock = self.start_in(self.dir, ["--max-spool-size", "64k"])
        acked, refusal = self.fill_spool(sock, 400, 1000)
        self.assertIsNotNone(refusal, "never refused with a 64k cap")
        self.assertIn("spool full", refusal)
        self.assertIn("--max-spool-size", refusal)
        stored = sum(record_size(t) for t in acked)
        self.assertLessEqual(stored, 64 * 1024, "the spool went over its cap")
        self.assertGreater(stored, 48 * 1024, "refused long before the cap")
        # Still refused, still alive.
        r = send_log(sock, json.dumps({"n": "more", "pad": "z" * 1000}))
        self.assertFalse(r.success)
        self.assertIsNone(proc.poll())
        posts = self.deliver_and_exit(proc)
        self.assert_arrival_order([log_data_of(p) for p in posts],
                                  [json.loads(t) for t in acked], once=True)


# --------------------------------------------------------------------------
# 3. Hostile input on the socket

class HostileInputTest(ReliabilityTest):

    def setUp(self):
        super().setUp()
        self.start_server("down")

    def finish(self, proc, good):
        """Server up: exactly the good logs (texts) are delivered, in
        order, and echopost exits 0: nothing refused was stored."""
        posts = self.deliver_and_exit(proc)
        self.assert_arrival_order([log_data_of(p) for p in posts],
                                  [json.loads(t) for t in good], once=True)

    def test_oversized_message_is_resource_exhausted_and_serving_goes_on(self):
        # Protects: --max-message-size: a bigger request is refused with
        # RESOURCE_EXHAUSTED, is not stored, and the process keeps serving.
        proc, sock = self.start_in(self.dir, ["--max-message-size", "4k"])
        good = [self.assert_serving(proc, sock, "before")]
        with self.assertRaises(grpc.RpcError) as cm:
            send_log(sock, json.dumps({"big": "b" * 5000}))
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        good.append(self.assert_serving(proc, sock, "after"))
        self.finish(proc, good)

    def test_malformed_protobuf_is_refused_with_reason_never_crashes(self):
        # Protects: request decoding. Bytes that are not a LogRequest get
        # success false with a reason that says so, never a crash, and
        # nothing of them is stored.
        proc, sock = self.start_in(self.dir)
        rng = random.Random(3)
        cases = {
            "length past the end": b"\x0a\xff\xff\xff\x0f",
            "truncated varint": b"\x0a\xff",
            "wrong wire type": b"\x0b\x01",
            "field number zero": b"\x02\x01x",
            "bytes 0..255": bytes(range(256)),
            "random": rng.randbytes(4000),
            "nested garbage": pb_field(1, b'{"a":1}') + b"\x12\xff\xff",
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                r = raw_call(sock, data)
                self.assertFalse(r.success, "malformed request stored")
                self.assertIn("malformed", r.message)
                self.assertIsNone(proc.poll(), "echopost died")
        good = [self.assert_serving(proc, sock)]
        self.finish(proc, good)

    def test_invalid_utf8_is_refused_with_reason(self):
        # Protects: proto3 strings are UTF-8 and the server gets JSON text:
        # invalid UTF-8 in json_data or in a pipeline is refused with a
        # reason, not stored.
        proc, sock = self.start_in(self.dir)
        cases = {
            "json_data": pb_field(1, b'{"a": "\xff\xfe"}'),
            "json_data overlong": pb_field(1, b'{"a": "\xc0\xaf"}'),
            "json_data surrogate": pb_field(1, b'{"a": "\xed\xa0\x80"}'),
            "pipeline": pb_field(1, b'{"a": 1}') + pb_field(2, b"\xc3\x28"),
            "second pipeline": (pb_field(1, b'{"a": 1}') + pb_field(2, b"ok")
                                + pb_field(2, b"bad\x80")),
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                r = raw_call(sock, data)
                self.assertFalse(r.success, "invalid UTF-8 stored")
                self.assertIn("not valid", r.message)
                self.assertIsNone(proc.poll())
        good = [self.assert_serving(proc, sock)]
        self.finish(proc, good)

    def test_nul_bytes_are_refused_or_kept_never_truncated(self):
        # Protects: "log_data is the json_data as received" and the
        # pipeline codes. A NUL is valid UTF-8 in a proto3 string; a
        # json_data holding one is not a JSON text, so it must be refused;
        # a pipeline holding one must be refused or delivered whole, never
        # cut at the NUL (which would send the log to another pipeline).
        proc, sock = self.start_in(self.dir)
        r = send_log(sock, '{"a": 1}\x00{"b": 2}')
        self.assertFalse(r.success,
                         "json_data with a NUL byte was accepted (a JSON "
                         "text cannot hold one)")
        r = send_log(sock, '{"pipe": "nul"}', ["pi\x00pe"])
        accepted = r.success
        posts = self.deliver_and_exit(proc)
        got = [json.loads(p["body"]) for p in posts]
        if accepted:
            self.assertEqual(got, [{"pipelines": ["pi\x00pe"],
                                    "log_data": {"pipe": "nul"}}],
                             "a pipeline with a NUL was delivered altered")
        else:
            self.assertEqual(got, [])

    def test_deeply_nested_json_is_refused_with_reason(self):
        # Protects: the JSON check does not blow the stack or hang on
        # 100 000 nested arrays; the log is refused with a reason.
        proc, sock = self.start_in(self.dir)
        for name, text in (
                ("unclosed", '{"a": ' + "[" * 100000),
                ("closed", '{"a": ' + "[" * 100000 + "]" * 100000 + "}")):
            with self.subTest(case=name):
                t0 = time.monotonic()
                r = send_log(sock, text)
                self.assertFalse(r.success)
                self.assertIn("not valid JSON", r.message)
                self.assertLess(time.monotonic() - t0, 5.0)
                self.assertIsNone(proc.poll())
        good = [self.assert_serving(proc, sock)]
        self.finish(proc, good)

    def test_huge_pipeline_list_is_stored_or_refused_no_crash(self):
        # Protects: a request with as many pipelines as fit in 1 MiB is
        # either stored (and then delivered whole) or refused with a
        # reason; the process survives and keeps serving.
        proc, sock = self.start_in(self.dir)
        count = (1024 * 1024 - 64) // 3        # each "p": 3 bytes on the wire
        t0 = time.monotonic()
        try:
            r = send_log(sock, '{"many": true}', ["p"] * count, timeout=30)
            stored, reason = r.success, r.message
        except grpc.RpcError as e:
            stored, reason = False, e.details()
        self.assertLess(time.monotonic() - t0, 20.0)
        if not stored:
            self.assertTrue(reason, "refused without a reason")
        good = self.assert_serving(proc, sock)
        posts = self.deliver_and_exit(proc)
        bodies = [json.loads(p["body"]) for p in posts]
        if stored:
            self.assertEqual(len(bodies), 2)
            self.assertEqual(bodies[0]["log_data"], {"many": True})
            self.assertEqual(bodies[0]["pipelines"], ["p"] * count)
            bodies = bodies[1:]
        self.assertEqual([b["log_data"] for b in bodies], [json.loads(good)])

    def test_non_grpc_bytes_on_the_socket_do_no_harm(self):
        # Protects: the listener against clients that do not speak gRPC:
        # HTTP/1.1, random bytes, a broken HTTP/2 preface. The process
        # stays up and keeps serving.
        proc, sock = self.start_in(self.dir)
        rng = random.Random(5)
        payloads = {
            "http/1.1": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "random 64k": rng.randbytes(64 * 1024),
            "preface then junk": H2_PREFACE + rng.randbytes(4096),
            "half a preface": H2_PREFACE[:7],
        }
        for name, data in payloads.items():
            with self.subTest(case=name):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.settimeout(5)
                    s.connect(sock)
                    try:
                        s.sendall(data)
                    except OSError:
                        pass            # the server may hang up on us
                    drain_socket(s, 0.5)
                finally:
                    s.close()
                self.assertIsNone(proc.poll(), "echopost died")
                self.assert_serving(proc, sock, name)
        self.assertEqual(self.stop_echopost(proc), 0)

    def test_silent_clients_block_neither_others_nor_shutdown(self):
        # Protects: a client that connects and never sends, and one that
        # opens a SendLog call and never finishes its message, do not
        # stop other logs from being served, and SIGTERM still ends the
        # run within the close grace (listener.c CLOSE_GRACE_MS) + 2 s,
        # with exit 0 and the acknowledged logs kept.
        proc, sock = self.start_in(self.dir)
        held = []
        try:
            idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            held.append(idle)
            idle.connect(sock)
            half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            held.append(half)
            half.connect(sock)
            half.sendall(half_open_call())
            time.sleep(0.2)
            for i in range(5):
                t0 = time.monotonic()
                self.assert_serving(proc, sock, "while held %d" % i)
                self.assertLess(time.monotonic() - t0, 2.0,
                                "a log waited behind a silent client")
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            status = self.wait_exit(proc, timeout=CLOSE_GRACE + 5)
            took = time.monotonic() - t0
        finally:
            for s in held:
                s.close()
        self.assertEqual(status, 0)
        self.assertLess(took, CLOSE_GRACE + 2.0,
                        "SIGTERM took %.1fs with silent clients" % took)
        self.assertEqual(self.events_of(proc)[-1].get("spooled"), 5)
        self.assertTrue(spool_kept(self.dir))

    def test_thousand_connections_at_once(self):
        # Protects: resources under a connection flood: 1000 connections
        # held at once do not stop a real log from being served, memory
        # (VmRSS) grows by less than 64 MiB, and the descriptors are given
        # back once the connections close.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            if hard != resource.RLIM_INFINITY and hard < 1200:
                self.skipTest("RLIMIT_NOFILE hard limit %d < 1200" % hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (
                1200 if hard == resource.RLIM_INFINITY else min(hard, 4096),
                hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE,
                            (soft, hard))
        proc, sock = self.start_in(self.dir)
        good = [self.assert_serving(proc, sock, "warm-up")]
        rss0, fds0 = vm_rss_kib(proc.pid), open_fds(proc.pid)
        held = []
        try:
            for i in range(1000):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                held.append(s)
                s.settimeout(5)
                s.connect(sock)
                if i % 2:
                    s.sendall(H2_PREFACE + h2_frame(4, 0, 0, b""))
            # Let echopost accept them all. fds0 may still hold the
            # warm-up call's connection, closing under AddressSanitizer's
            # pace: a few short of 1000 more is all of them.
            accepted = wait_until(
                lambda: open_fds(proc.pid) >= fds0 + 990, 30.0 * SLOW, 0.05)
            self.assertTrue(accepted, "echopost did not accept 1000 "
                            "connections: %d descriptors more"
                            % (open_fds(proc.pid) - fds0))
            t0 = time.monotonic()
            good.append(self.assert_serving(proc, sock, "flooded"))
            self.assertLess(time.monotonic() - t0, 5.0)
            grown = vm_rss_kib(proc.pid) - rss0
            # AddressSanitizer keeps freed memory in quarantine: no bound.
            if os.environ.get("ECHOPOST_SANITIZED") != "yes":
                self.assertLess(grown, 64 * 1024,
                                "VmRSS grew by %d KiB with 1000 connections"
                                % grown)
        finally:
            for s in held:
                s.close()
        self.assertTrue(
            wait_until(lambda: open_fds(proc.pid) <= fds0 + 10, 5.0, 0.05),
            "descriptors not given back: %d open, %d before"
            % (open_fds(proc.pid), fds0))
        good.append(self.assert_serving(proc, sock, "after"))
        self.finish(proc, good)


# --------------------------------------------------------------------------
# 4. Files and permissions

class FilesTest(ReliabilityTest):

    def assert_mode(self, path, mode):
        self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), mode,
                         "%s: mode %o, expected %o"
                         % (path, stat.S_IMODE(os.lstat(path).st_mode), mode))

    def test_file_modes_with_logs_stored_and_server_down(self):
        # Protects: the logs are private: spool, pid file, status lock and
        # session files 0600, session dir 0700; the socket 0600 by default,
        # or the mode given by --socket-mode.
        self.start_server("down")
        for sock_mode, extra in ((0o600, []), (0o660, ["--socket-mode",
                                                       "0660"])):
            with self.subTest(socket_mode=oct(sock_mode)):
                proc, sock = self.start_in(self.dir, extra)
                self.store_seq_logs(sock, 5)
                self.assert_mode(sock, sock_mode)
                self.assert_mode(os.path.join(self.dir, ANCHOR), sock_mode)
                for name in (POSITION, PID_FILE, STATUS_LOCK):
                    self.assert_mode(os.path.join(self.dir, name), 0o600)
                sessions = self.sessions()
                self.assertTrue(sessions)
                for session in sessions:
                    self.assertRegex(os.path.basename(session), SESSION_RE)
                    self.assert_mode(session, 0o700)
                    names = os.listdir(session)
                    self.assertIn("agent.log", names)
                    for name in names:
                        self.assert_mode(os.path.join(session, name), 0o600)
                # Nothing under DIR is readable by others.
                for path in files_under(self.dir):
                    self.assertEqual(os.lstat(path).st_mode & 0o077, 0,
                                     "%s is not private" % path)
                self.assertEqual(self.stop_echopost(proc), 0)
                self.assert_mode(os.path.join(self.dir, POSITION), 0o600)

    def test_symlinked_dir_is_refused(self):
        # Protects: DIR may not be a symbolic link someone could point
        # elsewhere: exit 73, a message saying so, nothing created there.
        self.start_server("down")
        real = os.path.join(self.tmp, "real")
        os.mkdir(real, 0o750)
        link = os.path.join(self.tmp, "link")
        os.symlink(real, link)
        for given in (link, link + "/"):
            with self.subTest(dir=given):
                proc = self.start_echopost(self.args(given))
                self.assertEqual(self.wait_exit(proc, 5), 73)
                self.assertIn("symbolic link", self.stderr_of(proc))
                self.assertEqual(os.listdir(real), [],
                                 "files created through the link")

    def test_world_writable_dir_is_refused_unless_sticky(self):
        # Protects: a DIR anyone can write to (without the sticky bit)
        # would let others swap the socket or the spool: exit 73 and a
        # message saying so. With the sticky bit it is accepted (control).
        self.start_server("down")
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o777)
        proc = self.start_echopost()
        self.assertEqual(self.wait_exit(proc, 5), 73)
        self.assertIn("world-writable", self.stderr_of(proc))
        self.assertFalse(os.path.lexists(self.sock))
        os.chmod(self.dir, 0o1777)
        proc, sock = self.start_in(self.dir)
        self.assert_serving(proc, sock)
        self.assertEqual(self.stop_echopost(proc), 0)

    def test_api_key_never_written_printed_or_shown(self):
        # Protects: the API key given with -api-key is in no file under
        # DIR (content or name), in no event line (stdout, agent.log),
        # not on stderr and not in /proc/PID/cmdline; yet it is the key
        # the server gets (so the check is not vacuous).
        self.API_KEY = "APIKEY-q7Zx-distinctive-31337"
        key = self.API_KEY.encode()
        self.start_server("down")

        def check_everything(proc):
            for root, dirs, names in os.walk(self.dir):
                for name in dirs + names:
                    self.assertNotIn(self.API_KEY, name)
            for path in files_under(self.dir):
                with open(path, "rb") as f:
                    self.assertNotIn(key, f.read(), "key in %s" % path)
            with open(proc.out_path, "rb") as f:
                self.assertNotIn(key, f.read(), "key in an event line")
            with open(proc.err_path, "rb") as f:
                self.assertNotIn(key, f.read(), "key on stderr")

        proc, sock = self.start_in(self.dir)
        with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
            cmdline = f.read()
        self.assertIn(b"-datanadhi", cmdline)
        self.assertNotIn(key, cmdline, "key in /proc/PID/cmdline")
        self.store_seq_logs(sock, 5)
        check_everything(proc)
        self.assertEqual(self.stop_echopost(proc), 0)
        check_everything(proc)

        # A later run delivers them: one is rejected (failure log), four
        # are delivered (success log); both logs must stay free of it.
        self.server.set(log_status=400, log_status_count=1)
        later = self.start_echopost(self.args())
        self.deliver_and_exit(later)
        check_everything(later)
        posts = self.posts()
        self.assertEqual(len(posts), 5)
        self.assertEqual({p["headers"].get("datanadhi-api-key")
                          for p in posts}, {self.API_KEY})
        self.assertEqual(len(self.session_file("agent-failure.log")), 1)
        self.assertEqual(len(self.session_file("agent-success.log")), 4)
        for path in files_under(self.dir):
            with open(path, "rb") as f:
                self.assertNotIn(key, f.read(), "key in %s" % path)


# --------------------------------------------------------------------------
# 5. A misbehaving server

class MisbehavingServerTest(ReliabilityTest):

    SERVER_ARGS = ["--timeout", "300ms"]
    INTERVAL = "50ms"

    def start_agent(self, dir=None):
        dir = self.dir if dir is None else dir
        return self.start_in(dir, self.SERVER_ARGS, self.INTERVAL)

    def success_lines(self, dir=None):
        return self.session_file("agent-success.log", dir)

    def assert_once_in_order(self, texts, posts):
        """Each text delivered exactly once, in order (give or take the
        requests in flight)."""
        self.assert_arrival_order([log_data_of(p) for p in posts],
                                  [json.loads(t) for t in texts], once=True)

    def _never_answers(self, config):
        self.start_server("down")
        proc, sock = self.start_agent()
        texts = self.store_seq_logs(sock, 10, pad=10)
        self.server.set(**config)
        self.server.up()
        time.sleep(0.5)                     # into its retry rhythm
        ticks0, t0 = cpu_ticks(proc.pid), time.monotonic()
        time.sleep(3.0)
        ticks = cpu_ticks(proc.pid) - ticks0
        elapsed = time.monotonic() - t0
        self.assertIsNone(proc.poll(), "echopost gave up on a mute server")
        # No busy loop: under 5% of one core while waiting.
        self.assertLess(ticks / CLK_TCK, 0.05 * elapsed,
                        "echopost used %d ticks of CPU in %.1fs of waiting"
                        % (ticks, elapsed))
        # Nothing is delivered: the server never finished an answer.
        self.assertEqual(self.success_lines(), [],
                         "logs counted as delivered without an answer")
        self.assertNotIn("record_delivered", self.names_of(proc))
        self.assertTrue(spool_kept(self.dir))
        if config.get("delay"):
            # Not even health checks are answered: the server is down.
            self.assertTrue(
                os.path.exists(os.path.join(self.dir, STATUS_LOCK)),
                "no status lock while the server does not answer")
        events = self.events_of(proc)
        # The server is fixed: everything arrives, once, in order.
        self.server.set(delay=0, log_delay=0)
        self.assertEqual(self.wait_exit(proc), 0)
        self.assert_once_in_order(texts, self.posts())
        self.assertEqual(len(self.success_lines()), len(texts))
        return events

    def test_server_that_never_answers_anything(self):
        # Protects: a server that accepts connections and never answers
        # (health checks included) costs no CPU (timeouts and backoff, no
        # busy loop), nothing is counted as delivered, and everything
        # arrives once it answers again.
        events = self._never_answers({"delay": 1000})
        self.assertTrue([e for e in events if e["event"] == "server_down"
                         and "timed out" in e.get("reason", "")],
                        "no health check timed out: the check proves "
                        "nothing")

    def test_server_that_never_answers_posts(self):
        # Protects: the same, when only POST /log hangs (health checks
        # pass): every try times out and is retried, none is counted.
        events = self._never_answers({"log_delay": 1000})
        self.assertTrue([e for e in events if e["event"] == "delivery_error"
                         and "timed out" in e.get("reason", "")],
                        "no POST timed out: the check proves nothing")
        self.assertIn("record_retry", [e["event"] for e in events])

    def test_slow_answers_below_timeout_are_delivered_in_order(self):
        # Protects: an answer that is slow but within --timeout counts:
        # every log is delivered once (not retried), in order.
        self.start_server("down")
        proc, sock = self.start_agent()
        texts = self.store_seq_logs(sock, 10, pad=10)
        self.server.set(delay=0.1)
        posts = self.deliver_and_exit(proc)
        self.assert_once_in_order(texts, posts)
        self.assertNotIn("record_retry", self.names_of(proc))
        self.assertEqual(len(self.success_lines()), len(texts))

    def test_hangup_mid_answer_is_retried_not_counted(self):
        # Protects: a connection closed in the middle of the answer (after
        # the status line, inside the headers, or inside the body) is not
        # a delivery: the record is retried until a complete 2xx answer,
        # nothing is lost, and only complete answers reach the success log.
        self.start_server("down")
        for at in ("status", "headers", "body"):
            with self.subTest(hangup_at=at):
                dir = os.path.join(self.tmp, "hangup-" + at, "dn")
                os.makedirs(os.path.dirname(dir))
                self.server.down()
                self.server.reset()
                self.server.set(hangup=None)
                proc, sock = self.start_agent(dir)
                texts = self.store_seq_logs(sock, 4, pad=10)
                self.server.set(hangup=3, hangup_at=at)
                posts = self.deliver_and_exit(proc)
                cut = [p for p in posts if p.get("hangup")]
                whole = [p for p in posts if not p.get("hangup")]
                self.assertEqual(len(cut), 3)
                self.assertEqual(
                    [log_data_of(p) for p in whole],
                    [json.loads(t) for t in texts],
                    "records whose answer was cut off (%s) were not "
                    "retried: cut %s" % (at, [log_data_of(p) for p in cut]))
                # The first record is retried until it gets a real answer.
                self.assertEqual({p["body"] for p in cut},
                                 {posts[0]["body"]})
                lines = self.success_lines(dir)
                self.assertEqual(
                    [l["log_data"]["payload"] for l in lines],
                    [json.loads(t) for t in texts],
                    "success log does not hold exactly the completed "
                    "deliveries")
                self.assertEqual(self.session_file("agent-failure.log", dir),
                                 [])

    def test_2xx_with_garbage_body_is_delivered(self):
        # Protects: the contract's answer classes: any 2xx is delivered,
        # whatever its body (not JSON, binary-looking, larger than what
        # echopost keeps of a body); the success log has each, once.
        self.start_server("down")
        garbage = ("\x00\x01<html>not json}}{{\ufffd\u2603" * 4000)
        for code in (200, 206):
            with self.subTest(code=code):
                dir = os.path.join(self.tmp, "garbage-%d" % code, "dn")
                os.makedirs(os.path.dirname(dir))
                self.server.down()
                self.server.reset()
                proc, sock = self.start_agent(dir)
                texts = self.store_seq_logs(sock, 3, pad=10)
                self.server.set(log_status=code, body=garbage)
                posts = self.deliver_and_exit(proc)
                self.assert_once_in_order(texts, posts)
                lines = self.success_lines(dir)
                self.assertEqual([l["log_data"]["payload"] for l in lines],
                                 [json.loads(t) for t in texts])
                self.assertEqual({l["context"]["responseCode"]
                                  for l in lines}, {code})
                self.assertEqual(self.session_file("agent-failure.log", dir),
                                 [])
        self.server.set(log_status=200, body=None)

    def test_flapping_server_loses_nothing_keeps_order(self):
        # Protects: at-least-once and order while the server goes up and
        # down every 200 ms for 3 s (connections cut mid-request) and two
        # clients keep sending: every acknowledged log is delivered, in
        # order of first arrival, and echopost exits 0.
        self.start_server("down")
        proc, sock = self.start_agent()
        # A backlog, and slow deliveries (30 ms each, ~4.5 s for it while
        # the server is up only half of 3 s), keep the spool from emptying
        # during the flapping, whatever the clients' speed: echopost stays
        # to live through all of it instead of draining and exiting.
        backlog = self.send_threads(
            1, 150, lambda t, i: Sent(2, i, log_text(2, i), ["fl"], ""))
        self.assert_all_stored(backlog)
        self.server.set(log_delay=0.03)
        stop = threading.Event()
        flaps = [0]

        def flap():
            try:
                deadline = time.monotonic() + 3.0
                while time.monotonic() < deadline:
                    self.server.up()
                    time.sleep(0.2)
                    self.server.down()
                    flaps[0] += 1
                    time.sleep(0.2)
            finally:
                stop.set()

        flapper = threading.Thread(target=flap)
        flapper.start()
        try:
            sent = self.send_threads(
                2, 100000, lambda t, i: Sent(t, i, log_text(t, i), ["fl"],
                                             ""), stop=stop)
        finally:
            stop.set()
            flapper.join(10)
        self.assertGreaterEqual(flaps[0], 4)
        self.assertIsNone(proc.poll(), "echopost exited during the flapping "
                          "although its spool was not empty")
        acked = [s for s in sent if s.acked is not None]
        self.assertGreater(len(acked), 10)
        self.assertEqual(len(acked), len(sent),
                         "a log was refused while the server flapped")
        self.server.set(log_delay=0)
        self.server.up()
        self.assertEqual(self.wait_exit(proc, timeout=30), 0,
                         self.stderr_of(proc))
        posts = self.posts()
        self.assert_in_ack_order(backlog + sent, posts)
        names = self.names_of(proc)
        self.assertIn("server_healthy", names)
        self.assertIn("server_down", names[names.index("server_healthy"):],
                      "echopost never saw the server go away")
        self.assertEqual(self.events_of(proc)[-1].get("spooled"), 0)

if __name__ == "__main__":
    unittest.main(verbosity=2)
