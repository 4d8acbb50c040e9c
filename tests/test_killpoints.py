#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Kill-point sweep: kill echopost right before its Nth call that changes a
file or a directory, for N over the whole of a scripted run, and prove that
the next start serves at once and that every acknowledged log arrives.

The kill comes from tests/killpoint.so (LD_PRELOAD): write, pwrite, fsync,
fdatasync, ftruncate, rename, link, unlink, mkdir and creating opens count,
over all threads; SIGKILL lands right before call N. Calls made by several
threads interleave differently from run to run, so N is not a stable
address: vary the seed; a failed point keeps its DIR (--keep) and prints
the call it was killed at.

Scenarios, each on small journals (ECHOPOST_TEST_JOURNAL_SIZE) so that one
run rotates, prepares spares and seals several times:
  ingest   a fresh DIR, the server down: the first creation of every file,
           40 logs of 1-2 KB (--logs) through many journals (two of them
           from spares), the mover sealing them into GDBM, then SIGTERM
           and the stop sequence
  replay   the DIR an ingest run left, the server up: reading sealed files
           and journals, saving the head, deleting what was delivered, the
           exit sequence that removes everything
  import   the same DIR with its largest sealed file made into
           echopost.spool, the spool of echopost 1: the copy, gdbm_recover,
           sealing, then the replay

After each kill, echopost is started again with the server down: its
socket must appear within the SDK's 2 s and serve a new log. Then the
server comes up: it must exit 0, every log ever acknowledged must have
reached the server, and nothing but session-* may be left in DIR.

  test_killpoints.py [--points N] [--seed S] [--scenario NAME]...
                     [--minutes M] [--keep DIR]

--points is per scenario (default 20: the sample make check runs);
--minutes stops starting new points after that long, for a CI budget;
each scenario has an even share of what the ones before it left.
Prints per scenario: points, failed starts, lost, duplicates, leftovers,
time; last, "N passed, N failed" over all points.
"""

import argparse
import json
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import grpc  # noqa: E402

from fakeserver import FakeServer  # noqa: E402
import support  # noqa: E402

KILLPOINT = os.environ.get("ECHOPOST_KILLPOINT",
                           os.path.join(HERE, "killpoint.so"))
JOURNAL_SIZE = 8192
SCENARIOS = ("ingest", "replay", "import")


class Point:
    """One run of echopost killed at call kill_at (0: not killed)."""

    def __init__(self, work, kill_at):
        self.work = work
        self.kill_at = kill_at
        self.report = os.path.join(work, "killpoint.report")
        self.out = open(os.path.join(work, "out.log"), "ab")

    def env(self, preload=True):
        env = dict(os.environ)
        env[support.JOURNAL_SIZE_ENV] = str(JOURNAL_SIZE)
        env.pop("DATANADHI_API_KEY", None)
        if preload:
            env["LD_PRELOAD"] = KILLPOINT
            env["ECHOPOST_KILL_AT"] = str(self.kill_at)
            env["ECHOPOST_KILL_REPORT"] = self.report
            # Under the sanitizers the preload comes first; that is fine.
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                                   ":verify_asan_link_order=0").lstrip(":")
        return env

    def start(self, dir, url, preload=True):
        return subprocess.Popen(
            [support.ECHOPOST, "-datanadhi", dir, "-api-key", "k",
             "-health-url", url, "--health-interval", "50ms"],
            env=self.env(preload), stdin=subprocess.DEVNULL,
            stdout=self.out, stderr=subprocess.STDOUT)

    def calls(self):
        """(calls counted, the call killed) from the preload's report."""
        try:
            with open(self.report, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0, ""
        count = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else 0
        return count, data[8:].split(b"\0")[0].decode(errors="replace")


def send(sock, log_id, size):
    """One log of about size bytes over a new channel, as the SDK sends;
    True if acknowledged. The channel keeps its connections to itself:
    gRPC's shared pool would still hold the killed run's, in backoff."""
    pb, pb_grpc = support.load_stubs()
    text = json.dumps({"id": log_id, "pad": "p" * size})
    channel = grpc.insecure_channel(
        "unix://" + sock, options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        return pb_grpc.LogAgentStub(channel).SendLog(
            pb.LogRequest(json_data=text, pipelines=["kill"]),
            timeout=2).success
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def sockets(dir, names):
    """For copytree: the names in dir that are sockets, which it cannot
    copy."""
    return [n for n in names
            if stat.S_ISSOCK(os.lstat(os.path.join(dir, n)).st_mode)]


def sealed_in(dir):
    return [n for n in os.listdir(dir) if support.SEALED_RE.fullmatch(n)]


def ingest(point, dir, url, rng_sizes, acked):
    """Fresh DIR, server down: store LOGS logs, wait for a sealing, stop."""
    proc = point.start(dir, url)
    sock = os.path.join(dir, support.SOCKET_NAME)
    if support.socket_appears(proc, sock, 2.0 * support.SLOW):
        for i, size in enumerate(rng_sizes):
            if proc.poll() is not None:
                break
            if send(sock, "%d-%d" % (point.kill_at, i), size):
                acked.add("%d-%d" % (point.kill_at, i))
        support.wait_until(lambda: proc.poll() is not None or
                           len(sealed_in(dir)) > 1, 3.0 * support.SLOW)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30 * support.SLOW)


def drain(point, dir, url):
    """Server up: the run replays and exits, unless killed."""
    return point.start(dir, url).wait(timeout=60 * support.SLOW)


class Sweep:
    def __init__(self, work, server, keep):
        self.work = work
        self.server = server
        self.keep = keep
        self.failures = []

    def delivered(self):
        ids = {}
        for request in self.server.requests(path="/log"):
            if request["status"] // 100 == 2:
                log_id = json.loads(request["body"])["log_data"]["id"]
                ids[log_id] = ids.get(log_id, 0) + 1
        return ids

    def template(self, sizes):
        """A DIR as an ingest run leaves it (no kill), and its acked ids."""
        dir = os.path.join(self.work, "template")
        point = Point(self.work, 0)
        self.server.down()
        acked = set()
        code = ingest(point, dir, self.server.url, sizes, acked)
        if code != 0 or len(acked) != len(sizes):
            raise AssertionError("the run that makes the template failed: "
                                 "exit %d, %d of %d acked"
                                 % (code, len(acked), len(sizes)))
        return dir, acked

    def prepare(self, scenario, dir, template):
        if scenario == "ingest":
            return
        shutil.copytree(template, dir)
        if scenario == "import":
            sealed = max(sealed_in(dir), key=lambda n: os.path.getsize(
                os.path.join(dir, n)))
            path = os.path.join(dir, sealed)
            first, end = map(int, support.SEALED_RE.fullmatch(
                sealed).groups())
            support.echopost1_spool(support.records_of_sealed(path), first,
                                    end, os.path.join(dir, support.SPOOL))
            os.unlink(path)

    def count(self, scenario, template, acked, sizes):
        """Calls in a run of the scenario that is not killed."""
        point = Point(self.work, 0)
        dir = os.path.join(self.work, "count-" + scenario)
        self.prepare(scenario, dir, template)
        self.server.reset()
        if scenario == "ingest":
            self.server.down()
            ingest(point, dir, self.server.url, sizes, set())
        else:
            self.server.up()
            drain(point, dir, self.server.url)
        shutil.rmtree(dir)
        return point.calls()[0]

    def one(self, scenario, kill_at, template, template_acked, sizes):
        """Kill at kill_at, start again, check. Returns a result dict."""
        work = tempfile.mkdtemp(prefix="point-", dir=self.work)
        dir = os.path.join(work, "dn")
        point = Point(work, kill_at)
        self.prepare(scenario, dir, template)
        self.server.reset()
        acked = set(template_acked) if scenario != "ingest" else set()
        if scenario == "ingest":
            self.server.down()
            code = ingest(point, dir, self.server.url, sizes, acked)
        else:
            self.server.up()
            code = drain(point, dir, self.server.url)
        killed = point.calls()[1]
        result = {"scenario": scenario, "kill_at": kill_at,
                  "killed": killed, "exit": code, "failed_start": False,
                  "lost": 0, "duplicates": 0, "leftovers": []}
        self.server.down()
        again = Point(work, 0)
        # As the SDK does: the killed run's socket goes first.
        sock = os.path.join(dir, support.SOCKET_NAME)
        if os.path.lexists(sock):
            os.unlink(sock)
        proc = again.start(dir, self.server.url, preload=False)
        if not support.socket_appears(proc, sock, support.SOCKET_WAIT) or \
                not send(sock, "after-%d" % kill_at, 100):
            result["failed_start"] = True
        else:
            acked.add("after-%d" % kill_at)
        self.server.up()
        try:
            final = proc.wait(timeout=60 * support.SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            final = "timeout"
        delivered = self.delivered()
        result["final_exit"] = final
        result["lost"] = len(acked - set(delivered))
        result["duplicates"] = sum(n - 1 for n in delivered.values())
        result["leftovers"] = [n for n in os.listdir(dir)
                               if not n.startswith("session-")]
        result["ok"] = (code in (0, -signal.SIGKILL) and final == 0 and
                        not result["failed_start"] and
                        result["lost"] == 0 and not result["leftovers"])
        if not result["ok"]:
            self.failures.append(result)
            if self.keep:
                shutil.copytree(work, os.path.join(
                    self.keep, "%s-%d" % (scenario, kill_at)),
                    ignore=sockets)
        shutil.rmtree(work, ignore_errors=True)
        return result


def spread(rng, total, points):
    """points kill numbers over 1..total+2, spread out, jittered: the
    first calls, the last ones, and the rest evenly."""
    if points >= total + 2:
        return list(range(1, total + 3))
    step = (total + 2) / points
    chosen = {1 + int(i * step + rng.random() * step) for i in range(points)}
    chosen.update({1, total})
    return sorted(chosen)


def sweep_arguments(doc, points, choice, choices, logs, logs_help):
    """The command line every sweep takes (this one, test_faults.py's,
    test_damage.py's): --points per choice, --seed, --CHOICE (repeatable,
    from choices), --minutes, --keep, --logs. Returns the parser, for a
    sweep to add its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--points", type=int, default=points)
    parser.add_argument("--seed", type=int,
                        default=int(time.time()) % 100000)
    parser.add_argument("--" + choice, action="append", choices=choices)
    parser.add_argument("--minutes", type=float, default=0)
    parser.add_argument("--keep", help="copy the DIR of a failed point here")
    parser.add_argument("--logs", type=int, default=logs, help=logs_help)
    return parser


def preload_built(path):
    """Is the preload library at path built? If not, say so as a sweep
    result line."""
    if os.path.exists(path):
        return True
    print("%s not built" % path)
    print("0 passed, 1 failed")
    return False


def main():
    args = sweep_arguments(__doc__, 20, "scenario", SCENARIOS, 40,
                           "logs an ingest run stores").parse_args()
    if not preload_built(KILLPOINT):
        return 1
    support.load_stubs()
    rng = random.Random(args.seed)
    sizes = [rng.randrange(1000, 2000) for _ in range(args.logs)]
    work = tempfile.mkdtemp(prefix="ep-kill-", dir="/tmp")
    server = FakeServer().start(state="down")
    sweep = Sweep(work, server, args.keep)
    deadline = (time.monotonic() + args.minutes * 60 if args.minutes
                else None)
    passed = failed = 0
    print("seed %d, %d points per scenario, %d logs of 1-2 KB"
          % (args.seed, args.points, args.logs))
    try:
        template, template_acked = sweep.template(sizes)
        scenarios = args.scenario or SCENARIOS
        for index, scenario in enumerate(scenarios):
            if scenario == "import" and not sealed_in(template):
                print("import  skipped: the ingest run sealed nothing")
                continue
            began = time.monotonic()
            # An even share of what is left of the budget, so that a slow
            # scenario does not starve the ones after it.
            share = (None if deadline is None else
                     began + (deadline - began) / (len(scenarios) - index))
            total = sweep.count(scenario, template, template_acked, sizes)
            counts = {"points": 0, "failed starts": 0, "lost": 0,
                      "duplicates": 0, "leftovers": 0, "killed": 0}
            for kill_at in spread(rng, total, args.points):
                if share is not None and time.monotonic() > share:
                    break
                r = sweep.one(scenario, kill_at, template, template_acked,
                              sizes)
                counts["points"] += 1
                counts["killed"] += r["killed"] != ""
                counts["failed starts"] += r["failed_start"]
                counts["lost"] += r["lost"]
                counts["duplicates"] += r["duplicates"]
                counts["leftovers"] += bool(r["leftovers"])
                passed += r["ok"]
                failed += not r["ok"]
                if not r["ok"]:
                    print("FAIL %s at call %d (%s): exit %s, then %s; "
                          "failed start %s, lost %d, left %s"
                          % (scenario, kill_at, r["killed"], r["exit"],
                             r["final_exit"], r["failed_start"], r["lost"],
                             r["leftovers"]))
            if total > 0 and counts["points"] == 0:
                print("FAIL %s: no kill point was tried in its share of "
                      "the time" % scenario)
                failed += 1
            print("%-7s calls %d; points %d (killed %d), failed starts %d, "
                  "acknowledged lost %d, duplicates %d, DIRs with "
                  "leftovers %d; %.0f s"
                  % (scenario, total, counts["points"], counts["killed"],
                     counts["failed starts"], counts["lost"],
                     counts["duplicates"], counts["leftovers"],
                     time.monotonic() - began))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
