#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Storage faults, cases 6 to 8 of issue 23 (cases 1 to 5 are in
test_faults.py): a persistent EIO on the newest journal or on the
position file, the ordering of syncs around a seal's EEXIST and around
the failure log, a kill between sealing and saving the head, a start on a
full disk, and the admin commands on a damaged spool.

Faults come from tests/faultpoint.so (LD_PRELOAD, see its header), the
order of system calls from strace(1) (the tests that need it skip without
it), the full disk from a small tmpfs (root only; skipped otherwise,
failed instead with ECHOPOST_REQUIRE_TMPFS set). Every wait is bounded and
every test cleans up its processes, mounts and temp dirs.

Paths come from the environment, as for test_faults.py (ECHOPOST,
ECHOPOST_PROTO, ECHOPOST_FAULTPOINT). Run with
/usr/bin/python3 tests/test_storage_faults.py.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import support  # noqa: E402
import test_disk  # noqa: E402
import test_faults  # noqa: E402
from support import (  # noqa: E402
    ECHOPOST, JOURNAL_RE, POSITION, SEALED_RE, SLOW, SOCKET_NAME, STRACE,
    c_define, traced_calls, wait_until)
from test_faults import EX_IOERR, JOURNAL_SIZE, Point, flip  # noqa: E402
from test_killpoints import sealed_in, sockets  # noqa: E402

FAILURE_LOG = support.c_define("FAILURE_LOG_NAME")


def setUpModule():
    if not os.path.exists(test_faults.FAULTPOINT):
        raise RuntimeError("%s not built (make check builds it)"
                           % test_faults.FAULTPOINT)
    support.load_stubs()


def on_file(args, name):
    """Whether a call's first argument is a descriptor on a file called
    name (strace -y shows its path)."""
    m = re.match(r"\d+<([^>]*)>", args)
    return m is not None and os.path.basename(m.group(1)) == name


class StorageFaultTest(support.ReliabilityTest):
    """What the cases share: FaultCase's store-then-replay recipe (50 logs
    of about 1.9 KB, stopped with SIGTERM, started again with the server
    up, under the shim if need be), borrowed without its tests."""

    # Named through their modules: a TestCase class bound here would have
    # its tests run again by this file.
    LOGS = test_faults.FaultCase.LOGS
    store_spool = test_faults.FaultCase.store_spool
    newest_journal = test_faults.FaultCase.newest_journal
    start_replay = test_faults.FaultCase.start_replay
    finish = test_faults.FaultCase.finish
    replay_with = test_faults.FaultCase.replay_with
    delivered_seqs = test_faults.FaultCase.delivered_seqs
    assert_accounted = test_faults.FaultCase.assert_accounted
    kept_aside = test_faults.FaultCase.kept_aside

    def traced(self, extra_env=None, journal_size=None, strace_args=()):
        """Start echopost under strace -f -y (strace_args added), tracing
        the class's TRACE calls, with the server's URL and extra_env in
        its environment. Returns (proc, trace file)."""
        trace = os.path.join(self.tmp, "trace-%d" % len(self.procs))
        env = dict(os.environ)
        env.pop("DATANADHI_API_KEY", None)
        if journal_size is not None:
            env[support.JOURNAL_SIZE_ENV] = str(journal_size)
        env.update(extra_env or {})
        # LeakSanitizer stops a process traced by ptrace(2) with an error.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":detect_leaks=0").lstrip(":")
        out_path = os.path.join(self.tmp, "traced-%d.out" % len(self.procs))
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [STRACE, "-f", "-qq", "-y", "-o", trace, "-e",
                 "trace=" + self.TRACE] + list(strace_args) +
                [ECHOPOST] + self.args(),
                env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        proc.out_path = proc.err_path = out_path
        return proc, trace

    def stop_traced(self, proc):
        """SIGTERM to echopost itself (its PID file), not to strace;
        returns its exit status."""
        with open(os.path.join(self.dir, support.PID_FILE)) as f:
            os.kill(int(f.read().split()[0]), signal.SIGTERM)
        return self.wait_exit(proc)

    def dir_syncs_to_seal(self, trace):
        """How many syncs of DIR the shim counts (its name matched as a
        prefix, fsync and fdatasync) up to the first after a sealed file
        got its name: that one is the directory sync of the seal."""
        count, named = 0, False
        base = os.path.basename(self.dir)
        for name, args, result, _ in traced_calls(trace):
            if name == "linkat" and result == "0" and \
                    support.SPOOL + c_define("SEALED_SUFFIX") in args:
                named = True
            m = re.match(r"\d+<([^>]*)>", args)
            if name in ("fsync", "fdatasync") and m and \
                    os.path.basename(m.group(1)).startswith(base):
                count += 1
                if named:
                    return count
        self.fail("no sealed file was named in the calibration run")


class PersistentEioTest(StorageFaultTest):
    """Case 6: a file that keeps failing is no reason not to serve."""

    def test_6a_newest_journal_unreadable_past_its_start(self):
        # Every read of the only journal's entries fails, as a bad sector
        # keeps failing: echopost must still serve at once (the SDK waits
        # 2 s), deliver what it can, name every record it cannot with
        # record_missing, keep the journal aside for a person, and say
        # so with EX_IOERR. Before the fix it exited 74 without serving.
        self.store_spool()
        journal = self.newest_journal()
        proc, point = self.start_replay(
            {"ECHOPOST_FAULT_AT": "1", "ECHOPOST_FAULT_CALLS": "read",
             "ECHOPOST_FAULT_OFFSET": "1000",
             "ECHOPOST_FAULT_MODE": "persistent",
             "ECHOPOST_FAULT_MATCH": os.path.basename(journal)})
        code, events, shim = self.finish(proc, point)
        self.assertGreater(shim[1], 0, "the fault was never injected")
        self.assert_accounted(events)
        self.assertTrue([n for n in self.kept_aside() if n.startswith(
            os.path.basename(journal) + ".damaged-")],
            "the journal was not kept aside: %s" % os.listdir(self.dir))
        self.assertEqual(code, EX_IOERR)

    def test_6b_position_file_fails_every_call(self):
        # The position file only says how far delivery came: one that
        # cannot be opened, read, written or synced at all costs at most
        # duplicates. echopost serves, delivers all, says so with
        # position_damaged and exits 0. Before the fix: 74, nothing sent.
        self.store_spool()
        code, events, shim = self.replay_with(
            {"ECHOPOST_FAULT_AT": "1", "ECHOPOST_FAULT_MODE": "persistent",
             "ECHOPOST_FAULT_MATCH": POSITION})
        self.assertGreater(shim[1], 0, "the fault was never injected")
        self.assert_accounted(events, none_missing=True)
        self.assertIn("position_damaged", [e["event"] for e in events])
        self.assertEqual(code, 0)


class AdminToldTest(StorageFaultTest):
    """Case 8: --status and --dump read the spool whole, and say which
    file they could not read; --replay-only says how many records it
    could not deliver. Before the fix both called the spool readable."""

    def sealed_damage(self):
        """A stopped spool whose sealed file has its GDBM header (the
        first 4 KiB) zeroed: its name."""
        self.store_spool(journal_size=JOURNAL_SIZE)
        name = max(sealed_in(self.dir), key=lambda n: os.path.getsize(
            os.path.join(self.dir, n)))
        with open(os.path.join(self.dir, name), "r+b") as f:
            f.write(bytes(4096))
        return name

    def journal_damage(self):
        """A stopped spool whose newest journal has a byte flipped in its
        middle: its name."""
        self.store_spool()
        journal = self.newest_journal()
        flip(journal, os.path.getsize(journal) // 2)
        return os.path.basename(journal)

    def assert_told(self, name):
        # No instance runs and the URL answers nothing: only the spool
        # decides the exit status.
        code, out, err = self.admin("--status", "--json",
                                    url="http://127.0.0.1:1")
        report = json.loads(out)
        self.assertFalse(report["spool"]["readable"], out)
        damaged = report["spool"].get("damaged") or []
        self.assertIn(name, [d["file"] for d in damaged], out)
        self.assertTrue(all(d.get("error") for d in damaged), out)
        self.assertIn(name, err)
        self.assertEqual(code, EX_IOERR, err)
        code, out, err = self.admin("--dump")
        self.assertIn(name, err)
        self.assertEqual(code, EX_IOERR, err)

    def test_8a_status_and_dump_name_a_sealed_file_without_header(self):
        self.assert_told(self.sealed_damage())

    def test_8b_status_and_dump_name_a_journal_with_a_flipped_byte(self):
        self.assert_told(self.journal_damage())

    def test_8c_replay_only_says_how_many_records_it_could_not_read(self):
        # The records of the headerless sealed file cannot be delivered:
        # the run must not end as if all went well.
        name = self.sealed_damage()
        low, high = map(int, SEALED_RE.fullmatch(name).groups())
        self.server.up()
        code, out, err = self.admin("--replay-only", "-api-key", "k")
        self.assertEqual(code, EX_IOERR, err)
        m = re.search(r"(\d+) [^\n]*records could not be read", err)
        self.assertIsNotNone(m, err)
        self.assertEqual(int(m.group(1)), high - low, err)


class FullDiskStartTest(StorageFaultTest):
    """Case 7e: a full disk must not keep a spool from being delivered."""

    cannot_mount = test_disk.DiskTest.cannot_mount
    mount_tmpfs = test_disk.DiskTest.mount_tmpfs
    free = test_disk.DiskTest.free
    fill = test_disk.DiskTest.fill

    def test_7e_full_disk_start_delivers_the_spool(self):
        # Delivering a spool takes no room: a start on a file system
        # with 0 bytes free must serve, deliver all 50 and exit 0. Before
        # the fix it exited 73 at the PID file and sent nothing.
        fs = self.mount_tmpfs("16m")
        self.dir = os.path.join(fs, "dn")
        self.sock = os.path.join(self.dir, SOCKET_NAME)
        self.store_spool()
        self.fill(leave=0)
        self.assertEqual(self.free(), 0)
        code, events, _ = self.replay_with()
        self.assert_accounted(events, none_missing=True)
        self.assertEqual(code, 0)


class SyncOrderTest(StorageFaultTest):
    """Case 7 (a, b): what must be on disk before a spool file goes,
    seen in the order of the system calls (strace -f -y)."""

    TRACE = "write,pwrite64,fdatasync,fsync,unlinkat,linkat"

    def test_7a_seal_meeting_eexist_syncs_dir_before_journals_go(self):
        # A seal whose directory sync failed leaves the sealed file named
        # (maybe not on disk) and the journals in place; the next try
        # meets EEXIST. Deleting the journals then, before the directory
        # is synced, could lose both names in a crash. The sync of DIR
        # that fails is found by a calibration run of the same spool
        # (server down, nothing but the mover at work after the start).
        self.need_strace()
        self.start_server("down")
        proc, _ = self.start_in(self.dir, journal_size=JOURNAL_SIZE)
        for i in range(30):
            self.store(json.dumps({"seq": i, "pad": "x" * 1900}))
        # Stopped at once, before the mover's quiet time: the journals
        # are left for the next start to seal.
        self.assertEqual(self.stop_echopost(proc), 0)
        self.assertEqual(sealed_in(self.dir), [], "sealed too early")
        journals = [n for n in os.listdir(self.dir) if JOURNAL_RE.fullmatch(n)]
        self.assertGreater(len(journals), 2)
        copy = os.path.join(self.tmp, "copy")
        shutil.copytree(self.dir, copy, ignore=sockets)

        def sealed_all():
            return sealed_in(self.dir) and not any(
                os.path.exists(os.path.join(self.dir, n))
                for n in sorted(journals)[:-1])

        proc, trace = self.traced(journal_size=JOURNAL_SIZE)
        self.wait_socket(proc)
        self.assertTrue(wait_until(sealed_all, 5 * SLOW), "nothing sealed")
        self.assertEqual(self.stop_traced(proc), 0)
        fault_at = self.dir_syncs_to_seal(trace)

        shutil.rmtree(self.dir)
        shutil.move(copy, self.dir)
        point = Point(self.tmp, {
            "ECHOPOST_FAULT_AT": str(fault_at),
            "ECHOPOST_FAULT_CALLS": "sync",
            "ECHOPOST_FAULT_MATCH": os.path.basename(self.dir)})
        env = point.env()
        # The shim goes to echopost only (strace -E), not to strace.
        preload = env.pop("LD_PRELOAD")
        proc, trace = self.traced(env, journal_size=JOURNAL_SIZE,
                                  strace_args=["-E", "LD_PRELOAD=" + preload])
        self.wait_socket(proc)
        # The mover tries again a second after the failure.
        wait_until(sealed_all, 5 * SLOW)
        self.assertEqual(self.stop_traced(proc), 0)
        self.assertEqual(point.shim()[1], 1, "the fault was never injected")
        self.assertEqual(point.shim()[2].split()[0], "fsync")

        eexist = unsynced = None
        dir_path = os.path.realpath(self.dir)
        for name, args, result, err in traced_calls(trace):
            if name == "linkat" and err == "EEXIST" and \
                    support.SPOOL + c_define("SEALED_SUFFIX") in args:
                eexist = unsynced = args
            elif name == "fsync" and unsynced and result == "0" and \
                    re.match(r"\d+<%s>" % re.escape(dir_path), args):
                unsynced = None
            elif name == "unlinkat" and unsynced and \
                    JOURNAL_RE.search(args):
                self.fail("%s(%s) after the EEXIST of linkat(%s), before "
                          "DIR was synced" % (name, args, eexist))
        self.assertIsNotNone(eexist, "no seal met EEXIST: the test did not "
                             "test what it is for")
        self.assertTrue(sealed_all(), "the journals were not sealed")

        # And nothing was lost on the way.
        self.LOGS = 30
        self.server.up()
        code, events, _ = self.replay_with(journal_size=JOURNAL_SIZE)
        self.assert_accounted(events, none_missing=True)
        self.assertEqual(code, 0)

    def test_7b_failure_log_synced_before_its_records_leave(self):
        # A record the server refuses for good (400) lives on only in the
        # failure log: that line must be synced before the head passes it
        # (the position file's pwrite64) or its spool file is deleted.
        # Before the fix the failure log was never synced.
        self.need_strace()
        self.LOGS = 5
        self.store_spool()
        self.server.set(log_status=400)
        self.server.up()
        proc, trace = self.traced()
        self.assertEqual(self.wait_exit(proc), 0, self.stderr_of(proc))
        self.assertEqual(len(self.posts()), self.LOGS)
        self.assertEqual(len(self.session_file(FAILURE_LOG)), self.LOGS)
        unsynced, writes = None, 0
        for name, args, result, _ in traced_calls(trace):
            if name == "write" and on_file(args, FAILURE_LOG):
                unsynced, writes = unsynced or args[:60], writes + 1
            elif name == "fdatasync" and on_file(args, FAILURE_LOG):
                unsynced = None
            elif unsynced and (
                    (name == "pwrite64" and on_file(args, POSITION)) or
                    (name == "unlinkat" and support.SPOOL in args)):
                self.fail("%s(%s) came before the failure log was synced"
                          % (name, args[:120]))
        self.assertEqual(writes, self.LOGS, "no write to %s traced"
                         % FAILURE_LOG)
        self.assertIsNone(unsynced, "the failure log was never synced")


class SealFromSavedHeadTest(StorageFaultTest):
    """Case 7c: the mover seals from the head saved on disk, not from
    the one in memory: a kill after sealing, before the head is saved,
    must not make the next start report delivered records missing."""

    def test_7c_kill_after_sealing_before_head_saved(self):
        # Run 1, server down: a few logs in small journals, stopped.
        self.start_server("down")
        proc, sock = self.start_in(self.dir, journal_size=JOURNAL_SIZE)
        self.LOGS = 0

        def more(count):
            for _ in range(count):
                self.store(json.dumps({"seq": self.LOGS, "pad": "x" * 300}))
                self.LOGS += 1
        more(20)
        self.assertEqual(self.stop_echopost(proc), 0)
        # Run 2, server up but slow (one at a time), the position file
        # never written nor synced: delivery moves the head in memory
        # only. Logs keep coming while it delivers, so that the mover
        # waits (no quiet time yet) with closed journals past the head;
        # once they stop it seals, and the run is killed at once. 10 a
        # second keeps delivery behind where a sync costs 20 ms (150
        # logs stored in 3 s, sealed half a second later: 35 delivered).
        self.server.set(log_delay=0.1, serial=True)
        proc, point = self.start_replay(
            {"ECHOPOST_FAULT_AT": "1", "ECHOPOST_FAULT_CALLS": "write,sync",
             "ECHOPOST_FAULT_MODE": "persistent",
             "ECHOPOST_FAULT_MATCH": POSITION}, journal_size=JOURNAL_SIZE)
        more(150)
        # The newest closed journal is sealed after the quiet time, the
        # last of the mover's batches (a start seals what it finds at
        # once: a new sealed file alone would not say that this sealing
        # came). It lies past the head: delivery is slower than storing.
        closed = sorted((n for n in os.listdir(self.dir)
                         if JOURNAL_RE.fullmatch(n)),
                        key=lambda n: int(n.rsplit(".", 1)[1]))[:-1]
        self.assertTrue(closed, "no journal closed")
        self.assertTrue(wait_until(lambda: not os.path.exists(
            os.path.join(self.dir, closed[-1])), 3 * SLOW),
            "the closed journals were not sealed")
        proc.kill()
        self.wait_exit(proc)
        delivered = len(self.delivered_seqs())
        self.assertGreater(point.shim()[1], 0, "the fault was never injected")
        # The head was inside the closed journals when they were sealed.
        self.assertGreater(delivered, 0, "nothing delivered")
        self.assertLess(delivered, self.LOGS - 30, "delivery caught up")
        # Run 3, no fault: delivered records come again (at least once),
        # but none may be reported missing.
        self.server.set(log_delay=0, serial=False)
        code, events, _ = self.replay_with(journal_size=JOURNAL_SIZE)
        self.assert_accounted(events, none_missing=True)
        self.assertEqual(code, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
