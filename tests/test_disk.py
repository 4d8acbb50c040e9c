#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Disk tests of EchoPost: a real full file system (a small tmpfs;
skipped where mount is not permitted, failed instead with
ECHOPOST_REQUIRE_TMPFS set), GDBM itself hitting ENOSPC, and the spool
cap, --max-spool-size or its default.

Each test runs the real echopost binary against the fake server
(fakeserver.py, its own process) and talks to it over its UNIX socket.
Every test says in a comment which guarantee it protects; each one fails if
that guarantee is broken. Every wait is bounded and every test cleans up
its processes, mounts and temp dirs (support.EchoPostTest).

Paths come from the environment, as for test_e2e.py (ECHOPOST, ECHOPOST_PROTO).
Run with /usr/bin/python3 tests/test_disk.py.
"""

import errno
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    SLOW, ReliabilityTest, c_define, load_stubs, log_data_of, record_size,
    send_log, spool_names, wait_until)


def setUpModule():
    load_stubs()


# Appends stop while less than DISK_MARGIN is free, checked at most every
# DISK_CHECK seconds.
DISK_MARGIN = c_define("DISK_MARGIN")
DISK_CHECK = c_define("DISK_CHECK_MS") / 1000


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
        # delivered. A spare journal written ahead counts too: it is not
        # made when it would not fit under the cap (the forwarder tries
        # to make one at most once a second, so the footprint is measured
        # again after a few of its tries).
        fs = self.mount_tmpfs("16m")
        self.start_server("down")
        dir = os.path.join(fs, "dn")
        proc, sock = self.start_in(dir)
        acked, refusal = self.fill_spool(sock, 40, 200000)
        self.assertIsNotNone(refusal, "8 MB stored on a 16 MB file system")
        self.assertIn("spool full", refusal)
        self.assertIn("the limit is %d" % (4 << 20), refusal)
        self.assertGreater(self.free(), 8 << 20)
        time.sleep(3.0 * SLOW)
        self.assertGreater(self.free(), 8 << 20, sorted(os.listdir(dir)))
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
