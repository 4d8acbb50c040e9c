#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Files and permissions of EchoPost: modes, a symlinked or
world-writable DIR, the API key kept out of every file, event and
/proc/PID/cmdline. (Attacks by another local user: test_security.py.)

Each test runs the real echopost binary against the fake server
(fakeserver.py, its own process) and talks to it over its UNIX socket.
Every test says in a comment which guarantee it protects; each one fails if
that guarantee is broken. Every wait is bounded and every test cleans up
its processes and temp dirs (support.EchoPostTest).

Paths come from the environment, as for test_e2e.py (ECHOPOST, ECHOPOST_PROTO).
Run with /usr/bin/python3 tests/test_files.py.
"""

import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    ANCHOR, PID_FILE, POSITION, SESSION_RE, STATUS_LOCK, WRAPPED,
    ReliabilityTest, files_under, load_stubs)


def setUpModule():
    load_stubs()


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

    def test_a_name_too_long_on_the_way_is_refused_not_cut(self):
        # Protects: DIR is walked a name at a time; a name longer than a
        # file system allows is refused (64), never cut short to one that
        # exists or could be made, and nothing is created.
        self.start_server("down")
        long_name = "a" * 300
        dir = os.path.join(self.tmp, long_name, "dn")
        proc = self.start_echopost(dir=dir)
        self.assertEqual(self.wait_exit(proc, 5), 64)
        self.assertIn("File name too long", self.stderr_of(proc))
        self.assertEqual([n for n in os.listdir(self.tmp)
                          if n.startswith("aaaa")], [])

    def test_world_writable_dir_is_refused_even_sticky(self):
        # Protects: a DIR anyone can write to would let others swap the
        # socket or plant the files echopost trusts; the sticky bit keeps
        # them from removing ours, not from planting theirs: exit 73 and a
        # message saying so, sticky or not. Once 0700 it serves (control).
        self.start_server("down")
        os.mkdir(self.dir)
        for mode in (0o777, 0o1777):
            os.chmod(self.dir, mode)
            proc = self.start_echopost()
            self.assertEqual(self.wait_exit(proc, 5), 73)
            err = self.stderr_of(proc)
            self.assertIn("writable by others", err)
            self.assertIn("chmod go-w", err)
            self.assertFalse(os.path.lexists(self.sock))
        os.chmod(self.dir, 0o700)
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
        # Under an emulator, /proc shows the emulator's command line.
        if not WRAPPED:
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
