#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""End-to-end tests of the admin commands: --status, --dump,
--replay-only, the progress bar on a terminal, and --keep-sessions.

Each test runs the real echopost binary against a real HTTP server process
(fakeserver.py) and real gRPC clients, as tests/test_e2e.py does.
"""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    ECHOPOST, PID_FILE, RFC3339_UTC_RE, SLOW, SOCKET_WAIT, STATUS_LOCK,
    EchoPostTest, as_user, c_define, load_stubs, log_text, send_log,
    spool_names, wait_until)


def setUpModule():
    load_stubs()


class AdminTest(EchoPostTest):

    def wait_event(self, proc, name):
        """Wait until proc has logged an event called name."""
        deadline = time.monotonic() + SOCKET_WAIT
        while name not in self.names_of(proc):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.fail("no %s event; events: %s"
                          % (name, self.names_of(proc)))
            time.sleep(0.05)

class StatusTest(AdminTest):

    def test_status_of_a_running_instance_as_table_and_json(self):
        self.start_server("down")
        proc, texts = self.store_logs(5)
        code, out, err = self.admin("--status")
        self.assertEqual(code, 0, err)
        self.assertIn("running, pid %d" % proc.pid, out)
        self.assertRegex(out, r"socket\s+present")
        self.assertRegex(out, r"spool\s+5 records")
        self.assertRegex(out, r"server\s+%s down" % self.server.url)

        code, out, err = self.admin("--status", "--json")
        self.assertEqual(code, 0, err)
        report = json.loads(out)
        self.assertTrue(report["running"])
        self.assertEqual(report["pid"], proc.pid)
        self.assertTrue(report["socket"])
        self.assertEqual(report["spool"]["records"], 5)
        self.assertGreater(report["spool"]["bytes"], 0)
        self.assertRegex(report["spool"]["oldest"], RFC3339_UTC_RE)
        self.assertLessEqual(report["spool"]["oldest"],
                             report["spool"]["newest"])
        self.assertEqual(report["latest_session"],
                         os.path.basename(self.sessions()[-1]))
        self.assertFalse(report["server"]["healthy"])
        self.assertTrue(report["dir_exists"])
        self.assertIsNone(report["unknown"])

        # The look changed nothing: the instance still serves and delivers.
        self.assertTrue(send_log(self.sock, log_text(0, 5), [], "").success)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(len(self.posts()), 6)

    def test_status_when_none_is_running_with_records_exits_5(self):
        # Before: exit 3, as for an empty spool. Now a spool nobody will
        # deliver (stranded) has an exit status of its own.
        self.start_server("down")
        self.spool_left(3)
        self.server.up()
        code, out, err = self.admin("--status", "--json")
        self.assertEqual(code, 5, err)
        report = json.loads(out)
        self.assertTrue(report["stranded"])
        self.assertFalse(report["stale_socket"])
        self.assertFalse(report["running"])
        self.assertIsNone(report["pid"])
        self.assertFalse(report["socket"])
        self.assertEqual(report["spool"]["records"], 3)
        self.assertTrue(report["server"]["healthy"])
        self.assertEqual(report["server"]["code"], 200)

        code, out, err = self.admin("--status")
        self.assertEqual(code, 5, err)
        self.assertRegex(out, r"instance\s+not running")
        self.assertRegex(out, r"server\s+\S+ healthy \(200\)")
        self.assertRegex(out, r"to deliver\s+echopost --replay-only")

    def test_stale_pid_file_naming_a_live_process_is_not_running(self):
        # A pid file a crash left may name a process that is now another
        # program: only the lock the running instance holds counts.
        self.start_server("down")
        os.mkdir(self.dir, 0o700)
        with open(os.path.join(self.dir, PID_FILE), "w") as f:
            f.write("%d\n" % os.getpid())
        code, out, err = self.admin("--status")
        self.assertEqual(code, 3, out + err)
        self.assertRegex(out, r"instance\s+not running")

    def test_status_of_a_missing_directory_says_so(self):
        self.start_server("down")
        code, out, err = self.admin("--status")
        self.assertEqual(code, 3, err)
        self.assertIn("(no such directory)", out)
        self.assertRegex(out, r"spool\s+0 records")
        self.assertFalse(os.path.exists(self.dir))

    @unittest.skipUnless(os.geteuid() == 0, "needs root, to act as a user "
                         "who cannot read DIR (setpriv)")
    def test_status_of_an_unreadable_directory_cannot_tell(self):
        # Another user cannot know whether an instance runs: exit 4, and
        # "cannot tell", not "not running" or "socket absent".
        self.start_server("down")
        os.chmod(self.tmp, 0o755)
        proc, _ = self.store_logs(1)
        result = subprocess.run(
            as_user((4343, 4343, None)) + [
                ECHOPOST, "--status", "--json", "-datanadhi", self.dir,
                "-health-url", self.server.url],
            capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 4, result.stderr)
        report = json.loads(result.stdout)
        self.assertIsNone(report["running"])
        self.assertIn("Permission denied", report["unknown"])
        self.assertIsNone(report["socket"])
        self.assertEqual(self.stop_echopost(proc), 0)

    def test_status_of_an_empty_directory(self):
        self.start_server("down")
        os.mkdir(self.dir, 0o700)
        code, out, err = self.admin("--status", "--json")
        self.assertEqual(code, 3, err)
        report = json.loads(out)
        self.assertEqual(report["spool"]["records"], 0)
        self.assertIsNone(report["latest_session"])
        self.assertEqual(os.listdir(self.dir), [])


class DumpTest(AdminTest):

    def check_dump(self, out, texts):
        lines = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(lines), len(texts))
        payloads = [json.dumps(line["log_data"]["payload"], sort_keys=True)
                    for line in lines]
        self.assertEqual(payloads, self.canonical(texts))
        seqs = [line["context"]["seq"] for line in lines]
        self.assertEqual(seqs, sorted(seqs))
        for line in lines:
            self.assertEqual(line["log_data"]["pipelines"], ["pl"])
            self.assertRegex(line["log_data"]["received_at"], RFC3339_UTC_RE)

    def test_dump_while_running_changes_nothing(self):
        self.start_server("down")
        proc, texts = self.store_logs(8)
        code, first, err = self.admin("--dump")
        self.assertEqual(code, 0, err)
        self.check_dump(first, texts)
        code, second, err = self.admin("--dump")
        self.assertEqual((code, second), (0, first))

        self.assertTrue(send_log(self.sock, log_text(0, 8), ["pl"],
                                 "").success)
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(len(self.posts()), 9)

    def test_dump_of_a_stopped_spool_and_of_none(self):
        self.start_server("down")
        texts = self.spool_left(4)
        code, out, err = self.admin("--dump")
        self.assertEqual(code, 0, err)
        self.check_dump(out, texts)
        for name in spool_names(self.dir):
            os.unlink(os.path.join(self.dir, name))
        self.assertEqual(self.admin("--dump")[:2], (0, ""))

    def test_dump_of_a_missing_directory_is_an_error(self):
        self.start_server("down")
        code, out, err = self.admin("--dump")
        self.assertEqual((code, out), (66, ""))
        self.assertIn("No such file or directory", err)
        self.assertFalse(os.path.exists(self.dir))


    def test_dump_of_one_record_a_range_and_a_count(self):
        self.start_server("down")
        texts = self.spool_left(6)
        code, out, err = self.admin("--dump")
        seqs = [json.loads(line)["context"]["seq"]
                for line in out.splitlines()]
        first = seqs[0]
        code, out, err = self.admin("--dump", "--seq", str(first + 2))
        self.assertEqual(code, 0, err)
        self.check_dump(out, texts[2:3])
        code, out, err = self.admin("--dump", "--seq",
                                    "%d-%d" % (first + 1, first + 3))
        self.check_dump(out, texts[1:4])
        # A range reaching past the spool shows what the spool holds.
        code, out, err = self.admin("--dump", "--seq",
                                    "%d-%d" % (first + 4, first + 99))
        self.check_dump(out, texts[4:])
        self.assertEqual(self.admin("--dump", "--count")[:2], (0, "6\n"))
        self.assertEqual(self.admin("--dump", "--count", "--seq",
                                    "%d-%d" % (first + 1, first + 3))[:2],
                         (0, "3\n"))
        self.assertEqual(self.admin("--dump", "--count", "--seq",
                                    str(first + 50))[:2], (0, "0\n"))
        for bad in ("x", "5-3", "-1", "3-", ""):
            code, out, err = self.admin("--dump", "--seq", bad)
            self.assertEqual((code, out), (64, ""), bad)
            self.assertIn("not a record number", err)
        code, out, err = self.admin("--status", "--count")
        self.assertEqual(code, 64)
        self.assertIn("--count goes with --dump", err)


class GiveUpTest(AdminTest):
    """--give-up: an administrator moves a stored record (a poison one)
    to the failure log unsent, as exim -Mg gives up a message."""

    def seqs(self):
        code, out, err = self.admin("--dump")
        self.assertEqual(code, 0, err)
        return [json.loads(line)["context"]["seq"]
                for line in out.splitlines()]

    def test_given_up_records_go_to_the_failure_log_unsent(self):
        self.start_server("down")
        texts = self.spool_left(6)
        seqs = self.seqs()
        code, out, err = self.admin("--give-up", str(seqs[1]))
        self.assertEqual(code, 0, err)
        self.assertIn("1 record given up", out)
        code, out, err = self.admin("--give-up",
                                    "%d-%d" % (seqs[3], seqs[4]))
        self.assertEqual(code, 0, err)
        self.assertIn("2 records given up", out)
        # Shown before the run: by --status and marked by --dump.
        code, out, err = self.admin("--status", "--json")
        self.assertEqual(json.loads(out)["spool"]["given_up"], 3)
        self.assertIn("given up        3 records",
                      self.admin("--status")[1])
        marked = [json.loads(line)["context"].get("given_up", False)
                  for line in self.admin("--dump")[1].splitlines()]
        self.assertEqual(marked, [False, True, False, True, True, False])

        # --replay-only: records given up are not the server's refusals
        # (exit 65), the run exits 0. One request at a time, so that the
        # records kept arrive in their order.
        self.server.up()
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url,
                                    "--health-interval", "50ms",
                                    "--replay-concurrency", "1"])
        self.assertEqual(self.wait_exit(proc), 0, self.stderr_of(proc))
        kept = [texts[i] for i in (0, 2, 5)]
        self.assertEqual(self.delivered_payloads(), self.canonical(kept))
        failed = self.session_file("agent-failure.log")
        self.assertEqual(
            sorted(json.dumps(f["log_data"]["payload"], sort_keys=True)
                   for f in failed),
            sorted(self.canonical([texts[i] for i in (1, 3, 4)])))
        for f in failed:
            self.assertEqual(f["context"]["responseCode"], 0)
            self.assertIn("given up by the administrator",
                          f["context"]["response"])
        events = self.events_of(proc)
        self.assertEqual(
            sorted(e["seq"] for e in events
                   if e["event"] == "record_given_up"),
            [seqs[1], seqs[3], seqs[4]])
        # The list went with the spool: numbers given again are sent.
        self.assertEqual(spool_names(self.dir), [])
        self.server.down()
        texts = self.spool_left(3)
        self.server.up()
        proc = self.start_echopost()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(len(self.posts()), 6)

    def test_give_up_refuses_a_running_instance_and_records_not_stored(self):
        self.start_server("down")
        proc, texts = self.store_logs(3)
        seqs = self.seqs()
        code, out, err = self.admin("--give-up", str(seqs[0]))
        self.assertEqual((code, out), (75, ""))
        self.assertIn("stop it first", err)
        self.assertEqual(self.stop_echopost(proc), 0)
        for bad in (str(seqs[-1] + 1), "%d-%d" % (seqs[0], seqs[-1] + 5)):
            code, out, err = self.admin("--give-up", bad)
            self.assertEqual((code, out), (65, ""), bad)
            self.assertIn("the spool holds records %d to %d"
                          % (seqs[0], seqs[-1]), err)
        self.assertNotIn("echopost.spool.given-up", os.listdir(self.dir))
        self.assertNotIn(PID_FILE, os.listdir(self.dir))
        self.server.up()
        proc = self.start_echopost()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(len(self.posts()), 3)

    def test_an_unreadable_list_does_not_stop_a_start(self):
        self.start_server("down")
        self.spool_left(2)
        seqs = self.seqs()
        path = os.path.join(self.dir, "echopost.spool.given-up")
        # Not half of it either: a list that cannot be read whole is not
        # taken at all, as the event says.
        with open(path, "w") as f:
            f.write("%d\nnot a number\n" % seqs[0])
        os.chmod(path, 0o600)
        self.server.up()
        proc = self.start_echopost()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assertEqual(len(self.posts()), 2)
        self.assertIn("given_up_unreadable", self.names_of(proc))
        self.assertFalse(os.path.exists(path))


class ReplayOnlyTest(AdminTest):

    def test_replay_only_waits_for_the_server_then_drains_without_socket(self):
        self.start_server("down")
        texts = self.spool_left(6)
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url,
                                    "--health-interval", "50ms"])
        time.sleep(1.0)
        self.assertIsNone(proc.poll(), "gave up while the server was down")
        self.assertFalse(os.path.lexists(self.sock))
        self.assertFalse(os.path.exists(os.path.join(self.dir, STATUS_LOCK)))
        self.server.up()
        self.assertEqual(self.wait_exit(proc), 0)
        self.assert_arrival_order(self.delivered_payloads(),
                                  self.canonical(texts), once=True)
        self.assertEqual(spool_names(self.dir), [])
        self.assertFalse(os.path.lexists(self.sock))

    def test_interrupt_leaves_the_rest_in_the_spool(self):
        # Protects: SIGINT in the middle of a replay keeps what was not
        # delivered, in order: what the server got and what --dump shows
        # make up every log, the one in flight at most twice (one: strict
        # order, so that the split is exact).
        self.start_server("down")
        texts = self.canonical(self.spool_left(20))
        self.server.set(log_delay=0.05)
        self.server.up()
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url,
                                    "--replay-concurrency", "1"])
        self.assertTrue(wait_until(lambda: len(self.posts()) >= 3,
                                   10.0 * SLOW), "replay did not start")
        # Before: exit 0, as if all was done. Now 75, and how many wait.
        self.assertEqual(self.stop_echopost(proc, signal.SIGINT), 75)
        self.assertRegex(self.stderr_of(proc),
                         r"stopped with \d+ records still in the spool")
        delivered = self.delivered_payloads()
        code, out, err = self.admin("--dump")
        self.assertEqual(code, 0, err)
        left = [json.dumps(json.loads(line)["log_data"]["payload"],
                           sort_keys=True) for line in out.splitlines()]
        self.assertLess(len(delivered), 20, "the replay was not cut short")
        self.assertGreater(len(left), 0)
        self.assertEqual(delivered, texts[:len(delivered)])
        self.assertEqual(left, texts[-len(left):])
        self.assertLessEqual(len(texts) - len(left), len(delivered))
        self.assertLessEqual(len(delivered) - (len(texts) - len(left)), 1)
        code, out, err = self.admin("--status", "--json")
        self.assertEqual(code, 5, "--status of a stopped run")
        self.assertEqual(json.loads(out)["spool"]["records"], len(left))

    def test_replay_only_refuses_to_share_a_directory(self):
        # A person is told, on stderr and with EX_TEMPFAIL, that another
        # instance has DIR; the SDK's second instance still exits 0.
        self.start_server("down")
        running, _ = self.store_logs(1)
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url])
        self.assertEqual(self.wait_exit(proc), 75)
        self.assertIn("is in use by echopost (pid %d)" % running.pid,
                      self.stderr_of(proc))
        names = self.names_of(proc)
        self.assertIn("already_running", names)
        self.assertIsNone(running.poll())

    def test_replay_only_of_a_missing_directory_creates_nothing(self):
        self.start_server("up")
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url])
        self.assertEqual(self.wait_exit(proc), 66)
        self.assertIn("No such file or directory", self.stderr_of(proc))
        self.assertFalse(os.path.exists(self.dir))

    def test_replay_only_exit_status_says_records_were_refused(self):
        # Every record refused for good (400): the spool drains into the
        # failure log, and the exit status says so (65), not 0.
        self.start_server("down")
        self.spool_left(2)
        self.server.up()
        self.server.set(log_status=400)
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url])
        self.assertEqual(self.wait_exit(proc), 65)
        self.assertIn("refused 2 records", self.stderr_of(proc))
        self.assertEqual(len(self.session_file("agent-failure.log")), 2)


class ProgressTest(AdminTest):

    def replay_with_stderr(self, stderr):
        out_path = os.path.join(self.tmp, "replay-out.txt")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [ECHOPOST, "--replay-only", "-datanadhi", self.dir,
                 "-health-url", self.server.url], stdin=subprocess.DEVNULL,
                stdout=out, stderr=stderr)
        self.procs.append(proc)
        return proc, out_path

    def test_progress_bar_on_a_terminal_and_json_on_stdout(self):
        self.start_server("down")
        self.spool_left(40)
        self.server.up()
        self.server.set(delay=0.02)     # long enough to draw a few frames
        master, slave = pty.openpty()
        proc, out_path = self.replay_with_stderr(slave)
        os.close(slave)
        screen = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:     # the pty closes when echopost exits
                    break
                if not chunk:
                    break
                screen += chunk
            elif proc.poll() is not None:
                break
        os.close(master)
        self.assertEqual(self.wait_exit(proc), 0)
        text = screen.decode("utf-8", "replace")
        self.assertIn("\r[", text)
        self.assertRegex(text, r"\d+ sent, \d+ failed, \d+ left, \d+/s, "
                               r"ETA \d+:\d\d:\d\d")
        self.assertIn("40 sent, 0 failed, 0 left", text)
        with open(out_path) as f:
            for line in f:
                json.loads(line)            # stdout stays JSON lines

    def test_no_bar_when_stderr_is_not_a_terminal(self):
        self.start_server("down")
        self.spool_left(5)
        self.server.up()
        err_path = os.path.join(self.tmp, "replay-err.txt")
        with open(err_path, "wb") as err:
            proc, _ = self.replay_with_stderr(err)
        self.assertEqual(self.wait_exit(proc), 0)
        with open(err_path, "rb") as f:
            self.assertEqual(f.read(), b"")


class SessionRetentionTest(AdminTest):

    def test_keep_sessions_removes_the_oldest_beyond_n(self):
        self.start_server("up")
        os.mkdir(self.dir, 0o700)
        old = ["session-2020-01-0%dT00-00-00Z" % day for day in range(1, 6)]
        for name in old:
            os.mkdir(os.path.join(self.dir, name))
            with open(os.path.join(self.dir, name, "agent.log"), "w") as f:
                f.write("{}\n")
        proc = self.start_echopost(["-datanadhi", self.dir, "-health-url",
                                    self.server.url, "--keep-sessions", "3"])
        self.assertEqual(self.wait_exit(proc), 0)
        left = sorted(n for n in os.listdir(self.dir)
                      if n.startswith("session-"))
        self.assertEqual(len(left), 3)
        self.assertEqual(left[:2], old[3:])     # the two newest old ones
        self.assertGreater(left[2], old[-1])    # and the current one
        removed = [e["path"] for e in self.events_of(proc)
                   if e["event"] == "session_removed"]
        self.assertEqual(sorted(os.path.basename(p) for p in removed),
                         old[:3])

    def test_default_keeps_twenty_and_never_the_current(self):
        self.start_server("up")
        os.mkdir(self.dir, 0o700)
        for day in range(1, 26):
            os.mkdir(os.path.join(self.dir, "session-2020-01-%02dT00-00-00Z"
                                  % day))
        proc = self.start_echopost(["-datanadhi", self.dir, "-health-url",
                                    self.server.url, "--keep-sessions", "1"])
        self.assertEqual(self.wait_exit(proc), 0)
        left = [n for n in os.listdir(self.dir) if n.startswith("session-")]
        self.assertEqual(len(left), 1)
        self.assertFalse(left[0].startswith("session-2020"))

        before = left + ["session-2020-02-%02dT00-00-00Z" % day
                         for day in range(1, 26)]
        for name in before[1:]:
            os.mkdir(os.path.join(self.dir, name))
        proc = self.start_echopost(["-datanadhi", self.dir, "-health-url",
                                    self.server.url])
        self.assertEqual(self.wait_exit(proc), 0)
        current = os.path.basename(self.events_of(proc)[0]["session"])
        left = sorted(n for n in os.listdir(self.dir)
                      if n.startswith("session-"))
        # The newest --keep-sessions (its default), this run's among them
        # (a run in the same second as the first shares its directory).
        keep = c_define("DEFAULT_KEEP_SESSIONS")
        self.assertEqual(left, sorted(set(before + [current]))[-keep:])
        self.assertIn(current, left)


class RunStatusTest(AdminTest):

    def test_status_shows_a_replay_in_progress_and_asks_its_server(self):
        # Before: --status showed nothing of a replay under way, and
        # without -health-url asked the default server, not the
        # instance's. Now the instance publishes DIR/echopost.status.
        self.start_server("down")
        self.spool_left(60)
        # Slow enough that both looks below come well before the end,
        # under valgrind too (SLOW).
        self.server.set(log_delay=0.1 * SLOW)
        self.server.up()
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url,
                                    "--replay-concurrency", "1"])
        self.assertTrue(wait_until(lambda: len(self.posts()) >= 3,
                                   20 * SLOW), "replay did not start")
        # The file is rewritten once a second: wait for one with records
        # sent (the first says only that the server became healthy).
        status = os.path.join(self.dir, "echopost.status")

        def published():
            try:
                with open(status) as f:
                    return json.load(f)["sent"] > 0
            except (OSError, ValueError):
                return False
        self.assertTrue(wait_until(published, 5 * SLOW),
                        "no echopost.status with records sent")
        result = subprocess.run(
            [ECHOPOST, "--status", "--json", "-datanadhi", self.dir],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        run = report["run"]
        self.assertEqual(run["mode"], "replay-only")
        self.assertEqual(run["state"], "delivering")
        self.assertGreater(run["sent"], 0)
        self.assertGreater(run["remaining"], 0)
        self.assertGreater(run["rate"], 0)
        self.assertIsNotNone(run["eta_s"])
        self.assertEqual(report["server"]["url"], self.server.url)
        self.assertTrue(report["server"]["healthy"])
        out = subprocess.run(
            [ECHOPOST, "--status", "-datanadhi", self.dir],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertRegex(out.stdout.decode(),
                         r"run\s+replay-only, delivering: \d+ sent")
        self.server.set(log_delay=0)
        self.assertEqual(self.wait_exit(proc, timeout=30 * SLOW), 0)
        self.assertFalse(os.path.exists(os.path.join(
            self.dir, "echopost.status")), "left behind after the run")


class StrandedTest(AdminTest):
    """A killed instance strands its spool: the SDK finds the socket name,
    fails to connect, and never starts echopost again. The next person
    who looks is told, and --replay-only undoes it."""

    def test_killed_instance_shows_a_stale_socket_and_replay_clears_it(self):
        # Before: --status said "socket present" and exit 3, and
        # --replay-only left the name, so the SDK stayed locked out.
        self.start_server("down")
        proc, texts = self.store_logs(3)
        proc.kill()
        self.wait_exit(proc)
        self.assertTrue(os.path.lexists(self.sock))
        code, out, err = self.admin("--status")
        self.assertEqual(code, 5, err)
        self.assertRegex(out, r"socket\s+stale: echopost is not running")
        self.assertIn("--replay-only -datanadhi " + self.dir, out)
        code, out, err = self.admin("--status", "--json")
        report = json.loads(out)
        self.assertTrue(report["stale_socket"], out)
        self.assertTrue(report["stranded"], out)
        self.server.up()
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url])
        self.assertEqual(self.wait_exit(proc), 0, self.stderr_of(proc))
        self.assertIn("stale_socket_removed", self.names_of(proc))
        self.assertFalse(os.path.lexists(self.sock))
        self.assertEqual(len(self.posts()), 3)
        code, out, err = self.admin("--status", "--json")
        self.assertEqual(code, 3, err)
        self.assertFalse(json.loads(out)["stale_socket"])

    def test_replay_only_of_an_empty_spool_exits_at_once(self):
        # Before: it waited for the server, with nothing to send.
        self.start_server("down")
        os.makedirs(self.dir, mode=0o700)
        started = time.monotonic()
        proc = self.start_echopost(["--replay-only", "-datanadhi", self.dir,
                                    "-health-url", self.server.url])
        self.assertEqual(self.wait_exit(proc, timeout=10 * SLOW), 0,
                         self.stderr_of(proc))
        self.assertLess(time.monotonic() - started, 5 * SLOW)
        self.assertEqual(self.posts(), [])


class AdminOptionsTest(AdminTest):

    def test_api_key_with_a_control_character_is_refused(self):
        # Before: accepted from the command line and the environment,
        # though the same key from the SDK is refused. Never printed.
        self.start_server("down")
        secret = "k3y\x01tail"
        for args, env in ((["-api-key", secret], {}),
                          ([], {"DATANADHI_API_KEY": secret})):
            result = subprocess.run(
                [ECHOPOST, "-datanadhi", self.dir, "-health-url",
                 self.server.url] + args,
                env=dict(os.environ, **env), stdin=subprocess.DEVNULL,
                capture_output=True, timeout=30)
            self.assertEqual(result.returncode, 64, result.stderr)
            self.assertIn(b"control character", result.stderr)
            self.assertNotIn(b"k3y", result.stderr + result.stdout)
            self.assertFalse(os.path.exists(self.dir))

    def test_bad_values_are_told_for_what_they_are(self):
        # Before: a bad port was "not an http:// or https:// URL", an
        # unknown unit or a value past the top "not a duration of 1ms or
        # more". Now the message names the fault; nothing is made.
        self.start_server("down")
        for args, why in (
                (["-health-url", "http://127.0.0.1:99999"], "Port number"),
                (["-health-url", "ftp://host/"], "http:// or https://"),
                (["--timeout", "5h"], "unknown unit: use ms, s or m"),
                (["--timeout", "25h"], "unknown unit"),
                (["--timeout", "1441m"], "more than a day"),
                (["--health-interval", "5ms"], "less than 10ms"),
                (["--max-spool-size", "5Q"], "unknown unit: use k, M or G"),
                (["--max-spool-size", "100"], "less than 1024 bytes"),
                (["--max-message-size", "3G"], "more than")):
            result = subprocess.run(
                [ECHOPOST, "-datanadhi", self.dir] + args,
                stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            self.assertEqual(result.returncode, 64, args)
            self.assertIn(why, result.stderr.decode(), args)
            self.assertFalse(os.path.exists(self.dir))

    def test_socket_mode_nobody_can_use_is_refused(self):
        self.start_server("down")
        for mode in ("0000", "0444"):
            code, out, err = self.admin("--socket-mode", mode)
            self.assertEqual(code, 64, err)
            self.assertIn("nobody could connect", err)
            self.assertFalse(os.path.exists(self.dir))

    def test_socket_mode_open_to_all_is_served_with_a_warning(self):
        self.start_server("down")
        proc = self.start_echopost(["-datanadhi", self.dir, "-health-url",
                                    self.server.url, "--socket-mode",
                                    "0666"])
        self.wait_socket(proc)
        self.assertEqual(self.stop_echopost(proc), 0)
        self.assertIn("socket_open_to_all", self.names_of(proc))
        self.assertIn("every user on this host", self.stderr_of(proc))

    def test_help_lists_the_admin_commands(self):
        out = subprocess.run([ECHOPOST, "--help"], stdout=subprocess.PIPE,
                             timeout=10).stdout.decode()
        for option in ("--status", "--json", "--dump", "--replay-only",
                       "--keep-sessions"):
            self.assertIn(option, out)

    def test_commands_that_exclude_each_other_exit_64(self):
        self.start_server("down")
        for args in (["--status", "--dump"], ["--dump", "--replay-only"],
                     ["--json"], ["--dump", "--json"],
                     ["--keep-sessions", "0"]):
            code, out, err = self.admin(*args)
            self.assertEqual(code, 64, args)
            self.assertIn("Try 'echopost --help'", err)
            self.assertFalse(os.path.exists(self.dir))


if __name__ == "__main__":
    unittest.main(verbosity=2)
