#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Storage tests of EchoPost: a spool damaged between two runs, and
spools found in the field.

Each test runs the real echopost binary against the fake server
(fakeserver.py, its own process) and talks to it over its UNIX socket.
The damage: a truncated GDBM file, random bytes over it, bytes changed
inside records' payloads, a destroyed GDBM header; each in a sealed file
and in the spool of echopost 1. Whatever the damage, echopost must start
within the SDK's 2 s, serve, and account for every record it held.

Every test says in a comment which guarantee it protects; each one fails if
that guarantee is broken. Every wait is bounded and every test cleans up
its processes and temp dirs (support.EchoPostTest).

Paths come from the environment, as for test_e2e.py (ECHOPOST, ECHOPOST_PROTO).
Run with /usr/bin/python3 tests/test_storage.py.
"""

import collections
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    ECHOPOST, QUARANTINE, RFC3339_UTC_RE, SEALED_RE, SLOW, SOCKET_NAME,
    SPOOL, ReliabilityTest, echopost1_spool, load_stubs, log_data_of,
    read_json_lines, record_size, records_of_sealed, spool_names,
    wait_until)


def setUpModule():
    load_stubs()


# Where a test puts the damaged bytes: (legacy, its name in subtests).
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
        file's name, and by kind the bytes to damage: the sealed file's,
        and those of the spool echopost 1 would have kept of its
        records)."""
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
        path = os.path.join(self.dir, name)
        low, high = map(int, SEALED_RE.fullmatch(name).groups())
        records = records_of_sealed(path)
        self.assertEqual(sorted(records), list(range(low, high)))
        legacy = os.path.join(self.tmp, "echopost1-" + name)
        echopost1_spool(records, low, high, legacy)
        originals = {}
        for kind, p in (("sealed", path), ("echopost1", legacy)):
            with open(p, "rb") as f:
                originals[kind] = f.read()
        return texts, name, originals

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

    def assert_accounted(self, texts, sealed, posts, quarantined, events,
                         legacy):
        """Every stored record is accounted for. Those of the files left
        intact (outside the damaged sealed file's range) are delivered.
        Each of the damaged file's is delivered, quarantined, or reported
        by a record_missing event (seq, count): one of these only. A
        record arrives twice only after a try that failed (record_retry),
        as at least once allows. A damaged sealed file's losses are all
        reported, since its range is in its name. An echopost 1 spool
        (legacy) may lose its own records without a record_missing event
        only where echopost cannot tell them from records an earlier run
        delivered: set aside whole (spool_damaged), it keeps them in the
        copy named kept_as and none of them is delivered; recovered, a
        record missing inside the range imported is still reported, and
        gdbm_recover reports failures (spool_recovered), at least as many
        failed keys as records lost unless whole buckets failed."""
        low, high = map(int, SEALED_RE.fullmatch(sealed).groups())
        held = set(range(low, high))
        arrivals = collections.Counter(
            log_data_of(p)["seq"] for p in posts if "seq" in log_data_of(p))
        delivered = set(arrivals)
        quarantined = set(quarantined)
        reported = set()
        for e in events:
            if e["event"] == "record_missing":
                reported.update(range(e["seq"], e["seq"] + e["count"]))
        self.assertEqual(sorted(set(range(len(texts))) - held - delivered),
                         [], "records of intact files not delivered")
        self.assertFalse(reported & delivered,
                         "a record reported missing was delivered")
        self.assertFalse(quarantined & delivered,
                         "a quarantined record was delivered")
        self.assertFalse(quarantined & reported,
                         "a quarantined record was reported missing")
        retried = {e["seq"] for e in events if e["event"] == "record_retry"}
        self.assertEqual(sorted(seq for seq, n in arrivals.items()
                                if n > 1 and seq not in retried), [],
                         "delivered twice, though no try of it failed")
        lost = sorted(held - delivered - quarantined - reported)
        aside = [e for e in events if e["event"] == "spool_damaged"
                 and os.path.basename(e["path"]) == SPOOL]
        if not legacy:
            self.assertEqual(lost, [], "%d records of a sealed file "
                             "vanished without a record_missing event"
                             % len(lost))
        elif aside:
            self.assertTrue(os.path.isfile(aside[0]["kept_as"]),
                            "the spool set aside is not kept")
            self.assertFalse(held & delivered,
                             "records of a spool set aside were delivered")
        else:
            # A range's end is a uint64, printed as a signed JSON integer:
            # a garbage key GDBM recovered may make it negative.
            imported = [range(e["first"], e["end"] % (1 << 64))
                        for e in events if e["event"] == "spool_imported"]
            self.assertEqual([seq for seq in lost
                              if any(seq in r for r in imported)], [],
                             "records inside the range imported vanished "
                             "without a record_missing event")
            # Outside it, gdbm_recover reports the losses: at least as many
            # failed keys, unless whole buckets failed (it cannot count
            # their keys).
            recovered = [e for e in events
                         if e["event"] == "spool_recovered"]
            self.assertTrue(recovered or not lost, "%d records vanished "
                            "without any spool_damaged or spool_recovered "
                            "event: seqs %s" % (len(lost), lost))
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
        # lost is reported, new logs are served, exit is 74 (EX_IOERR).
        texts, sealed, originals = self.make_spool()
        for fraction in (0.9, 0.5, 0.05):
            for legacy, kind in KINDS:
                cut = originals[kind][:int(len(originals[kind]) * fraction)]
                with self.subTest(fraction=fraction, kind=kind):
                    dir = self.fresh_dir("trunc-%d-%s" % (fraction * 100,
                                                          kind),
                                         sealed, cut, legacy)
                    proc, events, _, first, posts = self.run_damaged(dir)
                    self.kept_files(events)
                    self.assert_delivered_intact(texts, first, posts)
                    self.assert_accounted(texts, sealed, posts, [], events,
                                          legacy)

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
        # delivered; echopost starts, serves, exits 74 (EX_IOERR).
        texts, sealed, originals = self.make_spool()
        for seed in (1, 2, 3):
            for legacy, kind in KINDS:
                damaged = self._scribble(originals[kind], seed, 20, 16)
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
                    self.assert_accounted(texts, sealed, posts,
                                          quarantined, events, legacy)

    def test_damaged_payloads_are_all_quarantined_rest_delivered(self):
        # Protects: the record checksum. Damage only inside records'
        # payloads (GDBM sees nothing wrong): exactly the damaged records
        # are quarantined, with their bytes, and every other record is
        # delivered intact and in order. Nothing is lost, nothing altered
        # is delivered.
        texts, sealed, originals = self.make_spool()
        low, high = map(int, SEALED_RE.fullmatch(sealed).groups())
        for legacy, kind in KINDS:
            rng = random.Random(7)
            data = bytearray(originals[kind])
            runs = [m.start() for m in re.finditer(rb"x{100}", data)]
            self.assertEqual(len(runs), high - low)
            hit = set()
            for at in rng.sample(runs, 10):
                seq = int(re.search(rb'\{"seq": (\d+), "pad": "$',
                                    bytes(data[at - 40:at])).group(1))
                hit.add(seq)
                spot = at + rng.randrange(0, 92)
                data[spot:spot + 8] = bytes(rng.choice(
                    [b for b in range(256) if b != ord("x")])
                    for _ in range(8))
            data = bytes(data)
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
        texts, sealed, originals = self.make_spool()
        low, high = map(int, SEALED_RE.fullmatch(sealed).groups())
        junk = random.Random(11).randbytes(4096)
        for header_kind, header in (("zeros", b"\0" * 4096), ("junk", junk)):
            for legacy, kind in KINDS:
                damaged = header + originals[kind][4096:]
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
                    self.assert_accounted(texts, sealed, posts, [], events,
                                          legacy)


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


if __name__ == "__main__":
    unittest.main(verbosity=2)
