#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Local users: no symbolic link, socket or directory trick lets another
user reach echopost's files, logs or key, nor echopost another user's.

The tests act as the hostile user: a second uid that shares a group with
echopost's user, or as DIR's owner against root running echopost on it
(setpriv(1), so the suite must run as root, as CI does; otherwise every
test is skipped and says so); root itself plants what only a former
owner could have left. Each attack is tried on a DIR of its own; the
test shows that no file outside DIR changed and that the attempt was
refused or harmless.
"""

import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import time
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from support import (  # noqa: E402
    ANCHOR, ECHOPOST, ECHOPOST_SEND, EXIT_WAIT, JOURNAL_RE, PID_FILE,
    POSITION, REFUSED, SLOW, SOCKET_NAME, SOCKET_WAIT, SPOOL, STRACE,
    EchoPostTest, traced_calls,
    as_user, c_define, load_stubs, log_text, read_events, send_log,
    sockets_under, wait_until)

OWNER = (4242, 4242, None)          # echopost's user, and group
HOSTILE = (4343, 4343, [4242])      # another user, in echopost's group

# sysexits(3): what a refused DIR, and a spool file that cannot be read,
# exit with.
EX_CANTCREAT = 73
EX_IOERR = 74
# How long an admin command may take before the test calls it hung.
ADMIN_WAIT = 10.0 * SLOW

# The LD_PRELOAD library that holds echopost at a chosen call (see its
# header); make check builds it.
PAUSEPOINT = os.environ.get("ECHOPOST_PAUSEPOINT",
                            os.path.join(HERE, "pausepoint.so"))

# A quoted string in a traced call's arguments (see support.traced_calls).
STRING_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
# The calls whose string arguments are paths (bind and connect: the
# sun_path of a UNIX socket's address); for the first few only the first
# string is one (the others are argv, a link's text, an attribute's value).
PATH_CALLS = frozenset((
    "open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat",
    "statx", "access", "faccessat", "faccessat2", "mkdir", "mkdirat",
    "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat",
    "fchmodat2", "chown", "lchown", "fchownat", "utime", "utimes",
    "utimensat", "futimesat", "truncate", "chdir", "chroot", "mknod",
    "mknodat", "statfs", "setxattr", "lsetxattr", "listxattr",
    "llistxattr", "removexattr", "lremovexattr", "inotify_add_watch",
    "name_to_handle_at", "bind", "connect"))
FIRST_PATH_CALLS = frozenset(("execve", "execveat", "readlink",
                              "readlinkat", "getxattr", "lgetxattr"))


def path_args(name, args):
    """The paths a traced call was given, normalized ("DIR/" and "DIR/."
    are DIR)."""
    if name in FIRST_PATH_CALLS:
        paths = STRING_RE.findall(args)[:1]
    else:
        paths = STRING_RE.findall(args) if name in PATH_CALLS else []
    return [os.path.normpath(p) for p in paths if p]


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

    def plant(self, name, target, user=OWNER):
        """user (DIR's owner, the only one who may write there) plants a
        link in DIR."""
        subprocess.run(as_user(user) + ["ln", "-s", target,
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
        # Root runs echopost on a user's DIR; the user has made
        # echopost.pid a link to a file of root's. Before: the file was
        # truncated to hold the PID. Now: the link is refused.
        self.owned_dir(0o700)
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
        self.owned_dir(0o700)
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
        # Session directories have names anyone can guess: links from the
        # next seconds' names to a directory another user may write to.
        # Before: the logs went there. Now: echopost refuses to log into it.
        self.owned_dir(0o700)
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
        # their group may read: refused, with the command to run.
        self.owned_dir(0o750)
        proc = self.start_echopost(self.args(), user=HOSTILE)
        self.assertEqual(self.wait_exit(proc), 77)
        self.assertIn("run it as the owner", self.stderr_of(proc))
        self.assertEqual(os.listdir(self.dir), [])

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

    # -- DIR and its parents: no one else may write there -------------------

    def other_dir(self, name, mode=0o700, owner=OWNER, parent=None):
        """The directory name under the temp dir (or under parent), owned
        by owner, with mode: a DIR, or a parent, of a test's own."""
        path = os.path.join(self.tmp if parent is None else parent, name)
        os.mkdir(path)
        os.chown(path, owner[0], owner[1])
        os.chmod(path, mode)
        return path

    def assert_refused_as_writable(self, proc, dir):
        """echopost refused dir at start for others' write access: exit
        73, said so on stderr, and left no socket and no pid file."""
        wait_until(lambda: proc.poll() is not None or sockets_under(dir),
                   EXIT_WAIT)
        if proc.poll() is None:
            self.stop_echopost(proc)
            self.fail("%s was served: %s" % (dir, self.stderr_of(proc)))
        err = self.stderr_of(proc)
        self.assertEqual(proc.returncode, EX_CANTCREAT, err)
        self.assertIn("refusing", err)
        self.assertIn("writable", err)
        self.assertEqual(sockets_under(dir), [], "a socket was created")
        self.assertFalse(os.path.lexists(os.path.join(dir, PID_FILE)),
                         "a pid file was created")

    def test_dir_others_can_write_is_refused(self):
        # Anyone who may write in DIR may rename, replace or plant files
        # between echopost's checks and its uses of them. Before: a
        # group-writable DIR (0770, 2770, even 1777) was served with a
        # warning (dir_group_writable), and only 0777 was refused. Now: a
        # DIR with group or other write is refused at start, exit 73; the
        # uids here have no /etc/group entries, so group 4242 is no
        # private group of the owner's.
        for mode, user in ((0o770, OWNER), (0o777, OWNER), (0o1777, OWNER),
                           (0o2770, OWNER), (0o770, None)):
            who = "root" if user is None else "owner"
            with self.subTest(mode=oct(mode), run_by=who):
                dir = self.other_dir("dn-%o-%s" % (mode, who), mode)
                args = ["-datanadhi", dir, "-api-key", self.API_KEY,
                        "-health-url", self.server.url]
                proc = self.start_echopost(args, user=user)
                self.assert_refused_as_writable(proc, dir)

    def test_dir_under_a_parent_others_can_write_is_refused(self):
        # DIR private, but in a parent anyone may write to (0777, no sticky
        # bit): anyone may rename DIR away and put their own in its place.
        # Before: served. Now: refused at start, exit 73. Under a sticky
        # root-owned parent (as /tmp) no one else may rename DIR: served.
        shared = self.other_dir("shared", 0o777, owner=(0, 0, None))
        dir = self.other_dir("dn", parent=shared)
        args = ["-datanadhi", dir, "-api-key", self.API_KEY, "-health-url",
                self.server.url]
        with self.subTest(parent="0777"):
            proc = self.start_echopost(args, user=OWNER)
            self.assert_refused_as_writable(proc, dir)
        sticky = self.other_dir("sticky", 0o1777, owner=(0, 0, None))
        dir = self.other_dir("dn", parent=sticky)
        args[1] = dir
        with self.subTest(parent="1777"):
            proc = self.start_echopost(args, user=OWNER)
            self.wait_socket(proc, os.path.join(dir, SOCKET_NAME))
            self.assertEqual(self.stop_echopost(proc), 0,
                             self.stderr_of(proc))

    def test_root_creates_a_missing_dir_as_the_parents_owner(self):
        # Root runs echopost on a DIR that does not exist yet, in a
        # directory of a user's. Before: root made DIR, root-owned, and
        # kept root for the whole run: root-owned files in a place the user
        # may rename and replace, and a DIR the user's own runs cannot use.
        # Now: DIR is made as the parent's owner, whose identity root takes
        # on first; every file in it is the user's.
        parent = self.other_dir("home", 0o755)
        dir = os.path.join(parent, ".datanadhi")
        sock = os.path.join(dir, SOCKET_NAME)
        proc = self.start_echopost(["-datanadhi", dir, "-api-key",
                                    self.API_KEY, "-health-url",
                                    self.server.url, "--health-interval",
                                    "100ms"])
        self.wait_socket(proc, sock)
        self.assertTrue(send_log(sock, '{"by": "root"}').success)
        self.assertEqual(self.finish(proc), 0, self.stderr_of(proc))
        st = os.lstat(dir)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual((st.st_uid, st.st_gid), OWNER[:2],
                         "DIR is not the parent's owner's")
        for root, dirs, files in os.walk(dir):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                self.assertEqual((st.st_uid, st.st_gid), OWNER[:2],
                                 "%s is not the owner's" % name)
        logged = [e["event"] for s in self.sessions(dir)
                  for e in read_events(os.path.join(s, "agent.log"))]
        self.assertIn("became_owner", logged)
        self.assertEqual([json.loads(p["body"])["log_data"]
                          for p in self.posts()], [{"by": "root"}])

    # -- DIR swapped for a link while echopost works in it -----------------

    def test_dir_swapped_for_a_link_at_bind_is_not_followed(self):
        # Root runs echopost on a user's DIR; the user, owner of DIR's
        # parent, renames DIR away while echopost is about to bind its
        # socket (held there by tests/pausepoint.so) and puts a link to a
        # directory of root's in its place. Before: the socket was bound,
        # chmod-ed (--socket-mode 0666) and linked by DIR's path, through
        # the link: into root's directory (by root itself when root had
        # made DIR), or into a sticky one of root's once root had become
        # the owner. Now: every name in DIR is used through a descriptor on
        # DIR: nothing reaches the linked directory, and the socket, if
        # served, is in the real DIR, renamed away.
        if not os.path.exists(PAUSEPOINT):
            raise RuntimeError("%s not built (make check builds it)"
                               % PAUSEPOINT)
        for case, exists, victim_mode in (("dir made by root", False, 0o755),
                                          ("dir of the owner's", True,
                                           0o1777)):
            with self.subTest(case=case):
                self.swap_at_bind(case.replace(" ", "-").replace("'", ""),
                                  exists, victim_mode)

    def swap_at_bind(self, name, exists, victim_mode):
        """Under the temp dir's name: home (the owner's) holding DIR (made
        beforehand if exists), and rootdir (root's, victim_mode) holding
        root's file victim. Root starts echopost on DIR held at bind; the
        owner swaps DIR for a link to rootdir; then bind goes on."""
        top = self.other_dir(name, 0o755, owner=(0, 0, None))
        parent = self.other_dir("home", 0o755, parent=top)
        dir = os.path.join(parent, "dn")
        real = os.path.join(parent, "dn.real")
        if exists:
            self.other_dir("dn", parent=parent)
        victims = self.other_dir("rootdir", victim_mode, owner=(0, 0, None),
                                 parent=top)
        victim = os.path.join(victims, "victim")
        with open(victim, "wb") as f:
            f.write(b"precious\n")
        os.chmod(victim, 0o644)
        before = os.lstat(victim)
        pause = self.other_dir("pause", 0o777, owner=(0, 0, None), parent=top)
        ready = os.path.join(pause, "ready")
        go = os.path.join(pause, "go")
        env = dict(os.environ, LD_PRELOAD=PAUSEPOINT, ECHOPOST_PAUSE_ON="bind",
                   ECHOPOST_PAUSE_READY=ready, ECHOPOST_PAUSE_GO=go)
        # Under the sanitizers the preload comes first; that is fine.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":verify_asan_link_order=0").lstrip(":")
        env.pop("DATANADHI_API_KEY", None)
        self.outputs += 1
        out = os.path.join(self.tmp, "out-%d.txt" % self.outputs)
        err = os.path.join(self.tmp, "err-%d.txt" % self.outputs)
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(
                [ECHOPOST, "-datanadhi", dir, "-api-key", self.API_KEY,
                 "-health-url", self.server.url, "--health-interval", "100ms",
                 "--socket-mode", "0666"],
                env=env, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
        proc.out_path, proc.err_path = out, err
        self.procs.append(proc)
        try:
            paused = wait_until(lambda: os.path.exists(ready) or
                                proc.poll() is not None, EXIT_WAIT)
            self.assertTrue(paused and os.path.exists(ready),
                            "echopost never reached bind (exit %s): %s"
                            % (proc.poll(), self.stderr_of(proc)))
            # The owner of the parent swaps DIR for a link.
            subprocess.run(as_user(OWNER) + ["mv", "-T", dir, real],
                           check=True, timeout=10)
            subprocess.run(as_user(OWNER) + ["ln", "-s", victims, dir],
                           check=True, timeout=10)
        finally:
            with open(go, "w"):
                pass
        seen, sockets = [], set()

        def look():
            seen.append(sorted(os.listdir(victims)))
            sockets.update(sockets_under(top))
            return (sockets_under(real) or proc.poll() is not None or
                    seen[-1] != ["victim"])
        wait_until(look, 10 * SLOW)
        # A little longer: the chmod and the link come after the bind.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            look()
            time.sleep(0.02)
        if proc.poll() is None:
            self.stop_echopost(proc)
        look()
        strays = sorted({n for names in seen for n in names} - {"victim"})
        self.assertEqual(strays, [], "echopost made %s in root's directory "
                         "%s through the link; stderr: %s"
                         % (strays, victims, self.stderr_of(proc)))
        after = os.lstat(victim)
        self.assertEqual((after.st_mode, after.st_uid, after.st_gid,
                          after.st_ino, after.st_mtime_ns),
                         (before.st_mode, before.st_uid, before.st_gid,
                          before.st_ino, before.st_mtime_ns),
                         "the victim file was changed or chmod-ed")
        self.assertEqual(stat.S_IMODE(os.lstat(victims).st_mode), victim_mode)
        self.assert_untouched(victim)
        for sock in sorted(sockets):
            self.assertTrue(sock.startswith(real + os.sep),
                            "a socket outside the real DIR: %s" % sock)

    # -- files in DIR: checked when opened ----------------------------------

    def stored_spool(self, dir, count=3):
        """As OWNER, with the server down: count logs stored in dir, and
        echopost stopped; returns their texts."""
        sock = os.path.join(dir, SOCKET_NAME)
        proc = self.start_echopost(["-datanadhi", dir, "-api-key",
                                    self.API_KEY, "-health-url",
                                    self.server.url, "--health-interval",
                                    "100ms"], user=OWNER)
        self.wait_socket(proc, sock)
        texts = [log_text(0, i, "stored") for i in range(count)]
        for text in texts:
            self.assertTrue(send_log(sock, text).success)
        self.assertEqual(self.stop_echopost(proc), 0, self.stderr_of(proc))
        return texts

    def run_as_owner(self, dir, extra=()):
        return self.start_echopost(["-datanadhi", dir, "-api-key",
                                    self.API_KEY, "-health-url",
                                    self.server.url, "--health-interval",
                                    "100ms"] + list(extra), user=OWNER)

    def admin_as(self, user, dir, *args, timeout=ADMIN_WAIT):
        """An admin command on dir, as user (None: root); (exit code,
        stdout, stderr) as bytes. One that does not finish in time is
        killed, and the test fails."""
        command = [ECHOPOST] + list(args) + ["-datanadhi", dir,
                                             "-health-url", self.server.url]
        if user is not None:
            command = as_user(user) + command
        try:
            r = subprocess.run(command, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("%s did not finish within %gs"
                      % (" ".join(args), timeout))
        return r.returncode, r.stdout, r.stderr

    def test_planted_position_file_is_not_trusted(self):
        # Another user's file under the position's name (in a DIR root or
        # a former owner could write to), 0666, saying delivery has come
        # far past the spool's end. Before: echopost took that head, kept
        # the file as its own, and delivered none of the stored logs. Now:
        # a file in DIR that is not a regular file of the run's user's,
        # single-linked, without group or other permissions, is not used:
        # every stored log is delivered, and the planted file is left as
        # it was, under its name or renamed aside.
        dir = self.other_dir("dn")
        texts = self.stored_spool(dir)
        path = os.path.join(dir, POSITION)
        if os.path.lexists(path):
            os.unlink(path)
        slot = b"EPP1" + bytes(4) + struct.pack(">QQ", 1, 1 << 40)
        slot += struct.pack(">I", zlib.crc32(slot)) + bytes(4)
        planted = slot + slot
        with open(path, "wb") as f:
            f.write(planted)
        os.chown(path, HOSTILE[0], HOSTILE[1])
        os.chmod(path, 0o666)
        inode = os.lstat(path).st_ino
        held = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, held)
        self.server.up()
        proc = self.run_as_owner(dir)
        self.wait_exit(proc)
        self.assertEqual(sorted(self.delivered_payloads()),
                         sorted(self.canonical(texts)),
                         "stored logs were not delivered; stderr: %s"
                         % self.stderr_of(proc))
        self.assertEqual(os.pread(held, 1 << 16, 0), planted,
                         "the planted position file was written to")
        kept = [n for n in os.listdir(dir)
                if os.lstat(os.path.join(dir, n)).st_ino == inode]
        self.assertEqual(len(kept), 1, "the planted file is gone from DIR "
                         "(neither left nor renamed aside)")

    def test_refused_file_linked_out_of_dir_is_not_written_through(self):
        # echopost.refused made a hard link to a file of the user's outside
        # DIR (root could make it; a link to a file one may read needs no
        # write access to it). Before: when the server refused every
        # delivery, echopost truncated and rewrote the linked file. Now: a
        # file in DIR with more than one link is not written to.
        dir = self.other_dir("dn")
        self.stored_spool(dir)
        outside = os.path.join(self.tmp, "outside")
        with open(outside, "wb") as f:
            f.write(b"precious\n")
        os.chown(outside, OWNER[0], OWNER[1])
        os.chmod(outside, 0o600)
        os.link(outside, os.path.join(dir, REFUSED))
        self.server.set(state="up", log_status=404)
        proc = self.run_as_owner(dir)
        refused = wait_until(lambda: "deliveries_refused" in
                             self.names_of(proc) or proc.poll() is not None,
                             EXIT_WAIT)
        if proc.poll() is None:
            self.stop_echopost(proc)
        self.assertIn("deliveries_refused", self.names_of(proc),
                      "the server's 404s were not seen as refusal (%s); "
                      "stderr: %s" % (refused, self.stderr_of(proc)))
        self.assert_untouched(outside)

    def test_fifo_in_dir_does_not_hang_a_start_or_an_admin_command(self):
        # A FIFO under a spool file's name: opening it for reading waits
        # for a writer that never comes. Before: --status and --dump hung
        # for ever, and a start with one under a journal's name never
        # served its socket (the SDK gives up after 2 s). Now: a file in
        # DIR that is not a regular one is not opened for reading; --status
        # says which (exit 74), --dump too, and a start serves.
        journal = SPOOL + c_define("JOURNAL_SUFFIX") + "7"
        self.assertTrue(JOURNAL_RE.fullmatch(journal))
        for name in (journal, POSITION):
            with self.subTest(fifo=name):
                dir = self.other_dir("dn-" + name)
                self.stored_spool(dir)
                path = os.path.join(dir, name)
                if os.path.lexists(path):
                    os.unlink(path)
                os.mkfifo(path, 0o600)
                os.chown(path, OWNER[0], OWNER[1])
                code, out, err = self.admin_as(OWNER, dir, "--status")
                self.assertEqual(code, EX_IOERR, err)
                self.assertIn(name.encode(), err)
                code, out, err = self.admin_as(OWNER, dir, "--dump")
                self.assertIn(name.encode(), err)
                proc = self.run_as_owner(dir)
                self.wait_socket(proc, os.path.join(dir, SOCKET_NAME))
                self.assertTrue(send_log(os.path.join(dir, SOCKET_NAME),
                                         '{"after": "fifo"}').success)
                self.stop_echopost(proc)

    # -- admin commands -----------------------------------------------------

    def test_admin_as_root_reads_only_what_the_owner_may(self):
        # Root runs --status and --dump on a user's DIR holding a spool
        # file only root may read (0600, root's). Before: root read and
        # parsed it, as it would any file a user put there for root to
        # open. Now: admin commands take on DIR's owner before reading, so
        # the file is reported unreadable, by name.
        dir = self.other_dir("dn")
        self.stored_spool(dir)
        journals = [n for n in os.listdir(dir) if JOURNAL_RE.fullmatch(n)]
        self.assertTrue(journals, "no journal stored")
        for name in journals:
            os.chown(os.path.join(dir, name), 0, 0)
            os.chmod(os.path.join(dir, name), 0o600)
        code, out, err = self.admin_as(None, dir, "--status", "--json")
        for name in journals:
            # Named in spool.damaged, or on stderr; a status that read it
            # names no spool file at all.
            self.assertIn(name.encode(), out + err, "%s, readable only by "
                          "root, was read: %s" % (name, out.decode()))
        code, out, err = self.admin_as(None, dir, "--dump")
        for name in journals:
            self.assertIn(name.encode(), err)
        self.assertNotIn(b'"stored"', out, "--dump printed records only "
                         "root may read")

    def test_names_with_control_characters_are_printed_escaped(self):
        # A session directory named with terminal escapes (set the window
        # title, clear the screen): names come from DIR, not from
        # echopost. Before: --status printed the name as it is, and the
        # admin's terminal obeyed. Now: names are printed escaped, vis(3)
        # style: no escape or bell byte reaches the output.
        for suffix in ("\x1b]0;pwned\x07", "\x1b[2J"):
            with self.subTest(name=repr(suffix)):
                dir = self.other_dir("dn-%d" % len(suffix))
                session = os.path.join(
                    dir, "session-2026-01-01T00-00-00Z" + suffix)
                os.mkdir(session, 0o700)
                os.chown(session, OWNER[0], OWNER[1])
                for args in (("--status",), ("--status", "--json"),
                             ("--dump",)):
                    code, out, err = self.admin_as(OWNER, dir, *args)
                    for byte in (b"\x1b", b"\x07"):
                        self.assertNotIn(byte, out + err, "%s printed %r"
                                         % (" ".join(args), out + err))

    def test_huge_refused_file_is_not_printed_whole(self):
        # echopost.refused of 64 MiB, where a run writes some 100 bytes.
        # Before: --status read it whole and printed its url, all 64 MiB
        # of it, in some 100 s. Now: --status finishes, and says little.
        dir = self.other_dir("dn")
        path = os.path.join(dir, REFUSED)
        with open(path, "wb") as f:
            f.write(b'{"code": 404, "since": "2026-01-01T00:00:00Z", '
                    b'"url": "http://x/')
            f.write(b"A" * (64 << 20))
            f.write(b'"}\n')
        os.chown(path, OWNER[0], OWNER[1])
        os.chmod(path, 0o600)
        for args in (("--status",), ("--status", "--json")):
            code, out, err = self.admin_as(OWNER, dir, *args,
                                           timeout=30 * SLOW)
            self.assertLess(len(out), 1 << 20, "%s printed %d bytes"
                            % (" ".join(args), len(out)))

    # -- by descriptor: no path under DIR once DIR is open ------------------

    def traced(self, args, cwd=None):
        """Start echopost args under strace -f (file, descriptor and
        network calls); returns (proc, trace file)."""
        trace = os.path.join(self.tmp, "trace-%d" % len(self.procs))
        env = dict(os.environ)
        env.pop("DATANADHI_API_KEY", None)
        # LeakSanitizer stops a process traced by ptrace(2) with an error.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":detect_leaks=0").lstrip(":")
        self.outputs += 1
        out = os.path.join(self.tmp, "traced-%d.out" % self.outputs)
        with open(out, "wb") as o:
            proc = subprocess.Popen(
                [STRACE, "-f", "-qq", "-o", trace, "-e",
                 "trace=%file,%desc,%network", ECHOPOST] + list(args),
                env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=o,
                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        proc.out_path = proc.err_path = out
        return proc, trace

    def assert_by_descriptor(self, trace, spellings):
        """In the trace, after the first open of DIR itself (by one of
        its spellings), no call names a path under DIR."""
        calls = traced_calls(trace)
        opened = next((i for i, (name, args, result, _) in enumerate(calls)
                       if name in ("open", "openat", "openat2") and
                       not result.startswith("-") and
                       any(p in spellings for p in path_args(name, args))),
                      None)
        self.assertIsNotNone(opened, "DIR (%s) was never opened" %
                             spellings[0])
        prefixes = tuple(s + "/" for s in spellings)
        by_path = ["%s(%s" % (name, args) for name, args, _, _ in
                   calls[opened + 1:]
                   if any(p.startswith(prefixes)
                          for p in path_args(name, args))]
        if by_path:
            self.fail("%d calls after DIR was opened name paths under it; "
                      "the first:\n%s" % (len(by_path),
                                          "\n".join(by_path[:10])))

    def test_files_in_dir_are_reached_only_through_dir(self):
        # Anything done by DIR's path after DIR is checked is done on
        # whatever DIR's path names by then: a swap of DIR in between (see
        # the bind test) redirects it. Before: the socket (unlink, bind,
        # chmod, link), the pid file's removal, the status's reads and the
        # replay's clean-up all went by DIR/name. Now: DIR is opened once,
        # and everything in it is reached through that descriptor (openat
        # and the like, bind after fchdir), and the socket gets its mode
        # from the umask at bind, not from a chmod. Root runs each on the
        # owner's DIR; --dump and --replay-only spell DIR relative to their
        # working directory, so its spellings are its path and its name.
        self.need_strace()
        dir = self.other_dir("dn")
        spellings = (dir, os.path.relpath(dir, self.tmp))
        args = ["-datanadhi", dir, "-api-key", self.API_KEY, "-health-url",
                self.server.url, "--health-interval", "100ms"]
        with self.subTest(run="serve, one log, SIGTERM"):
            proc, trace = self.traced(args + ["--socket-mode", "0660"])
            sock = os.path.join(dir, SOCKET_NAME)
            self.assertTrue(wait_until(lambda: os.path.exists(sock) or
                                       proc.poll() is not None,
                                       10 * SOCKET_WAIT) and
                            proc.poll() is None,
                            "no socket under strace: %s"
                            % self.stderr_of(proc))
            self.assertEqual(stat.S_IMODE(os.lstat(sock).st_mode), 0o660)
            self.assertTrue(send_log(sock, '{"traced": 1}').success)
            with open(os.path.join(dir, PID_FILE)) as f:
                os.kill(int(f.read().split()[0]), signal.SIGTERM)
            self.assertEqual(self.wait_exit(proc), 0, self.stderr_of(proc))
            self.assert_by_descriptor(trace, spellings)
            chmods = ["%s(%s" % (name, a) for name, a, _, _ in
                      traced_calls(trace)
                      if name in ("chmod", "fchmodat", "fchmodat2") and
                      any(os.path.basename(p) in (SOCKET_NAME, ANCHOR)
                          for p in path_args(name, a))]
            self.assertEqual(chmods, [], "the socket's mode was set by "
                             "name, after it was bound")
        relative = ["-datanadhi", spellings[1]] + args[2:]
        for what, extra, run_args in (
                ("--status", ["--status"], args[:2] + args[4:6]),
                ("--dump", ["--dump"], relative[:2]),
                ("--replay-only", ["--replay-only"], relative)):
            with self.subTest(run=what):
                if what == "--replay-only":
                    self.server.up()
                proc, trace = self.traced(run_args + extra, cwd=self.tmp)
                self.wait_exit(proc, 60 * SLOW)
                self.assert_by_descriptor(trace, spellings)

if __name__ == "__main__":
    unittest.main(verbosity=2)
