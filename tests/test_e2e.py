#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""End-to-end tests of EchoPost.

Each test runs the real echopost binary against a real HTTP server process
(fakeserver.py) and talks to it with real gRPC clients over its UNIX socket,
the way the Data Nadhi SDK does: a new channel for every log, several
threads at once.

Paths come from the environment (set by "make check"):
  ECHOPOST        the binary              (default <repo>/src/echopost)
  ECHOPOST_SEND   the C test client       (default <repo>/tests/echopost-send)
  ECHOPOST_PROTO  proto/logagent.proto    (default <repo>/proto/logagent.proto)

Run directly with /usr/bin/python3 tests/test_e2e.py, or through
"make check TESTS=tests/test_e2e.py".
"""

import calendar
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from support import (  # noqa: E402
    ECHOPOST, ECHOPOST_SEND, JOURNAL_RE, PID_FILE, REPO, RFC3339_UTC_RE,
    SESSION_RE, POSITION, SLOW, SOCKET_NAME, STATUS_LOCK, SUN_PATH_MAX,
    EchoPostTest, Sent, WRAPPED, c_define, spool_kept, spool_names,
    files_under, load_stubs, log_text, read_events, read_json_lines,
    send_log, sockets_under, wait_until)


def setUpModule():
    load_stubs()


# --------------------------------------------------------------------------
# The main job: logs stored while the server is down, then delivered in
# order, and a clean exit

class MainJobTest(EchoPostTest):

    def test_main_job_store_while_down_then_deliver_in_order_and_exit(self):
        request_key = "REQ-sekrit-456"
        self.start_server("down")
        # Like the SDK: remove a leftover socket, start detached, stdio on
        # /dev/null, then poll for the socket. DIR does not exist yet.
        if os.path.lexists(self.sock):
            os.unlink(self.sock)
        t0 = time.time()
        proc = self.start_echopost(
            ["-datanadhi", self.dir, "-api-key", self.API_KEY,
             "-health-url", self.server.url, "-health-interval", "100ms"],
            sdk=True)
        st = self.wait_socket(proc)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o700)
        self.assertTrue(os.path.exists(os.path.join(self.dir, STATUS_LOCK)),
                        "no status lock while the server is down")

        pipelines_of = {0: ["p-a"], 1: ["p-a", "p-b"], 2: [], 3: ["p-c"]}

        def make(t, i):
            # Threads 0 and 1 send no api_key (echopost's -api-key is
            # used), threads 2 and 3 their own.
            return Sent(t, i, log_text(t, i), pipelines_of[t],
                        request_key if t >= 2 else "")

        sent = self.send_threads(4, 25, make)
        self.assertEqual(len(sent), 100)
        self.assert_all_stored(sent)

        # Still down: everything waits, the status lock is there.
        self.assertTrue(wait_until(
            lambda: [e["event"] for e in self.session_file("agent.log")]
            .count("server_down") >= 2, 5 * SLOW),
            "echopost did not find the server down, twice")
        self.assertEqual(proc.poll(), None, "echopost exited while down")
        self.assertTrue(os.path.exists(os.path.join(self.dir, STATUS_LOCK)))
        self.assertTrue(spool_kept(self.dir))
        self.assertEqual(self.posts(), [])

        self.server.up()
        up_at = time.monotonic()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertLess(time.monotonic() - up_at, 5.0 * SLOW,
                        "echopost took too long to deliver and exit")
        t1 = time.time()

        posts = self.posts()
        self.assertEqual(len(posts), 100, "expected exactly 100 POSTs")
        by_key = {}
        for p in posts:
            self.assertEqual(p["method"], "POST")
            self.assertEqual(p["path"], "/log")
            self.assertEqual(p["headers"].get("content-type"),
                             "application/json")
            body = json.loads(p["body"])
            self.assertEqual(set(body), {"pipelines", "log_data"})
            d = body["log_data"]
            k = (d["thread"], d["seq"])
            self.assertNotIn(k, by_key, "log %r delivered twice" % (k,))
            by_key[k] = (p, body)
        sent_by_key = {(s.thread, s.seq): s for s in sent}
        self.assertEqual(set(by_key), set(sent_by_key))
        for k, (p, body) in by_key.items():
            s = sent_by_key[k]
            self.assertEqual(body["log_data"], json.loads(s.text))
            self.assertEqual(body["pipelines"], s.pipelines)
            # log_data is the json_data text as received, byte for byte.
            self.assertIn(s.text, p["body"])
            want_key = s.api_key or self.API_KEY
            self.assertEqual(p["headers"].get("datanadhi-api-key"), want_key,
                             "wrong API key header for %r" % (k,))
        self.assert_in_ack_order(sent, posts)

        # Clean exit: nothing of the run is left but the session.
        for name in (SOCKET_NAME, STATUS_LOCK, POSITION, PID_FILE):
            self.assertFalse(os.path.lexists(os.path.join(self.dir, name)),
                             "%s left behind" % name)
        self.assertEqual(sockets_under(self.dir), [])
        sessions = self.sessions()
        self.assertEqual(len(sessions), 1)
        self.assertRegex(os.path.basename(sessions[0]), SESSION_RE)

        success = read_json_lines(os.path.join(sessions[0],
                                               "agent-success.log"))
        self.assertEqual(len(success), 100)
        order = [(json.loads(p["body"])["log_data"]["thread"],
                  json.loads(p["body"])["log_data"]["seq"]) for p in posts]
        # Each delivered log in the success log; with requests in flight
        # at once, in the order their answers came.
        self.assertCountEqual([(x["log_data"]["payload"]["thread"],
                                x["log_data"]["payload"]["seq"])
                               for x in success], order)
        for line in success:
            self.assertEqual(set(line), {"log_data", "context"})
            self.assertEqual(set(line["log_data"]),
                             {"payload", "pipelines", "received_at"})
            payload = line["log_data"]["payload"]
            s = sent_by_key[(payload["thread"], payload["seq"])]
            self.assertEqual(payload, json.loads(s.text))
            self.assertEqual(line["log_data"]["pipelines"], s.pipelines)
            received = line["log_data"]["received_at"]
            self.assertRegex(received, RFC3339_UTC_RE)
            when = calendar.timegm(time.strptime(received[:19],
                                                 "%Y-%m-%dT%H:%M:%S"))
            self.assertTrue(t0 - 1 <= when <= t1 + 1,
                            "received_at %s is not the time of the run"
                            % received)
            self.assertEqual(line["context"], {"responseCode": 200})
        failure_path = os.path.join(sessions[0], "agent-failure.log")
        if os.path.exists(failure_path):
            self.assertEqual(read_json_lines(failure_path), [])

        events = read_events(os.path.join(sessions[0], "agent.log"))
        names = [e["event"] for e in events]
        for e in events:
            self.assertIn("time", e)
            self.assertRegex(e["time"], RFC3339_UTC_RE)
            self.assertIn("level", e)
        self.assertEqual(names[0], "start")
        self.assertEqual(names[-1], "exit")
        for name in ("listening", "server_down", "server_healthy",
                     "stop_listening"):
            self.assertIn(name, names)
        start = events[0]
        self.assertEqual(start.get("pid"), proc.pid)
        exit_event = events[-1]
        self.assertEqual(exit_event.get("status"), 0)
        self.assertEqual(exit_event.get("stored"), 100)
        self.assertEqual(exit_event.get("refused"), 0)
        self.assertEqual(exit_event.get("spooled"), 0)

        # Neither API key is written anywhere under DIR.
        for path in files_under(self.dir):
            with open(path, "rb") as f:
                data = f.read()
            for key in (self.API_KEY, request_key):
                self.assertNotIn(key.encode(), data,
                                 "API key found in %s" % path)


# --------------------------------------------------------------------------
# Answers of the server: a permanent one is not retried, a transient one
# is, until the log is accepted

class AnswersTest(EchoPostTest):

    def _store(self, texts, pipelines=("pl",)):
        """Start echopost with the server down and store texts."""
        proc = self.start_echopost()
        self.wait_socket(proc)
        for text in texts:
            self.store(text, pipelines)
        return proc

    def _permanent(self, status, body):
        self.start_server("down")
        texts = ['{"n": %d, "what": "permanent"}' % i for i in range(3)]
        proc = self._store(texts)
        self.server.set(log_status=status, body=body)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        posts = self.posts()
        # Each record is tried once: a permanent answer is not retried.
        self.assert_arrival_order([json.loads(p["body"])["log_data"]
                                   for p in posts],
                                  [json.loads(t) for t in texts], once=True)
        failures = sorted(self.session_file("agent-failure.log"),
                          key=lambda line: line["log_data"]["payload"]["n"])
        self.assertEqual(len(failures), 3)
        for text, line in zip(texts, failures):
            self.assertEqual(line["log_data"]["payload"], json.loads(text))
            self.assertEqual(line["log_data"]["pipelines"], ["pl"])
            self.assertRegex(line["log_data"]["received_at"], RFC3339_UTC_RE)
            self.assertEqual(line["context"].get("responseCode"), status)
            self.assertEqual(line["context"].get("response"), body)
        self.assertEqual(self.session_file("agent-success.log"), [])
        # Removed from the spool: it is gone at the clean exit.
        self.assertEqual(spool_names(self.dir), [])
        self.assertIn("record_rejected", self.names_of(proc))

    def test_permanent_failure_400_goes_to_failure_log_and_leaves_spool(self):
        self._permanent(400, '{"error":"bad pipeline"}')

    def test_status_500_is_permanent(self):
        self._permanent(500, "internal trouble")

    def _transient(self, status, retries, retry_after=None):
        self.start_server("down")
        text = '{"what":"transient", "status": %d}' % status
        proc = self._store([text])
        config = dict(log_status=status, log_status_count=retries)
        if retry_after is not None:
            config["retry_after"] = retry_after
        self.server.set(**config)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        posts = self.posts()
        self.assertEqual(len(posts), retries + 1,
                         "expected %d tries" % (retries + 1))
        self.assertEqual(len({p["body"] for p in posts}), 1,
                         "the retries carry another body")
        self.assertEqual([p["status"] for p in posts],
                         [status] * retries + [200])
        self.assertEqual(json.loads(posts[0]["body"])["log_data"],
                         json.loads(text))
        self.assertEqual(self.session_file("agent-failure.log"), [])
        self.assertEqual(len(self.session_file("agent-success.log")), 1)
        self.assertIn("record_retry", self.names_of(proc))
        return posts

    def test_transient_503_is_retried_until_accepted(self):
        self._transient(503, 3)

    def test_transient_429_honours_retry_after(self):
        posts = self._transient(429, 1, retry_after="1")
        gap = posts[1]["time"] - posts[0]["time"]
        self.assertGreaterEqual(gap, 0.95,
                                "Retry-After: 1 not honoured (%.3fs)" % gap)

    def test_transient_408_is_retried(self):
        self._transient(408, 2)

    def test_transient_501_is_retried(self):
        self._transient(501, 1)

    def test_a_server_as_slow_as_the_sdk_allows_gets_each_log_once(self):
        # Protects: the default --timeout is the SDK's 10 s. With the old
        # 5 s, every request to a server answering in 6 s timed out first:
        # the server got the log again and again and the run never ended
        # (seen with 8222cb2's binary: no exit within 40 s).
        proc = self.start_with_log('{"msg": "slow"}')
        self.server.set(state="up", log_delay=6)
        self.assertEqual(self.wait_exit(proc, timeout=40), 0,
                         self.stderr_of(proc))
        self.assertEqual(len(self.posts()), 1, self.posts())
        self.assertNotIn("record_retry", self.names_of(proc))


# --------------------------------------------------------------------------
# Signals and restarts: nothing acknowledged is lost, the order holds

class RestartTest(EchoPostTest):

    def _send_run(self, run, count, threads=1):
        def make(t, i):
            return Sent(t, i, '{"run": %d, "thread": %d, "seq": %d}'
                        % (run, t, i), ["pl"], "", run=run)
        sent = self.send_threads(threads, count, make)
        self.assert_all_stored(sent)
        return sent

    def _assert_stopped_keeping_spool(self, proc):
        for name in (SOCKET_NAME, STATUS_LOCK, PID_FILE):
            self.assertFalse(os.path.lexists(os.path.join(self.dir, name)),
                             "%s left after the signal" % name)
        self.assertTrue(spool_kept(self.dir),
                        "the spool was not kept")

    def test_restart_resumes_in_order(self):
        self.start_server("down")
        first = self.start_echopost()
        self.wait_socket(first)
        sent1 = self._send_run(1, 20)
        self.assertEqual(self.stop_echopost(first, signal.SIGTERM), 0)
        self._assert_stopped_keeping_spool(first)
        names = self.names_of(first)
        self.assertIn("signal", names)
        self.assertIn("stop_listening", names)
        self.assertEqual(self.events_of(first)[-1]["event"], "exit")
        self.assertEqual(self.events_of(first)[-1].get("spooled"), 20)

        # One request at a time: the order is strict.
        second = self.start_echopost(extra=["--replay-concurrency", "1"])
        self.wait_socket(second)
        sent2 = self._send_run(2, 10, threads=2)
        self.assertEqual(self.posts(), [])
        self.server.up()
        self.assertEqual(self.wait_exit(second), 0)

        posts = self.posts()
        keys = [(d["run"], d["thread"], d["seq"]) for d in
                (json.loads(p["body"])["log_data"] for p in posts)]
        self.assertEqual(len(keys), 40)
        self.assertEqual(len(set(keys)), 40, "a log was delivered twice")
        self.assertEqual(keys[:20], [(1, 0, i) for i in range(20)])
        self.assertEqual(sorted(keys[20:]),
                         sorted((2, s.thread, s.seq) for s in sent2))
        self.assert_in_ack_order(sent1 + sent2, posts, slack=0)
        self.assertEqual(spool_names(self.dir), [])

    def test_clean_stop_leaves_no_tail_to_repair(self):
        # The newest journal made from a spare ends in the spare's zeros,
        # which no crash tore: the start after a clean stop must not report
        # a repair (journal_repaired tells the admin a crash cut bytes
        # off), and delivers every log.
        chunk = c_define("SPARE_CHUNK")
        self.start_server("down")
        first = self.start_echopost(journal_size=4096)
        self.wait_socket(first)

        def newest_is_spare():
            journals = [n for n in spool_names(self.dir)
                        if JOURNAL_RE.fullmatch(n)]
            newest = max(journals, key=lambda n: int(n.rsplit(".", 1)[1]))
            size = os.path.getsize(os.path.join(self.dir, newest))
            return size % chunk == 0

        stored = 0
        # The forwarder makes a spare while it waits for the server; the
        # next journal is made from it.
        while stored < 10 or not newest_is_spare():
            self.assertLess(stored, 200, "no journal was made from a spare")
            self.store('{"seq": %d, "pad": "%s"}' % (stored, "p" * 400))
            stored += 1
            time.sleep(0.02)
        self.assertEqual(self.stop_echopost(first), 0)

        second = self.start_echopost(journal_size=4096)
        self.wait_socket(second)
        self.server.up()
        self.assertEqual(self.wait_exit(second), 0)
        self.assertNotIn("journal_repaired", self.names_of(second))
        seqs = [json.loads(p["body"])["log_data"]["seq"]
                for p in self.posts()]
        self.assertEqual(sorted(seqs), list(range(stored)))

    def test_signal_keeps_spool_and_later_run_delivers_it(self):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with self.subTest(signal=sig.name):
                if self.server is not None:
                    self.server.stop()
                shutil.rmtree(self.dir, ignore_errors=True)
                self.start_server("down")
                proc = self.start_echopost()
                self.wait_socket(proc)
                sent = self._send_run(1, 5)
                self.assertEqual(self.stop_echopost(proc, sig), 0)
                self._assert_stopped_keeping_spool(proc)
                self.assertEqual(self.posts(), [])
                exit_event = self.events_of(proc)[-1]
                self.assertEqual(exit_event["event"], "exit")
                self.assertEqual(exit_event.get("status"), 0)
                self.assertEqual(exit_event.get("spooled"), 5)

                # A later run, server up from the start: it delivers the
                # spool and exits on its own.
                self.server.up()
                later = self.start_echopost()
                self.assertEqual(self.wait_exit(later), 0)
                keys = [json.loads(p["body"])["log_data"]["seq"]
                        for p in self.posts()]
                self.assertCountEqual(keys, [s.seq for s in sent])
                self.assertEqual(spool_names(self.dir), [])

    def test_sigterm_with_calls_in_flight_loses_nothing_acknowledged(self):
        self.start_server("down")
        proc = self.start_echopost()
        self.wait_socket(proc)

        def signal_later(stop):
            # Calls come one after another: the signal meets some.
            wait_until(lambda: self.spooled() >= 20, 10 * SLOW, 0.05)
            proc.send_signal(signal.SIGTERM)
            # Should echopost not stop, stop the senders anyway.
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            stop.set()

        sent = self.send_during(signal_later)
        self.assertEqual(self.wait_exit(proc), 0)
        acked = [s for s in sent if s.acked is not None]
        self.assertGreater(len(acked), 0)
        self._assert_stopped_keeping_spool(proc)
        exit_event = self.events_of(proc)[-1]
        # A call may be stored and answered while its client is already
        # gone; it is then delivered twice at worst, never lost.
        self.assertGreaterEqual(exit_event.get("stored"), len(acked))
        self.assertEqual(exit_event.get("spooled"), exit_event.get("stored"))

        self.server.up()
        later = self.start_echopost()
        self.assertEqual(self.wait_exit(later), 0)
        self.assert_in_ack_order(sent, self.posts())

    def test_sigkill_crash_loses_nothing_acknowledged(self):
        self.start_server("down")
        proc = self.start_echopost()
        self.wait_socket(proc)
        sent = self.send_threads(
            3, 10, lambda t, i: Sent(t, i, '{"thread": %d, "seq": %d}'
                                     % (t, i), ["pl"], ""))
        self.assert_all_stored(sent)
        proc.kill()
        proc.wait(5)
        # The crash leaves the socket, the pid file and the status lock.
        self.assertTrue(os.path.lexists(self.sock))

        self.server.up()
        later = self.start_echopost()
        self.assertEqual(self.wait_exit(later), 0,
                         self.stderr_of(later))
        self.assert_in_ack_order(sent, self.posts())
        self.assertFalse(os.path.lexists(self.sock))
        self.assertEqual(spool_names(self.dir), [])


# --------------------------------------------------------------------------
# The directory: relative or default, one instance per DIR, a stale
# socket replaced

class DirectoryTest(EchoPostTest):

    def test_second_instance_exits_and_leaves_first_socket_alone(self):
        self.start_server("down")
        first = self.start_echopost()
        st = self.wait_socket(first)
        self.store('{"who": "before"}')

        started = time.monotonic()
        second = self.start_echopost()
        self.assertEqual(self.wait_exit(second, timeout=5 * SLOW), 0)
        self.assertLess(time.monotonic() - started, 2.0 * SLOW)
        events = self.events_of(second)
        already = [e for e in events if e["event"] == "already_running"]
        self.assertEqual(len(already), 1, events)
        self.assertEqual(already[0].get("pid"), first.pid)

        self.assertEqual(first.poll(), None, "the first instance died")
        after = os.lstat(self.sock)
        self.assertEqual((after.st_ino, after.st_dev), (st.st_ino, st.st_dev),
                         "the second instance replaced the socket")
        with open(os.path.join(self.dir, PID_FILE)) as f:
            self.assertEqual(int(f.read().strip()), first.pid)
        self.store('{"who": "after"}')

        self.server.up()
        self.assertEqual(self.wait_exit(first), 0)
        self.assertEqual([json.loads(p["body"])["log_data"]["who"]
                          for p in self.posts()], ["before", "after"])

    def test_sdk_deleting_live_socket_then_second_instance_gets_it_back(self):
        # Two SDK processes race: the second deletes the socket, as the SDK
        # does before it starts an echopost, and starts a second one. That
        # one must exit, and the socket must be back, served by the first,
        # within the 2 s the SDK polls for it.
        self.start_server("down")
        first = self.start_echopost()
        self.wait_socket(first)
        os.unlink(self.sock)
        second = self.start_echopost(sdk=True)
        self.wait_socket(first)
        self.assertEqual(self.wait_exit(second, timeout=5 * SLOW), 0)
        self.store('{"after": "delete"}')
        self.assertEqual(first.poll(), None)
        self.server.up()
        self.assertEqual(self.wait_exit(first), 0)
        self.assertEqual([json.loads(p["body"])["log_data"]
                          for p in self.posts()], [{"after": "delete"}])
        self.assertEqual(sockets_under(self.dir), [])

    def test_relative_and_default_dir(self):
        self.start_server("down")
        # -datanadhi relative to the working directory.
        proc = self.start_echopost(dir="rel", cwd=self.tmp)
        sock = os.path.join(self.tmp, "rel", SOCKET_NAME)
        self.wait_socket(proc, sock=sock)
        self.assertTrue(send_log(sock, '{"dir": "rel"}').success)
        self.assertEqual(self.stop_echopost(proc), 0)
        # No -datanadhi: ./.datanadhi
        proc = self.start_echopost(
            ["-api-key", self.API_KEY, "-health-url", self.server.url],
            cwd=self.tmp)
        sock = os.path.join(self.tmp, ".datanadhi", SOCKET_NAME)
        self.wait_socket(proc, sock=sock)
        self.assertTrue(send_log(sock, '{"dir": "default"}').success)
        self.assertEqual(self.stop_echopost(proc), 0)
        self.assertTrue(spool_kept(os.path.join(self.tmp, ".datanadhi")))
        # A person who left out -datanadhi is told where the logs went.
        self.assertIn("no -datanadhi given: using ", self.stderr_of(proc))

    def test_stale_socket_is_replaced_and_served(self):
        self.start_server("down")
        os.makedirs(self.dir)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(self.sock)
        stale.close()           # the file stays: nobody listens on it
        stale_ino = os.lstat(self.sock).st_ino
        with self.assertRaises(ConnectionRefusedError):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.sock)
            finally:
                probe.close()

        proc = self.start_echopost()
        self.wait_socket(proc, not_inode=stale_ino)
        self.store('{"stale": false}')
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual([json.loads(p["body"])["log_data"]
                          for p in self.posts()], [{"stale": False}])
        self.assertEqual(sockets_under(self.dir), [])


# --------------------------------------------------------------------------
# What is refused: with a reason, and nothing of it stored

class InvalidLogTest(EchoPostTest):

    def test_invalid_json_data_is_refused_with_reason_and_not_stored(self):
        proc = self.start_with_log('{"good": 1}', ["pl"])
        for bad in ("not json", "[1,2]", '"str"', "", "{\"a\": 1} trailing",
                    '{"a": 1'):
            with self.subTest(json_data=bad):
                r = send_log(self.sock, bad, ["pl"])
                self.assertFalse(r.success)
                self.assertIn("must be a JSON object"
                              if bad in ("[1,2]", '"str"') else
                              "not valid JSON", r.message)
        r = send_log(self.sock, '{"bad": "key"}', ["pl"],
                     api_key="bad\r\nX-Injected: 1")
        self.assertFalse(r.success, "an API key with CR LF was stored")
        self.assertIn("api_key", r.message)
        self.store('{"good": 2}', ["pl"])

        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual([json.loads(p["body"])["log_data"]
                          for p in self.posts()],
                         [{"good": 1}, {"good": 2}])
        events = self.events_of(proc)
        self.assertEqual(len([e for e in events
                              if e["event"] == "log_refused"]), 7)
        self.assertEqual(events[-1].get("stored"), 2)
        self.assertEqual(events[-1].get("refused"), 7)


# --------------------------------------------------------------------------
# The command line: options, bad options, the API key

class OptionsTest(EchoPostTest):

    def run_echopost(self, args, env_key=None, timeout=10):
        env = dict(os.environ)
        env.pop("DATANADHI_API_KEY", None)
        if env_key is not None:
            env["DATANADHI_API_KEY"] = env_key
        return subprocess.run([ECHOPOST] + args, env=env,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def test_version_and_help(self):
        for flag in ("--version", "-version", "-V"):
            with self.subTest(flag=flag):
                r = self.run_echopost([flag])
                self.assertEqual(r.returncode, 0)
                first = r.stdout.decode().splitlines()[0]
                self.assertRegex(first, r"^echopost \d+\.\d+\.\d+")
                version_file = os.path.join(REPO, "VERSION")
                if os.path.exists(version_file):
                    with open(version_file) as f:
                        self.assertEqual(first,
                                         "echopost " + f.read().strip())
        for flag in ("--help", "-help", "-h"):
            with self.subTest(flag=flag):
                r = self.run_echopost([flag])
                self.assertEqual(r.returncode, 0)
                self.assertIn("-datanadhi", r.stdout.decode())
                self.assertIn("-api-key", r.stdout.decode())
                self.assertIn("-health-url", r.stdout.decode())

    def test_bad_options_exit_64_with_message(self):
        cases = {
            "unknown option": ["--bogus"],
            "bad duration": ["--timeout", "xyz"],
            "bad health interval": ["--health-interval", "fast"],
            "bad url": ["-health-url", "ftp://x"],
            "bad socket mode": ["--socket-mode", "999"],
            "bad log level": ["--log-level", "loud"],
            "missing value": ["-api-key"],
            "stray argument": ["extra"],
        }
        for what, args in cases.items():
            with self.subTest(what):
                d = os.path.join(self.tmp, "bad")
                r = self.run_echopost(["-datanadhi", d] + args)
                self.assertEqual(r.returncode, 64, r.stderr)
                self.assertNotEqual(r.stderr.strip(), b"",
                                    "no message on stderr")
                self.assertFalse(os.path.exists(d),
                                 "DIR made despite a bad option")
        r = self.run_echopost(["--timeout", "xyz"])
        self.assertIn(b"timeout", r.stderr)
        r = self.run_echopost(["-health-url", "ftp://x"])
        self.assertIn(b"ftp://x", r.stderr)

    def test_equals_forms_start_and_use_their_values(self):
        self.start_server("down")
        proc = self.start_echopost(
            ["-datanadhi=" + self.dir, "--api-key=K-eq",
             "--health-url=" + self.server.url, "-health-interval=100ms",
             "--socket-mode=0660"])
        st = self.wait_socket(proc)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.store('{"form": "equals"}')
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        posts = self.posts()
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0]["headers"].get("datanadhi-api-key"), "K-eq")

    def test_long_dir_is_served_by_a_relative_name(self):
        # Before: a DIR whose socket path passed 107 bytes was refused
        # (exit 64), after DIR was made. Now the socket is bound by a name
        # relative to DIR, so any length serves; a client that connects
        # by the whole path cannot, and a socket_path_long warning says so.
        self.start_server("down")
        tail = "/" + SOCKET_NAME
        base = os.path.join(self.tmp, "")
        too_long = base + "a" * (SUN_PATH_MAX + 1 - len(tail) - len(base))
        self.assertEqual(len(too_long + tail), SUN_PATH_MAX + 1)
        proc = self.start_echopost(dir=too_long)
        self.assertTrue(wait_until(lambda: os.path.exists(too_long + tail),
                                   5 * SLOW), self.stderr_of(proc))
        here = os.getcwd()
        os.chdir(too_long)
        try:
            r = send_log(SOCKET_NAME, '{"long": true}')
        finally:
            os.chdir(here)
        self.assertTrue(r.success, r.message)
        self.assertEqual(self.stop_echopost(proc), 0)
        self.assertIn("socket_path_long", self.names_of(proc))

        # Exactly 107 bytes: no warning.
        just = base + "b" * (SUN_PATH_MAX - len(tail) - len(base))
        self.assertEqual(len(just + tail), SUN_PATH_MAX)
        proc = self.start_echopost(dir=just)
        self.wait_socket(proc, sock=just + tail)
        r = send_log(just + tail, '{"fits": true}')
        self.assertTrue(r.success, r.message)
        self.assertEqual(self.stop_echopost(proc), 0)
        self.assertNotIn("socket_path_long", self.names_of(proc))

    def test_api_key_from_environment(self):
        proc = self.start_with_log('{"from": "env"}', key=None,
                                   env_key="ENV-KEY-77")
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        posts = self.posts()
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0]["headers"].get("datanadhi-api-key"),
                         "ENV-KEY-77")
        with open(proc.out_path) as f:
            self.assertNotIn("ENV-KEY-77", f.read())

    def test_api_key_flag_beats_environment(self):
        proc = self.start_with_log('{"from": "flag"}', env_key="ENV-KEY-77")
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(self.posts()[0]["headers"].get("datanadhi-api-key"),
                         self.API_KEY)

    @unittest.skipIf(WRAPPED,
                     "under valgrind or an emulator, /proc shows the "
                     "wrapper's command line, not echopost's")
    def test_api_key_not_visible_in_proc_cmdline(self):
        self.start_server("down")
        for form in ("separate", "equals"):
            with self.subTest(form=form):
                if form == "separate":
                    args = ["-datanadhi", self.dir, "-api-key", self.API_KEY,
                            "-health-url", self.server.url]
                else:
                    args = ["-datanadhi", self.dir,
                            "-api-key=" + self.API_KEY,
                            "-health-url", self.server.url]
                proc = self.start_echopost(args, sdk=True)
                try:
                    self.wait_socket(proc)
                    with open("/proc/%d/cmdline" % proc.pid, "rb") as f:
                        cmdline = f.read()
                    self.assertIn(b"-datanadhi", cmdline)
                    self.assertNotIn(self.API_KEY.encode(), cmdline)
                    self.assertNotIn(b"sekrit", cmdline)
                finally:
                    self.assertEqual(self.stop_echopost(proc), 0)
                self.assertFalse(os.path.lexists(self.sock))
        for path in files_under(self.dir):
            with open(path, "rb") as f:
                self.assertNotIn(self.API_KEY.encode(), f.read(), path)


# --------------------------------------------------------------------------
# The C client, and logs sent while echopost drains

class ClientsTest(EchoPostTest):

    @unittest.skipUnless(os.access(ECHOPOST_SEND, os.X_OK),
                         "echopost-send not built (make check builds it)")
    def test_echopost_send_c_client_round_trip(self):
        self.start_server("down")
        proc = self.start_echopost()
        self.wait_socket(proc)
        r = subprocess.run([ECHOPOST_SEND, "-t", "4", "-n", "25",
                            "-k", "C-KEY", "-p", "cpipe", "-m", "from C",
                            self.sock],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().strip(),
                         "sent 100, stored 100, refused 0, failed 0")
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        posts = self.posts()
        self.assertEqual(len(posts), 100)
        seen = {}
        for p in posts:
            body = json.loads(p["body"])
            self.assertEqual(body["pipelines"], ["cpipe"])
            self.assertEqual(p["headers"].get("datanadhi-api-key"), "C-KEY")
            d = body["log_data"]
            self.assertEqual(d["message"], "from C")
            seen.setdefault(d["thread"], []).append(d["seq"])
        self.assertEqual(sorted(seen), [0, 1, 2, 3])
        for t, seqs in seen.items():
            self.assertCountEqual(seqs, list(range(25)), "thread %d" % t)

    def test_logs_sent_while_draining_are_all_delivered(self):
        self.start_server("down")
        proc = self.start_echopost()
        self.wait_socket(proc)

        def up_later(stop):
            wait_until(lambda: self.spooled() >= 20, 10 * SLOW, 0.05)
            self.server.up()
            # Stop sending once logs sent after that were delivered too,
            # so that echopost can find its spool empty.
            wait_until(lambda: len(self.posts()) >= 100, 20 * SLOW, 0.05)
            stop.set()

        sent = self.send_during(up_later)
        self.assertEqual(self.wait_exit(proc), 0)
        acked = [s for s in sent if s.acked is not None]
        self.assertGreater(len(acked), 0)
        posts = self.posts()
        self.assert_in_ack_order(sent, posts)
        exit_event = self.events_of(proc)[-1]
        self.assertEqual(exit_event.get("status"), 0)
        self.assertGreaterEqual(exit_event.get("stored"), len(acked))
        self.assertEqual(exit_event.get("spooled"), 0)
        self.assertGreaterEqual(len(posts), exit_event.get("stored"))
        self.assertEqual(spool_names(self.dir), [])


# --------------------------------------------------------------------------
# The server's health, and the server going away mid-replay

class HealthTest(EchoPostTest):

    def test_exits_at_once_when_server_healthy_and_nothing_spooled(self):
        self.start_server("up")
        proc = self.start_echopost()
        self.assertEqual(self.wait_exit(proc, timeout=5 * SLOW), 0)
        for name in (SOCKET_NAME, STATUS_LOCK, POSITION, PID_FILE):
            self.assertFalse(os.path.lexists(os.path.join(self.dir, name)),
                             "%s left behind" % name)
        self.assertEqual(self.posts(), [])
        self.assertEqual(self.events_of(proc)[-1].get("status"), 0)

    def test_health_needs_2xx_and_url_is_used_as_given(self):
        self.start_server("down")
        proc = self.start_echopost(
            ["-datanadhi", self.dir, "-api-key", self.API_KEY,
             "-health-url", self.server.url + "/health/",
             "--health-interval", "100ms"])
        self.wait_socket(proc)
        self.store('{"health": "check"}')
        # Up, but unhealthy: nothing may be delivered.
        self.server.set(health_status=503)
        self.server.up()
        self.assertTrue(wait_until(
            lambda: len([r for r in self.server.requests()
                         if r["method"] == "GET"]) >= 3, 5 * SLOW),
            "no three health checks were made")
        self.assertEqual(proc.poll(), None)
        self.assertEqual([r for r in self.server.requests()
                          if r["method"] == "POST"], [])
        self.assertTrue(os.path.exists(os.path.join(self.dir, STATUS_LOCK)))
        gets = [r for r in self.server.requests() if r["method"] == "GET"]
        self.assertGreater(len(gets), 0, "no health check was made")
        self.assertEqual({r["path"] for r in gets}, {"/health/"})

        self.server.set(health_status=204)
        self.assertEqual(self.wait_exit(proc), 0)
        posts = [r for r in self.server.requests() if r["method"] == "POST"]
        self.assertEqual(len(posts), 1)
        # URL/log without a double slash.
        self.assertEqual(posts[0]["path"], "/health/log")
        self.assertEqual(json.loads(posts[0]["body"])["log_data"],
                         {"health": "check"})

    def test_server_back_noticed_before_the_backoff_ends(self):
        # Protects: with default options the health checks back off to 5 s
        # apart, but while the server's port refuses connections it is
        # tried every 250 ms, so the server coming back is seen within
        # about that, not up to 5 s later.
        proc = self.start_with_log('{"back": "soon"}', interval=None)
        # The waits double from 0.5 s (drawn from the upper half of each
        # step) up to the 5 s cap: after the fifth failed check the next
        # comes 2.5 to 5 s later.
        self.assertTrue(wait_until(
            lambda: self.names_of(proc).count("server_down") >= 5,
            15 * SLOW, 0.02), "the health checks did not back off")
        self.server.up()
        back = time.monotonic()
        self.assertTrue(wait_until(lambda: len(self.posts()) > 0, 10.0,
                                   0.02), "nothing delivered")
        latency = time.monotonic() - back
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertLess(latency, 2.0 * SLOW, "the server coming back was noticed "
                        "only after %.1f s" % latency)
        self.assertIn("server_listening", self.names_of(proc))

    def post_to_a_slow_server(self, payload, log_delay):
        """echopost with --timeout 200ms, payload spooled, then the server
        up, answering POST /log after log_delay seconds."""
        self.start_server("down")
        proc = self.start_echopost(
            ["-datanadhi", self.dir, "-api-key", self.API_KEY,
             "-health-url", self.server.url, "--health-interval", "100ms",
             "--timeout", "200ms"])
        self.wait_socket(proc)
        self.store(payload)
        self.server.set(log_delay=log_delay)
        self.server.up()
        return proc

    def timed_out(self, proc):
        # libcurl's own words: "Operation timed out after 200 ms ...".
        return [e for e in self.events_of(proc)
                if e["event"] == "delivery_error" and
                "timed out" in e.get("reason", "")]

    def test_timeouts_are_transient(self):
        # Protects: a POST that times out (health checks answer at once) is
        # retried, never counted delivered nor failed.
        proc = self.post_to_a_slow_server('{"slow": true}', 0.6)
        self.assertTrue(wait_until(lambda: len(self.posts()) >= 2,
                                   10.0 * SLOW), "the timed-out POST was "
                        "not tried again")
        self.assertEqual(proc.poll(), None, "gave up on a slow server")
        self.server.set(log_delay=0)
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertNotEqual(self.timed_out(proc), [], self.events_of(proc))
        delivered = [json.loads(p["body"])["log_data"] for p in self.posts()]
        self.assertIn({"slow": True}, delivered)
        self.assertEqual(self.session_file("agent-failure.log"), [])
        self.assertEqual(len(self.session_file("agent-success.log")), 1)

    def test_a_post_left_unanswered_times_out(self):
        # Protects: --timeout ends a POST the server never answers. Only
        # libcurl's timer can: no byte comes to wake the transfer.
        proc = self.post_to_a_slow_server('{"unanswered": true}', 30)
        self.assertTrue(wait_until(lambda: len(self.timed_out(proc)) >= 2,
                                   5.0 * SLOW, 0.05),
                        "a POST the server holds was not timed out: %s"
                        % self.names_of(proc))
        self.assertEqual(self.posts(), [])
        self.assertEqual(self.stop_echopost(proc), 0)
        # Timed out is not failed: the log stays spooled for a later run.
        self.assertEqual(self.events_of(proc)[-1].get("spooled"), 1)
        self.assertEqual(self.session_file("agent-failure.log"), [])
        self.assertEqual(self.session_file("agent-success.log"), [])

    def test_server_going_down_during_replay_loses_nothing(self):
        self.start_server("down")
        proc = self.start_echopost()
        self.wait_socket(proc)
        sent = self.send_threads(
            2, 30, lambda t, i: Sent(t, i, '{"thread": %d, "seq": %d}'
                                     % (t, i), ["pl"], ""))
        self.assert_all_stored(sent)
        self.server.set(delay=0.02)
        self.server.up()
        self.assertTrue(wait_until(lambda: len(self.posts()) >= 10, 5 * SLOW),
                        "the replay did not start")
        self.server.down()
        delivered_before = len(self.posts())
        self.assertLess(delivered_before, 60,
                        "replay finished before the server went down")
        self.assertTrue(wait_until(
            lambda: os.path.exists(os.path.join(self.dir, STATUS_LOCK)),
            5 * SLOW), "no status lock after the server went away")
        self.assertEqual(proc.poll(), None)
        self.server.set(delay=0)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assert_in_ack_order(sent, self.posts())
        self.assertEqual(self.session_file("agent-failure.log"), [])


class LimitsTest(EchoPostTest):

    def test_empty_api_key_still_sends_the_header(self):
        # No -api-key, no DATANADHI_API_KEY, no api_key in the request: the
        # contract's header "DATANADHI-API-KEY: KEY" with KEY empty.
        proc = self.start_with_log('{"key": "none"}', key=None)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        posts = self.posts()
        self.assertEqual(len(posts), 1)
        self.assertIn("datanadhi-api-key", posts[0]["headers"],
                      "DATANADHI-API-KEY header not sent when the key is "
                      "empty")
        self.assertEqual(posts[0]["headers"]["datanadhi-api-key"], "")

    def test_large_log_and_odd_pipelines_delivered_intact(self):
        self.start_server("down")
        proc = self.start_echopost()
        self.wait_socket(proc)
        text = json.dumps({"big": "\u00e9x" * 200000, "n": [1, 2.5, None]},
                          ensure_ascii=False)
        pipelines = ['quo"te', "back\\slash", "new\nline", "\u00fcml"]
        self.store(text, pipelines)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        posts = self.posts()
        self.assertEqual(len(posts), 1)
        body = json.loads(posts[0]["body"])
        self.assertEqual(body["pipelines"], pipelines)
        self.assertEqual(body["log_data"], json.loads(text))
        self.assertIn(text, posts[0]["body"])

    def test_max_message_size_refuses_bigger_requests(self):
        self.start_server("down")
        proc = self.start_echopost(
            ["-datanadhi", self.dir, "-api-key", self.API_KEY,
             "-health-url", self.server.url, "--health-interval", "100ms",
             "--max-message-size", "2k"])
        self.wait_socket(proc)
        big = json.dumps({"big": "x" * 4096})
        try:
            r = send_log(self.sock, big)
            self.assertFalse(r.success, "a request over the limit stored")
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.store('{"small": true}')
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual([json.loads(p["body"])["log_data"]
                          for p in self.posts()], [{"small": True}])


class PackagedBinaryTest(EchoPostTest):

    def test_sdk_runs_the_packaged_binary_through_a_link_in_dir(self):
        # Today's SDK runs DIR/echopost, and downloads a binary there only
        # when nothing is there. A link to the installed binary is what
        # it finds and runs: started exactly as the SDK starts it (a new
        # session, stdio on /dev/null), it serves and delivers.
        self.start_server("down")
        os.makedirs(self.dir, 0o700)
        link = os.path.join(self.dir, "echopost")
        os.symlink(os.path.abspath(ECHOPOST), link)
        proc = subprocess.Popen(
            [link, "-datanadhi", self.dir, "-api-key", self.API_KEY,
             "-health-url", self.server.url], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        self.wait_socket(proc)
        self.assertTrue(send_log(self.sock, '{"via": "link"}').success)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(len(self.posts()), 1)
        self.assertEqual(os.readlink(link), os.path.abspath(ECHOPOST),
                         "echopost touched the link the SDK runs it by")

    def test_the_sdks_own_layout_relative_to_the_application(self):
        # The SDK's layout, as its code makes it: datanadhi_dir is
        # ".datanadhi" in the application's working directory, DIR its
        # subdirectory "echopost" (mkdir -p, the umask's mode), the binary
        # the file "echopost" in DIR, here the admin's link to the
        # packaged one; the SDK deletes the socket name, starts
        # DIR/echopost -datanadhi DIR (both relative) detached, and polls
        # 2 s for the socket. Before, the docs linked .datanadhi/echopost
        # itself to the binary: the SDK's mkdir of DIR then failed.
        self.start_server("down")
        app = os.path.join(self.tmp, "app")
        os.mkdir(app)
        rel_dir = os.path.join(".datanadhi", "echopost")
        old_umask = os.umask(0o022)
        try:
            os.makedirs(os.path.join(app, rel_dir))
        finally:
            os.umask(old_umask)
        binary = os.path.join(rel_dir, "echopost")
        os.symlink(os.path.abspath(ECHOPOST), os.path.join(app, binary))
        sock = os.path.join(app, rel_dir, SOCKET_NAME)
        proc = subprocess.Popen(
            [binary, "-datanadhi", rel_dir, "-api-key", self.API_KEY,
             "-health-url", self.server.url], cwd=app,
            start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        # The SDK's 2 s; under valgrind (ECHOPOST_SLOW) that much longer.
        self.assertTrue(wait_until(lambda: os.path.exists(sock), 2.0 * SLOW),
                        "no socket within the SDK's 2 s")
        self.assertTrue(send_log(sock, '{"via": "sdk layout"}').success)
        status = subprocess.run(
            [binary, "--status", "--json", "-datanadhi", rel_dir,
             "-health-url", self.server.url], cwd=app,
            capture_output=True, timeout=30)
        self.assertEqual(status.returncode, 0, status.stderr)
        report = json.loads(status.stdout)
        self.assertTrue(report["running"])
        self.assertEqual(report["spool"]["records"], 1)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(len(self.posts()), 1)
        self.assertTrue(os.path.islink(os.path.join(app, binary)))


class TlsTest(EchoPostTest):
    """https:// with a private CA: openssl s_server with a certificate of
    its own, which no system store knows."""

    def setUp(self):
        super().setUp()
        self.cert = os.path.join(self.tmp, "ca.pem")
        key = os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", self.cert],
                       check=True, capture_output=True, timeout=60)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
             "-cert", self.cert, "-key", key, "-www", "-quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.procs.append(server)
        self.url = "https://127.0.0.1:%d/" % port

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        self.assertTrue(wait_until(listening, 10), "s_server did not start")

    def status(self, *extra, env=None):
        """--status on the TLS server; env adds to an environment that
        names no CA certificates of its own."""
        base = {k: v for k, v in os.environ.items() if k not in
                ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
        result = subprocess.run(
            [ECHOPOST, "--status", "--json", "-datanadhi", self.dir,
             "-health-url", self.url] + list(extra),
            env=dict(base, **(env or {})), capture_output=True,
            timeout=30)
        return json.loads(result.stdout)["server"]

    def test_private_ca_by_option_or_environment(self):
        unknown = self.status()
        self.assertFalse(unknown["healthy"])
        self.assertIn("certificate", unknown["error"])
        self.assertTrue(self.status("--cacert", self.cert)["healthy"])
        for name in ("CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            with self.subTest(env=name):
                self.assertTrue(self.status(env={name: self.cert})[
                    "healthy"])

    def test_events_name_the_tls_error_and_cacert_serves(self):
        # Without the CA the health check fails with libcurl's own words
        # (the self-signed certificate), not a generic "peer certificate
        # not OK"; with --cacert the server is healthy, and an empty
        # spool means a clean exit at once.
        args = ["-datanadhi", self.dir, "-health-url", self.url,
                "--health-interval", "100ms"]
        proc = self.start_echopost(args)
        self.wait_socket(proc)
        wait_until(lambda: "server_down" in [
            e["event"] for e in self.events_of(proc)], 5 * SLOW)
        self.assertEqual(self.stop_echopost(proc), 0)
        reasons = [e.get("reason", "") for e in self.events_of(proc)
                   if e["event"] == "server_down"]
        self.assertTrue(reasons)
        self.assertIn("self-signed certificate", reasons[0])
        proc = self.start_echopost(args + ["--cacert", self.cert])
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertIn("server_healthy", self.names_of(proc))


class JournalTest(EchoPostTest):

    def test_lines_carry_their_priority_when_stdout_is_the_journal(self):
        # Under systemd, JOURNAL_STREAM names the stream the journal reads:
        # each event on it begins with its syslog priority (sd-daemon(3)),
        # so that warnings and errors are filed as such. agent.log, and a
        # stdout that is not the journal, stay plain JSON.
        self.start_server("up")
        out_path = os.path.join(self.tmp, "journal.txt")
        for journal in (True, False):
            with self.subTest(journal=journal), open(out_path, "wb") as out:
                st = os.fstat(out.fileno())
                env = dict(os.environ)
                if journal:
                    env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev,
                                                       st.st_ino)
                else:
                    env["JOURNAL_STREAM"] = "1:1"
                proc = subprocess.run(
                    [ECHOPOST, "-datanadhi", self.dir, "-health-url",
                     self.server.url, "--log-level", "debug"], env=env,
                    stdout=out, timeout=30)
                self.assertEqual(proc.returncode, 0)
            with open(out_path) as f:
                lines = f.read().splitlines()
            self.assertTrue(lines)
            for line in lines:
                event = json.loads(line[3:] if journal else line)
                want = {"error": "<3>", "warn": "<4>", "info": "<6>",
                        "debug": "<7>"}[event["level"]]
                self.assertEqual(line.startswith(want), journal, line)
            # Plain JSON there, or reading it would fail.
            self.assertTrue(self.session_file("agent.log"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
