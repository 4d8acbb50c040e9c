#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""A misbehaving server: never answering, answering slowly, hanging up in
the middle of an answer, answering 2xx with garbage, flapping up and down.

Each test runs the real echopost binary against the fake server
(fakeserver.py, its own process), set to misbehave, and talks to echopost
over its UNIX socket. Every test says in a comment which guarantee it
protects; each one fails if that guarantee is broken. Every wait is
bounded and every test cleans up its processes and temp dirs
(support.EchoPostTest).

Paths come from the environment, as for test_e2e.py (ECHOPOST, ECHOPOST_PROTO).
Run with /usr/bin/python3 tests/test_server.py.
"""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    CLK_TCK, STATUS_LOCK, ReliabilityTest, Sent, cpu_ticks, load_stubs,
    log_data_of, log_text, spool_kept)


def setUpModule():
    load_stubs()


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
                # Records whose answer was cut off are sent again.
                self.assert_arrival_order([log_data_of(p) for p in whole],
                                          [json.loads(t) for t in texts],
                                          once=True)
                # The first record is retried until it gets a real answer.
                self.assertEqual({p["body"] for p in cut},
                                 {posts[0]["body"]})
                # Exactly the completed deliveries, in the order their
                # answers came.
                lines = self.success_lines(dir)
                self.assertCountEqual(
                    [l["log_data"]["payload"] for l in lines],
                    [json.loads(t) for t in texts])
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
                self.assertCountEqual([l["log_data"]["payload"]
                                       for l in lines],
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
