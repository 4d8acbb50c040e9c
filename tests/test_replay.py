#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""End-to-end tests of the replay: requests in flight at once, the limit
adapting to the server, pauses the server asks for, and a server that
refuses every delivery alike (a wrong URL or key), which must never empty
the backlog into the failure log.

Each test fills a spool through the real socket, then replays it with
--replay-only against a real HTTP server process (fakeserver.py), which
records for every POST /log how many were being answered at once.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    ECHOPOST_SEND, REFUSED, SLOW, EchoPostTest, default_concurrency,
    load_stubs, order_slack, spool_kept, spool_names, wait_until)


def setUpModule():
    load_stubs()


class ReplayTest(EchoPostTest):

    def fill(self, count, threads=4):
        """A spool of count logs, stored with the server down by a run
        then stopped; returns their keys (thread, seq) in stored order,
        as --dump shows them."""
        proc = self.start_echopost()
        self.wait_socket(proc)
        result = subprocess.run(
            [ECHOPOST_SEND, "-t", str(threads), "-n",
             str(count // threads), "-m", "replay", self.sock],
            capture_output=True, timeout=60 * SLOW)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.stop_echopost(proc), 0)
        code, out, err = self.admin("--dump")
        self.assertEqual(code, 0, err)
        keys = [self.key_of(json.loads(line)["log_data"]["payload"])
                for line in out.splitlines()]
        self.assertEqual(len(keys), count // threads * threads)
        return keys

    def reset_dir(self):
        """A fresh DIR and no server, for another round in one test."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def key_of(log_data):
        return (log_data["thread"], log_data["seq"])

    def replay(self, *extra):
        return self.start_echopost(
            ["--replay-only", "-datanadhi", self.dir, "-health-url",
             self.server.url, "--health-interval", "50ms"] + list(extra))

    def replay_backlog(self, count, *extra, **server):
        """Spool count logs with the server down, set the server up as
        server says, and start a replay with extra options: (keys, proc)."""
        self.start_server("down")
        keys = self.fill(count)
        self.server.set(**server)
        self.server.up()
        return keys, self.replay(*extra)

    def delivered(self):
        """Keys of the POSTs answered 2xx, in the order they came."""
        return [self.key_of(json.loads(p["body"])["log_data"])
                for p in self.posts() if 200 <= p["status"] < 300]

    def most_in_flight(self):
        return max(p["in_flight"] for p in self.posts())

    def assert_each_delivered(self, keys):
        delivered = self.delivered()
        self.assertEqual(sorted(set(delivered)), sorted(keys),
                         "a log was lost, or one came that was not stored")
        return delivered

    def assert_sent_in_stored_order(self, keys, arrived, slack):
        """Each log arrives no more than slack places after one stored
        later did."""
        place = {k: i for i, k in enumerate(keys)}
        latest = -1
        for k in arrived:
            self.assertGreater(place[k], latest - slack,
                               "%r arrived far out of the stored order"
                               % (k,))
            latest = max(latest, place[k])


class ConcurrencyTest(ReplayTest):

    def test_many_in_flight_against_a_server_that_takes_them(self):
        # Protects: with a server that answers requests side by side, the
        # limit grows well past one (here: to at least half the default
        # cap), never above the cap; every log is delivered once, sent in
        # the order it was stored give or take the requests in flight.
        keys, proc = self.replay_backlog(800, log_delay=0.02)
        self.assertEqual(self.wait_exit(proc, timeout=60 * SLOW), 0)
        delivered = self.assert_each_delivered(keys)
        self.assertEqual(len(delivered), len(keys), "a log came twice")
        cap = default_concurrency()
        self.assertGreaterEqual(self.most_in_flight(), cap // 2)
        self.assertLessEqual(self.most_in_flight(), cap)
        self.assert_sent_in_stored_order(keys, delivered, order_slack())
        self.assertEqual(len(self.session_file("agent-success.log")),
                         len(keys))
        self.assertEqual(spool_names(self.dir), [])

    def test_one_at_a_time_keeps_strict_order(self):
        # Protects: --replay-concurrency 1 is the old strict order: never
        # two requests at once, and the server gets the logs exactly in
        # the order they were stored.
        keys, proc = self.replay_backlog(
            200, "--replay-concurrency", "1", log_delay=0.002)
        self.assertEqual(self.wait_exit(proc, timeout=60 * SLOW), 0)
        self.assertEqual(self.delivered(), keys)
        self.assertEqual(self.most_in_flight(), 1)

    @unittest.skipIf(os.environ.get("VALGRIND_LOGS"),
                     "under valgrind, echopost's own slowness, not the "
                     "server's queue, sets the round trips it measures")
    def test_a_server_that_queues_keeps_the_limit_low(self):
        # Protects: a server with one worker answers one request at a
        # time, so each more in flight only waits longer: the round trip
        # rises with the limit, and the limit stays near one instead of
        # climbing to the cap (the test above shows it does climb where
        # the server has room).
        keys, proc = self.replay_backlog(300, log_delay=0.01, serial=True)
        self.assertEqual(self.wait_exit(proc, timeout=60 * SLOW), 0)
        self.assert_each_delivered(keys)
        self.assertLessEqual(self.most_in_flight(), 4)

    def test_a_stop_is_not_taken_for_failed_deliveries(self):
        # Protects: SIGTERM with requests in flight abandons them quietly:
        # no record_retry or delivery_error for what the stop itself cut
        # short, exit 75 (records left), and every record not answered
        # stays spooled.
        answer_in = 3.0 * SLOW
        keys, proc = self.replay_backlog(40, log_delay=answer_in)
        self.assertTrue(wait_until(self.posts_in_flight, 5 * SLOW),
                        "no request reached the server")
        stopped = time.time()
        self.assertEqual(self.stop_echopost(proc), 75)
        names = self.names_of(proc)
        after = names[names.index("signal"):]
        self.assertNotIn("record_retry", after)
        self.assertNotIn("delivery_error", after)
        status, out, err = self.admin("--status", "--json")
        self.assertEqual(json.loads(out)["spool"]["records"], len(keys))
        # The stop did cut requests short: the server answers them only
        # after it, to nobody.
        self.assertTrue(wait_until(self.posts, answer_in + 5 * SLOW),
                        "the requests in flight were never answered")
        self.assertGreater(min(p["time"] for p in self.posts()), stopped,
                           "a request was answered before the stop")

    def test_retry_after_pauses_every_request_and_loses_nothing(self):
        # Protects: a 429 with Retry-After stops the whole pipeline for
        # that long, not one slot; the limit is cut; the refused records
        # are sent again; nothing goes to the failure log.
        keys, proc = self.replay_backlog(1200, log_delay=0.005)
        for burst in range(2):
            self.assertTrue(wait_until(
                lambda: len(self.posts()) >= 300 * (burst + 1),
                30 * SLOW), "the replay stalled")
            self.server.set(log_status=429, log_status_count=3,
                            retry_after="1")
            time.sleep(0.2)
            self.server.set(retry_after=None)
        self.assertEqual(self.wait_exit(proc, timeout=60 * SLOW), 0)
        self.assert_each_delivered(keys)
        posts = self.posts()
        busy = [p for p in posts if p["status"] == 429]
        self.assertEqual(len(busy), 6)
        for first in (busy[0], busy[3]):
            # Requests sent before the 429 came may still be answered just
            # after it; none sent after it until the second is over.
            quiet = [p for p in posts
                     if first["time"] + 0.3 < p["time"] < first["time"] + 0.9]
            self.assertEqual(quiet, [], "requests went on during the pause")
        retries = [e for e in self.events_of(proc)
                   if e["event"] == "record_retry" and e["code"] == 429]
        self.assertTrue(retries)
        self.assertLess(min(e["concurrency"] for e in retries),
                        self.most_in_flight(), "the limit was not cut")
        self.assertEqual(self.session_file("agent-failure.log"), [])
        self.assertNotIn("record_rejected", self.names_of(proc))


class RefusalTest(ReplayTest):

    def test_endpoint_refusal_keeps_the_backlog(self):
        # Protects: a healthy server whose /log answers every record with
        # the same 404, 307 or 401 (wrong base URL, http -> https, revoked
        # key) is the endpoint's fault, not the logs': nothing goes to the
        # failure log, the spool is kept, the event and --status name the
        # code and the URL, and after --refused-timeout the run exits 75.
        # A later run against the right endpoint delivers everything.
        for code in (404, 307, 401):
            with self.subTest(code=code):
                self.reset_dir()
                keys, proc = self.replay_backlog(
                    40, "--refused-timeout", "1500ms", log_status=code)
                self.assertEqual(self.wait_exit(proc), 75)
                self.assertIn("refused every delivery",
                              self.stderr_of(proc))
                refused = [e for e in self.events_of(proc)
                           if e["event"] == "deliveries_refused"]
                self.assertEqual(len(refused), 1)
                self.assertEqual(refused[0]["code"], code)
                self.assertEqual(refused[0]["url"], self.server.url + "/log")
                self.assertIn("replay_given_up", self.names_of(proc))
                self.assertNotIn("record_rejected", self.names_of(proc))
                self.assertEqual(self.session_file("agent-failure.log"), [])
                self.assertTrue(spool_kept(self.dir))
                status, out, err = self.admin("--status", "--json")
                report = json.loads(out)
                self.assertEqual(report["spool"]["records"], len(keys))
                self.assertEqual(report["server"]["refused"]["code"], code)
                status, out, err = self.admin("--status")
                self.assertIn("answered %d to every delivery" % code, out)

                self.server.reset()
                self.server.set(log_status=200)
                later = self.replay()
                self.assertEqual(self.wait_exit(later), 0)
                self.assertEqual(sorted(self.delivered()), sorted(keys))
                self.assertFalse(os.path.exists(
                    os.path.join(self.dir, REFUSED)))
                self.assertEqual(spool_names(self.dir), [])

    def test_a_record_refused_alone_goes_to_the_failure_log(self):
        # Protects: one 404 among 2xx answers is that record's own: it
        # goes to the failure log (exit 65 from --replay-only), and every
        # other record is delivered.
        keys, proc = self.replay_backlog(
            40, log_status=404, log_status_count=1)
        self.assertEqual(self.wait_exit(proc), 65)
        failed = self.session_file("agent-failure.log")
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["context"]["responseCode"], 404)
        lost = self.key_of(failed[0]["log_data"]["payload"])
        self.assertEqual(sorted(self.delivered() + [lost]), sorted(keys))
        self.assertNotIn("deliveries_refused", self.names_of(proc))

    def test_a_few_records_refused_then_accepted_are_not_an_endpoint(self):
        # Protects: a run of refusals shorter than the spool, followed by
        # a delivery, is the records' own: they go to the failure log and
        # the rest is delivered; the endpoint is not declared refusing.
        keys, proc = self.replay_backlog(
            40, "--replay-concurrency", "1", log_status=403,
            log_status_count=3)
        self.assertEqual(self.wait_exit(proc), 65)
        self.assertEqual(len(self.session_file("agent-failure.log")), 3)
        self.assertEqual(self.delivered(), keys[3:])
        self.assertNotIn("deliveries_refused", self.names_of(proc))

    def test_query_of_the_health_url_stays_a_query(self):
        # Protects: /log is joined to the URL's path, not appended to its
        # text: http://h/health?probe=1 posts to /health/log?probe=1.
        self.start_server("down")
        keys = self.fill(4)
        self.server.up()
        proc = self.start_echopost(
            ["--replay-only", "-datanadhi", self.dir, "-health-url",
             self.server.url + "/health?probe=1"])
        self.assertEqual(self.wait_exit(proc), 0)
        posts = [r for r in self.server.requests() if r["method"] == "POST"]
        self.assertEqual({p["path"] for p in posts}, {"/health/log?probe=1"})
        self.assertEqual(sorted(self.key_of(json.loads(p["body"])["log_data"])
                                for p in posts), sorted(keys))


if __name__ == "__main__":
    unittest.main(verbosity=2)
