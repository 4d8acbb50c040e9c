#!/usr/bin/python3
"""Local users: no symbolic link, socket or directory trick lets another
user reach echopost's files, logs or key, nor echopost another user's.

The tests act as the hostile user: a second uid that shares a group with
echopost's user (setpriv(1), so the suite must run as root, as CI does;
otherwise every test is skipped and says so). Each attack is tried on a
DIR of its own; the test shows that no file outside DIR changed and that
the attempt was refused or harmless.
"""

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import (  # noqa: E402
    ECHOPOST, ECHOPOST_SEND, PID_FILE, SPOOL, EchoPostTest, as_user,
    load_stubs, send_log)

OWNER = (4242, 4242, None)          # echopost's user, and group
HOSTILE = (4343, 4343, [4242])      # another user, in echopost's group


def setUpModule():
    load_stubs()


@unittest.skipUnless(os.geteuid() == 0, "acting as other users needs root "
                     "(setpriv): run the suite as root to run these tests")
class LocalUserTest(EchoPostTest):

    def setUp(self):
        super().setUp()
        # Other users must reach DIR through the temp dir.
        os.chmod(self.tmp, 0o755)
        self.start_server("down")

    def owned_dir(self, mode=0o700, dir=None):
        """DIR, owned by OWNER with mode."""
        dir = self.dir if dir is None else dir
        os.makedirs(dir)
        os.chown(dir, OWNER[0], OWNER[1])
        os.chmod(dir, mode)
        return dir

    def victim(self, name="victim"):
        """A root-owned file outside DIR, as another user's file would be:
        (path, its bytes and stat now)."""
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(b"precious\n")
        os.chmod(path, 0o644)
        return path

    def assert_untouched(self, path):
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"precious\n",
                             "%s, outside DIR, was changed" % path)

    def plant(self, name, target):
        """The hostile user plants a link in DIR."""
        subprocess.run(as_user(HOSTILE) + ["ln", "-s", target,
                                           os.path.join(self.dir, name)],
                       check=True, timeout=10)

    def args(self):
        return ["-datanadhi", self.dir, "-api-key", self.API_KEY,
                "-health-url", self.server.url, "--health-interval",
                "100ms"]

    def finish(self, proc):
        self.server.up()
        return self.wait_exit(proc)

    def test_planted_pid_file_link_is_not_followed(self):
        # Root runs echopost on a user's group-writable DIR; a group member
        # has made echopost.pid a link to a file of root's. Before: the
        # file was truncated to hold the PID. Now: the link is refused.
        self.owned_dir(0o770)
        victim = self.victim()
        self.plant(PID_FILE, victim)
        proc = self.start_echopost(self.args())
        self.assertEqual(self.wait_exit(proc), 73)
        self.assertIn("symbolic link", self.stderr_of(proc))
        self.assert_untouched(victim)

    def test_planted_spool_link_is_not_followed(self):
        # echopost.spool (the name of echopost 1's spool) made a link:
        # GDBM used to create or overwrite the target. Now it is ignored,
        # with a warning, and echopost serves.
        self.owned_dir(0o770)
        victim = self.victim()
        self.plant(SPOOL, victim)
        proc = self.start_echopost(self.args(), user=OWNER)
        self.wait_socket(proc)
        self.assertTrue(send_log(self.sock, '{"after": "link"}').success)
        self.assertEqual(self.finish(proc), 0)
        self.assertIn("spool_ignored", self.names_of(proc))
        self.assert_untouched(victim)
        self.assertEqual(len(self.posts()), 1)

    def test_planted_session_link_is_not_followed(self):
        # Session directories have names anyone can guess: a group member
        # links the next seconds' names to a directory of its own. Before:
        # the logs went there. Now: echopost refuses to log into it.
        self.owned_dir(0o770)
        elsewhere = os.path.join(self.tmp, "elsewhere")
        os.mkdir(elsewhere)
        os.chown(elsewhere, HOSTILE[0], HOSTILE[1])
        os.chmod(elsewhere, 0o777)
        now = time.time()
        for ahead in range(0, 4):
            name = time.strftime("session-%Y-%m-%dT%H-%M-%SZ",
                                 time.gmtime(now + ahead))
            self.plant(name, elsewhere)
        proc = self.start_echopost(self.args(), user=OWNER)
        self.assertEqual(self.wait_exit(proc), 73)
        self.assertEqual(os.listdir(elsewhere), [],
                         "logs were written through the planted link")

    def test_group_member_cannot_use_the_socket_by_default(self):
        # Before: the socket was 0660, so any member of echopost's group
        # could have logs delivered with echopost's key and fill the disk.
        # Now it is 0600; --socket-mode 0660 lets the group in on purpose.
        self.owned_dir(0o750)
        for extra, allowed in (([], False), (["--socket-mode", "0660"],
                                             True)):
            with self.subTest(socket_mode=extra or "default"):
                proc = self.start_echopost(self.args() + extra, user=OWNER)
                self.wait_socket(proc)
                sent = subprocess.run(
                    as_user(HOSTILE) + [ECHOPOST_SEND, "-n", "1",
                                        self.sock],
                    capture_output=True, timeout=30)
                self.assertEqual(sent.returncode == 0, allowed,
                                 sent.stdout + sent.stderr)
                self.assertEqual(self.stop_echopost(proc), 0)

    def test_root_on_a_users_dir_becomes_its_owner(self):
        # Before: root left root-owned files in the user's DIR, and the
        # user's next start exited 74 on them. Now root takes on the
        # owner's identity first: every file keeps its owner.
        self.owned_dir(0o700)
        proc = self.start_echopost(self.args())
        self.wait_socket(proc)
        self.assertTrue(send_log(self.sock, '{"by": "root"}').success)
        self.assertEqual(self.stop_echopost(proc), 0)
        self.assertIn("became_owner", self.names_of(proc))
        for root, dirs, files in os.walk(self.dir):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                self.assertEqual((st.st_uid, st.st_gid), OWNER[:2],
                                 "%s is not the owner's" % name)
        proc = self.start_echopost(self.args(), user=OWNER)
        self.assertEqual(self.finish(proc), 0)
        self.assertEqual([json.loads(p["body"])["log_data"]
                          for p in self.posts()], [{"by": "root"}])

    def test_another_users_dir_is_refused(self):
        # A user other than root on a DIR that is not theirs, even one
        # their group may write to: refused, with the command to run.
        self.owned_dir(0o770)
        proc = self.start_echopost(self.args(), user=HOSTILE)
        self.assertEqual(self.wait_exit(proc), 77)
        self.assertIn("run it as the owner", self.stderr_of(proc))
        self.assertEqual(os.listdir(self.dir), [])

    def test_group_writable_dir_is_served_with_a_warning(self):
        self.owned_dir(0o770)
        proc = self.start_echopost(self.args(), user=OWNER)
        self.wait_socket(proc)
        self.assertEqual(self.finish(proc), 0)
        self.assertIn("dir_group_writable", self.names_of(proc))

    def test_password_in_the_url_is_never_printed(self):
        # Before: http://user:pw@host was printed in the start event,
        # agent.log and --status. Now the password shows as ***.
        url = self.server.url.replace("http://", "http://someone:pa55w0rd@")
        args = ["-datanadhi", self.dir, "-health-url", url,
                "--health-interval", "100ms"]
        proc = self.start_echopost(args)
        self.wait_socket(proc)
        status = subprocess.run([ECHOPOST, "--status", "-datanadhi",
                                 self.dir, "-health-url", url],
                                capture_output=True, timeout=30)
        self.assertIn(b"someone:***@", status.stdout)
        self.assertEqual(self.stop_echopost(proc), 0)
        seen = [status.stdout, status.stderr]
        for path in (proc.out_path, proc.err_path) + tuple(
                os.path.join(s, "agent.log") for s in self.sessions()):
            with open(path, "rb") as f:
                seen.append(f.read())
        for text in seen:
            self.assertNotIn(b"pa55w0rd", text)


if __name__ == "__main__":
    unittest.main(verbosity=2)
