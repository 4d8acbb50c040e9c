#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""A spool moves between architectures: what echopost built for one
machine stored is delivered, each log once, by echopost built for another
(amd64 and arm64, one of them under qemu-user), both ways.

ECHOPOST is the build under test, ECHOPOST_OTHER the other one;
build-aux/quickstart check-arm64 sets both. Without ECHOPOST_OTHER the
tests skip: make check has one build.

The spool the writer leaves holds sealed files of a few hundred records,
past sequence number 128: keyed byte by byte, such a record's key has a
byte of 0x80 or more, which libgdbm hashes through plain char, signed on
amd64 and unsigned on arm64.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    ECHOPOST, EXIT_WAIT, SEALED_RE, ReliabilityTest, load_stubs,
    wait_until)

OTHER = os.environ.get("ECHOPOST_OTHER")


def setUpModule():
    load_stubs()


@unittest.skipUnless(OTHER, "needs ECHOPOST_OTHER, echopost built for "
                     "another architecture (build-aux/quickstart "
                     "check-arm64 sets it)")
class CrossArchitectureTest(ReliabilityTest):

    COUNT = 400

    def sealed_records(self):
        """How many records the spool's sealed files hold, and the highest
        sequence number after them."""
        count = end = 0
        for name in os.listdir(self.dir):
            m = SEALED_RE.fullmatch(name)
            if m:
                count += int(m.group(2)) - int(m.group(1))
                end = max(end, int(m.group(2)))
        return count, end

    def carry(self, writer, reader):
        """writer stores COUNT logs, server down, and stops; reader, run
        with --replay-only, delivers them all, once each, and exits 0."""
        self.start_server("down")
        proc = self.start_echopost(program=writer, journal_size=4096)
        self.wait_socket(proc)
        texts = self.store_seq_logs(self.sock, self.COUNT)
        self.assertTrue(wait_until(lambda: self.sealed_records()[1] > 256,
                                   EXIT_WAIT),
                        "no sealed file past record 256: %s"
                        % sorted(os.listdir(self.dir)))
        self.assertEqual(self.stop_echopost(proc), 0, self.stderr_of(proc))
        sealed, end = self.sealed_records()
        self.assertGreater(end, 256)

        self.server.up()
        proc = self.start_echopost(program=reader, args=[
            "--replay-only", "-datanadhi", self.dir, "-api-key",
            self.API_KEY, "-health-url", self.server.url])
        self.assertEqual(self.wait_exit(proc), 0, self.stderr_of(proc))
        self.assertEqual(sorted(self.delivered_payloads()),
                         sorted(self.canonical(texts)),
                         "%d of the records were in sealed files" % sealed)
        errors = [e for e in self.events_of(proc) if e["level"] == "error"]
        self.assertEqual(errors, [])

    def test_a_spool_of_the_other_build_is_delivered(self):
        self.carry(OTHER, ECHOPOST)

    def test_a_spool_of_this_build_is_delivered_by_the_other(self):
        self.carry(ECHOPOST, OTHER)


if __name__ == "__main__":
    unittest.main()
