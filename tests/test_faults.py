#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Storage faults: an I/O error on a spool file, at a chosen call, must
never lose an acknowledged log silently (issue 23).

The fault comes from tests/faultpoint.so (LD_PRELOAD): it counts the
opens, reads, writes and syncs on spool files, over all threads, and makes
call N fail with an errno instead of making it; see its header.

Two parts, both run by make check:

  cases    named regression tests (unittest), one recipe each: a byte
           flipped in the middle of a journal, one EIO while a journal is
           read at start, a journal's magic changed, one EMFILE or EIO
           when a sealed file is opened, one EIO while a sealed record is
           read.
  sweep    store-then-replay on small journals (ECHOPOST_TEST_JOURNAL_SIZE,
           so that there are several journals, a spare and sealed files):
           phase A stores --logs logs of 1-2 KB with the server down, one
           per new channel, waits for sealing and stops with SIGTERM;
           phase B brings the server up and lets echopost replay and exit.
           A clean run counts the calls; then for N spread over them the
           whole of it runs with call N failing, per kind:
             eio-once        one EIO
             eio-persistent  EIO from call N on, on that file (the report
                             file carries it from phase A to phase B)
             emfile-once     one EMFILE, on opens only
           Then echopost runs again without the shim, the server up, until
           it exits: a persistent fault on a real disk is an admin's to
           fix; what counts is that nothing was lost silently.

Checked at every point, over every run of it:
  (a) every acknowledged log was delivered, or its sequence number is
      named by a record_missing event (seq, count), or by a
      record_quarantined one (damaged, kept in the quarantine file);
  (b) every start serves its socket within the SDK's 2 s (or, with
      nothing to do, exits 0);
  (c) no run dies by a signal the test did not send, nor with a
      sanitizer report;
  (d) with one transient fault (the once kinds) nothing is missing at
      all: no record_missing, every acknowledged log delivered (a log
      whose commit failed was answered success: false, and is not
      acknowledged);
  (e) a run that reported either does not exit 0 (EX_IOERR).
The sequence number of an acknowledged log: a fresh spool numbers records
from 0 in arrival order, and a failed commit gives its number to the next
log, so the kth acknowledged log is number k. The clean run checks that
against echopost --dump, and every point checks it for what --dump lists
after phase A.

  test_faults.py [--points N] [--seed S] [--kind NAME]... [--minutes M]
                 [--keep DIR] [--logs N] [--no-cases]

--points is per kind (default 4: the sample make check runs); --minutes
stops starting new points after that long, each kind having an even share.
Prints per kind: points, faults injected, delivered, reported missing,
silently lost; last, "N passed, N failed" over the cases and the points.
"""

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fakeserver import FakeServer  # noqa: E402
import support  # noqa: E402
from test_killpoints import (  # noqa: E402
    preload_built, send, sealed_in, sockets, spread, sweep_arguments)

FAULTPOINT = os.environ.get("ECHOPOST_FAULTPOINT",
                            os.path.join(HERE, "faultpoint.so"))
JOURNAL_SIZE = 8192
EX_IOERR = 74
# Events that name records a run could not deliver: lost, or damaged and
# kept in the quarantine file.
UNDELIVERED = ("record_missing", "record_quarantined")
# Phase B may rightly keep retrying a file that keeps failing: this long,
# then it is stopped, and the run without the shim finishes the replay.
REPLAY_WAIT = 8.0 * support.SLOW
SEALED = support.SPOOL + support.c_define("SEALED_SUFFIX")
KINDS = {
    "eio-once": ("once", "EIO"),
    "eio-persistent": ("persistent", "EIO"),
    "emfile-once": ("once", "EMFILE"),
}
SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"runtime error:",
                   b"ERROR: LeakSanitizer")


class Point:
    """The runs of echopost on one DIR: their output files, the shim's
    environment and report, and what went wrong with the runs."""

    def __init__(self, work, fault=None):
        self.work = work
        self.fault = fault or {}
        self.report = os.path.join(work, "faultpoint.report")
        self.runs = []          # (name, proc, output file)
        self.failed_starts = []
        self.crashes = []
        self.signalled = set()  # procs the test sent a signal

    def env(self, preload=True):
        env = dict(os.environ)
        env[support.JOURNAL_SIZE_ENV] = str(JOURNAL_SIZE)
        env.pop("DATANADHI_API_KEY", None)
        if preload:
            env["LD_PRELOAD"] = FAULTPOINT
            env["ECHOPOST_FAULT_REPORT"] = self.report
            env.update(self.fault)
            # Under the sanitizers the preload comes first; that is fine.
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                                   ":verify_asan_link_order=0").lstrip(":")
        return env

    def start(self, name, dir, url, preload=True):
        """Start echopost as the SDK would (the socket name deleted
        first) and wait up to 2 s for its socket: a start that neither
        serves nor exits 0 in that time is a failed start (b). Returns the
        process."""
        sock = os.path.join(dir, support.SOCKET_NAME)
        if os.path.lexists(sock):
            os.unlink(sock)
        out_path = os.path.join(self.work, "%d-%s.out"
                                % (len(self.runs), name))
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [support.ECHOPOST, "-datanadhi", dir, "-api-key", "k",
                 "-health-url", url, "--health-interval", "50ms"],
                env=self.env(preload), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT)
        self.runs.append((name, proc, out_path))
        if not support.socket_appears(proc, sock, support.SOCKET_WAIT):
            if proc.poll() is None:
                self.failed_starts.append("%s: no socket in %g s"
                                          % (name, support.SOCKET_WAIT))
            elif proc.returncode != 0:
                self.failed_starts.append("%s: exit %d before its socket"
                                          % (name, proc.returncode))
        return proc

    def stop(self, proc, timeout=30 * support.SLOW):
        if proc.poll() is None:
            self.signalled.add(proc)
            proc.send_signal(signal.SIGTERM)
        return self.wait(proc, timeout)

    def wait(self, proc, timeout):
        """proc's exit status; SIGTERM, then SIGKILL, if it takes longer
        than timeout."""
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signalled.add(proc)
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=30 * support.SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def shim(self):
        """(calls counted, calls failed, "call path" of the first)."""
        try:
            with open(self.report, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0, 0, ""
        if len(data) < 16:
            return 0, 0, ""
        calls, failed = struct.unpack("=QQ", data[:16])
        call = data[16:48].split(b"\0")[0].decode()
        path = data[48:].split(b"\0")[0].decode(errors="replace")
        return calls, failed, (call + " " + path).strip()

    def events(self, out_path):
        events = []
        with open(out_path, "rb") as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "event" in event:
                    events.append(event)
        return events

    def missing(self, names=UNDELIVERED):
        """The seqs named by record_missing events (lost), and by
        record_quarantined ones (damaged, kept in the quarantine file),
        in any run's output: not delivered, and said so."""
        seqs = set()
        for _, _, out_path in self.runs:
            for e in self.events(out_path):
                if e["event"] in names:
                    seqs.update(range(e["seq"], e["seq"] +
                                      e.get("count", 1)))
        return seqs

    def check_runs(self):
        """(c) and (e) over every run, once they have all ended: a list
        of what went wrong."""
        bad = []
        for name, proc, out_path in self.runs:
            code = proc.returncode
            if code < 0 and (proc not in self.signalled or
                             -code not in (signal.SIGTERM, signal.SIGKILL)):
                bad.append("%s died by signal %d" % (name, -code))
            with open(out_path, "rb") as f:
                text = f.read()
            if any(mark in text for mark in SANITIZER_MARKS):
                bad.append("%s: sanitizer report" % name)
            if code == 0 and any(e["event"] in UNDELIVERED
                                 for e in self.events(out_path)):
                bad.append("%s reported records it could not deliver "
                           "but exited 0" % name)
        return bad


def delivered_ids(server):
    """ids of the logs the server took (2xx)."""
    return {json.loads(r["body"])["log_data"]["id"]
            for r in server.requests(path="/log") if r["status"] // 100 == 2}


def dumped_seqs(dir):
    """id -> seq of what echopost --dump lists of dir (read only)."""
    result = subprocess.run([support.ECHOPOST, "--dump", "-datanadhi", dir],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=60 * support.SLOW)
    seqs = {}
    for line in result.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        seqs[entry["log_data"]["payload"]["id"]] = entry["context"]["seq"]
    return seqs


def store(point, dir, url, ids, sizes):
    """Phase A, server down: send the logs, one new channel each, wait
    until something is sealed, SIGTERM. Returns the acked ids, in order."""
    proc = point.start("store", dir, url)
    sock = os.path.join(dir, support.SOCKET_NAME)
    acked = []
    if os.path.exists(sock):
        for log_id, size in zip(ids, sizes):
            if proc.poll() is not None:
                break
            if send(sock, log_id, size):
                acked.append(log_id)
        support.wait_until(lambda: proc.poll() is not None or
                           sealed_in(dir), 3.0 * support.SLOW)
    point.stop(proc)
    return acked


def replay(point, name, dir, url, preload=True, timeout=REPLAY_WAIT):
    """Server up: echopost replays and exits; stopped after timeout."""
    return point.wait(point.start(name, dir, url, preload), timeout)


def account(acked, delivered, missing):
    """Acked log ids (the kth has seq k) against what was delivered and
    the seqs reported missing: (delivered, reported, silently lost)."""
    got = [i for i in acked if i in delivered]
    reported = [i for k, i in enumerate(acked)
                if i not in delivered and k in missing]
    lost = [i for k, i in enumerate(acked)
            if i not in delivered and k not in missing]
    return got, reported, lost


class Sweep:
    def __init__(self, work, server, keep, sizes):
        self.work = work
        self.server = server
        self.keep = keep
        self.sizes = sizes

    def whole(self, work, fault, tag):
        """Store, replay under the shim with fault, then replay without
        it. Returns (point, acked ids, id -> seq --dump gave after
        phase A)."""
        point = Point(work, fault)
        dir = os.path.join(work, "dn")
        ids = ["%s-%d" % (tag, i) for i in range(len(self.sizes))]
        self.server.reset()
        self.server.down()
        acked = store(point, dir, self.server.url, ids, self.sizes)
        seqs = dumped_seqs(dir)
        self.server.up()
        replay(point, "replay", dir, self.server.url)
        replay(point, "final", dir, self.server.url, preload=False,
               timeout=support.EXIT_WAIT)
        return point, acked, seqs

    def count(self, kind):
        """Calls a clean run of the kind's calls makes; checks the seqs
        of its acked logs against --dump."""
        mode, name = KINDS[kind]
        work = tempfile.mkdtemp(prefix="count-", dir=self.work)
        point, acked, seqs = self.whole(
            work, {"ECHOPOST_FAULT_ERRNO": name}, "count")
        if len(acked) != len(self.sizes):
            raise AssertionError("clean run: %d of %d logs acked"
                                 % (len(acked), len(self.sizes)))
        if seqs != {i: k for k, i in enumerate(acked)}:
            raise AssertionError("clean run: --dump's seqs are not 0.. in "
                                 "arrival order: %s" % sorted(seqs.values()))
        calls = point.shim()[0]
        shutil.rmtree(work)
        return calls

    def one(self, kind, fault_at):
        mode, name = KINDS[kind]
        work = tempfile.mkdtemp(prefix="point-", dir=self.work)
        point, acked, seqs = self.whole(
            work, {"ECHOPOST_FAULT_AT": str(fault_at),
                   "ECHOPOST_FAULT_ERRNO": name,
                   "ECHOPOST_FAULT_MODE": mode}, "%s-%d" % (kind, fault_at))
        _, failed, call = point.shim()
        missing = point.missing()
        got, reported, lost = account(acked, delivered_ids(self.server),
                                      missing)
        problems = point.failed_starts + point.check_runs()
        wrong = sorted(i for k, i in enumerate(acked)
                       if i in seqs and seqs[i] != k)
        if wrong:
            problems.append("acked logs not numbered in arrival order: %s"
                            % wrong)
        if lost:
            problems.append("%d acked logs silently lost" % len(lost))
        if mode == "once" and (missing or reported):
            problems.append("one transient fault, yet record_missing %s"
                            % sorted(missing))
        result = {"failed": failed, "call": call, "acked": len(acked),
                  "delivered": len(got), "reported": len(reported),
                  "lost": len(lost), "problems": problems}
        if problems and self.keep:
            shutil.copytree(work, os.path.join(
                self.keep, "%s-%d" % (kind, fault_at)), ignore=sockets)
        shutil.rmtree(work, ignore_errors=True)
        return result


def run_sweep(args, rng):
    """The fault sweep; (passed, failed)."""
    sizes = [rng.randrange(1000, 2000) for _ in range(args.logs)]
    work = tempfile.mkdtemp(prefix="ep-faults-", dir="/tmp")
    server = FakeServer().start(state="down")
    sweep = Sweep(work, server, args.keep, sizes)
    deadline = (time.monotonic() + args.minutes * 60 if args.minutes
                else None)
    kinds = args.kind or list(KINDS)
    passed = failed = 0
    print("seed %d, %d points per kind, %d logs of 1-2 KB"
          % (args.seed, args.points, args.logs))
    try:
        for index, kind in enumerate(kinds):
            began = time.monotonic()
            # An even share of what is left, so that a slow kind does not
            # starve the ones after it.
            share = (None if deadline is None else
                     began + (deadline - began) / (len(kinds) - index))
            total = sweep.count(kind)
            counts = dict.fromkeys(("points", "injected", "delivered",
                                    "reported", "lost"), 0)
            for fault_at in spread(rng, total, args.points):
                if share is not None and time.monotonic() > share:
                    break
                r = sweep.one(kind, fault_at)
                counts["points"] += 1
                counts["injected"] += r["failed"] > 0
                for key in ("delivered", "reported", "lost"):
                    counts[key] += r[key]
                passed += not r["problems"]
                failed += bool(r["problems"])
                if r["problems"]:
                    print("FAIL %s at call %d (%s): %s"
                          % (kind, fault_at, r["call"] or "not reached",
                             "; ".join(r["problems"])))
            print("%-14s calls %d; points %d, faults injected %d, "
                  "delivered %d, reported missing %d, silently lost %d; "
                  "%.0f s" % (kind, total, counts["points"],
                              counts["injected"], counts["delivered"],
                              counts["reported"], counts["lost"],
                              time.monotonic() - began))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return passed, failed


# --------------------------------------------------------------------------
# The cases: one recipe each.

def flip(path, offset, width=1):
    """xor 0xff over width bytes of path at offset."""
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(width)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


class FaultCase(support.ReliabilityTest):
    """Each test stores LOGS logs of about 1.9 KB with the server down,
    stops echopost with SIGTERM, does one thing to the spool or to the
    next start, and starts it with the server up."""

    LOGS = 50

    def store_spool(self, journal_size=None):
        """LOGS logs stored and the run stopped; returns their texts, by
        seq (a fresh spool numbers them from 0)."""
        self.start_server("down")
        proc, sock = self.start_in(self.dir, journal_size=journal_size)
        texts = [json.dumps({"seq": i, "pad": "x" * 1900})
                 for i in range(self.LOGS)]
        for text in texts:
            self.store(text)
        if journal_size is not None:
            self.assertTrue(support.wait_until(
                lambda: sealed_in(self.dir), 10 * support.SLOW),
                "no journal was sealed")
        self.assertEqual(self.stop_echopost(proc), 0)
        return texts

    def newest_journal(self):
        journals = [n for n in os.listdir(self.dir)
                    if support.JOURNAL_RE.fullmatch(n)]
        self.assertTrue(journals, "no journal left")
        return os.path.join(self.dir, max(
            journals, key=lambda n: int(n.rsplit(".", 1)[1])))

    def start_replay(self, fault=None, journal_size=None):
        """Server up: start echopost, under the shim with fault if any,
        and wait for its socket. Returns (proc, its Point)."""
        self.server.up()
        point = Point(self.tmp, fault)
        env = point.env(fault is not None)
        if journal_size is not None:
            env[support.JOURNAL_SIZE_ENV] = str(journal_size)
        else:
            env.pop(support.JOURNAL_SIZE_ENV, None)
        out_path = os.path.join(self.tmp, "replay-%d.out" % len(self.procs))
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([support.ECHOPOST] + self.args(),
                                    env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        proc.out_path = proc.err_path = out_path
        self.wait_socket(proc)
        return proc, point

    def finish(self, proc, point):
        """Wait for proc's exit: (exit status, its events, the shim's
        report)."""
        code = self.wait_exit(proc)
        self.assertGreaterEqual(code, 0, "echopost died by signal %d"
                                % -code)
        return code, point.events(proc.out_path), point.shim()

    def replay_with(self, fault=None, journal_size=None):
        return self.finish(*self.start_replay(fault, journal_size))

    def delivered_seqs(self):
        return {json.loads(p["body"])["log_data"]["seq"]
                for p in self.posts()}

    def assert_accounted(self, events, none_missing=False):
        """Every stored log delivered or named by record_missing, never
        both; none_missing: every one delivered. Returns the seqs
        reported missing."""
        missing = set()
        for e in events:
            if e["event"] == "record_missing":
                missing.update(range(e["seq"], e["seq"] + e["count"]))
        delivered = self.delivered_seqs()
        lost = sorted(set(range(self.LOGS)) - delivered - missing)
        self.assertEqual(lost, [], "acknowledged logs silently lost")
        if none_missing:
            self.assertEqual(sorted(missing), [],
                             "records reported missing")
        return missing

    def kept_aside(self):
        return [n for n in os.listdir(self.dir) if ".damaged-" in n]

    def test_1_flipped_byte_mid_journal_salvages_and_reports(self):
        # A flipped byte in the middle of the only journal must not cut
        # off the records after it: those whose entries check out are
        # delivered, the rest named by record_missing, the file kept for a
        # person, and the run says so with EX_IOERR.
        self.store_spool()
        journal = self.newest_journal()
        self.assertGreater(os.path.getsize(journal), 50000)
        flip(journal, 50000)
        code, events, _ = self.replay_with()
        missing = self.assert_accounted(events)
        self.assertTrue(missing, "the damaged record was not reported")
        self.assertLess(len(missing), 3, "more than the damaged entry (and "
                        "its neighbour) reported missing: %s"
                        % sorted(missing))
        self.assertTrue(self.kept_aside(), "no damaged copy kept")
        self.assertEqual(code, EX_IOERR)

    def test_2_one_eio_reading_journal_at_start_loses_nothing(self):
        # One EIO on a read of the journal's entries at start is a
        # transient error: retried, it costs nothing.
        self.store_spool()
        code, events, shim = self.replay_with(
            {"ECHOPOST_FAULT_AT": "1", "ECHOPOST_FAULT_CALLS": "read",
             "ECHOPOST_FAULT_OFFSET": "1000",
             "ECHOPOST_FAULT_MATCH": os.path.basename(
                 self.newest_journal())})
        self.assertEqual(shim[1], 1, "the fault was never injected")
        self.assert_accounted(events, none_missing=True)
        self.assertEqual(self.kept_aside(), [], "a journal set aside")
        self.assertEqual(code, 0)

    def test_3_bad_magic_keeps_file_and_salvages_entries(self):
        # A journal whose header is damaged still holds entries that
        # check out: they are delivered, the file is not deleted, and
        # only what cannot be read is reported.
        self.store_spool()
        journal = self.newest_journal()
        flip(journal, 0)
        code, events, _ = self.replay_with()
        missing = self.assert_accounted(events)
        self.assertEqual(self.delivered_seqs() | missing,
                         set(range(self.LOGS)))
        self.assertLess(len(missing), self.LOGS,
                        "nothing salvaged from the entries")
        self.assertTrue(self.kept_aside() or os.path.exists(journal),
                        "the damaged journal was deleted")

    def assert_clean_exit(self, code, events, shim):
        """The one fault was injected, nothing is missing, everything was
        delivered, nothing set aside, exit 0."""
        self.assertEqual(shim[1], 1, "the fault was never injected")
        self.assert_accounted(events, none_missing=True)
        self.assertEqual(self.kept_aside(), [], "a file set aside")
        self.assertEqual(code, 0)

    def sealed_fault(self, fault):
        # A sealed file that cannot be opened once (too many files open,
        # or an I/O error) is tried again, not taken for damage.
        self.store_spool(journal_size=JOURNAL_SIZE)
        self.assert_clean_exit(*self.replay_with(
            dict(fault, ECHOPOST_FAULT_AT="1", ECHOPOST_FAULT_MATCH=SEALED),
            journal_size=JOURNAL_SIZE))

    def test_4a_one_emfile_opening_sealed_file(self):
        self.sealed_fault({"ECHOPOST_FAULT_ERRNO": "EMFILE"})

    def test_4b_one_eio_opening_sealed_file(self):
        self.sealed_fault({"ECHOPOST_FAULT_ERRNO": "EIO",
                           "ECHOPOST_FAULT_CALLS": "open"})

    def test_5_one_eio_reading_sealed_record(self):
        # One read error inside a sealed file is retried, and the file
        # goes only once all it held is delivered. The read that fails is
        # the middle one of a clean replay's reads of sealed files: past
        # the few header reads of the first open, among the records'.
        self.store_spool(journal_size=JOURNAL_SIZE)
        ranges = {n: set(range(*map(int, support.SEALED_RE.fullmatch(
            n).groups()))) for n in sealed_in(self.dir)}
        self.assertTrue(ranges, "nothing sealed")
        reads = {"ECHOPOST_FAULT_CALLS": "read",
                 "ECHOPOST_FAULT_MATCH": SEALED}
        clean = os.path.join(self.tmp, "clean")
        shutil.copytree(self.dir, clean, ignore=sockets)
        proc, point = self.start_replay(reads, journal_size=JOURNAL_SIZE)
        total = self.finish(proc, point)[2][0]
        self.assertGreater(total, 0, "no read of a sealed file counted")
        shutil.rmtree(self.dir)
        shutil.move(clean, self.dir)
        os.unlink(point.report)
        self.server.reset()
        # A server that answers slowly, one at a time, so that a sealed
        # file removed too early is seen gone before its records arrive.
        self.server.set(log_delay=0.02, serial=True)
        proc, point = self.start_replay(
            dict(reads, ECHOPOST_FAULT_AT=str((total + 1) // 2)),
            journal_size=JOURNAL_SIZE)
        early = []
        while proc.poll() is None and ranges:
            for name in [n for n in ranges
                         if not os.path.exists(os.path.join(self.dir, n))]:
                undelivered = ranges.pop(name) - self.delivered_seqs()
                if undelivered:
                    early.append((name, sorted(undelivered)))
            time.sleep(0.005)
        self.assert_clean_exit(*self.finish(proc, point))
        self.assertEqual(early, [], "sealed files removed before all their "
                         "records were delivered")


def run_cases():
    """The regression cases; (passed, failed)."""
    support.load_stubs()
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(FaultCase)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    return result.testsRun - failed, failed


def main():
    parser = sweep_arguments(__doc__, 4, "kind", list(KINDS), 36,
                             "logs phase A stores")
    parser.add_argument("--no-cases", action="store_true",
                        help="the sweep only")
    args = parser.parse_args()
    if not preload_built(FAULTPOINT):
        return 1
    support.load_stubs()
    passed = failed = 0
    if not args.no_cases:
        passed, failed = run_cases()
    p, f = run_sweep(args, random.Random(args.seed))
    passed += p
    failed += f
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
