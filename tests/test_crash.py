#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Crash test: kill echopost with SIGKILL at random moments and prove that
every log it acknowledged reaches the server at least once.

Several SDK-like clients (a new gRPC channel per log) send logs of 10 to
2000 bytes without a pause, into journals of 64 KiB, so that every cycle
rotates journals and seals them into GDBM. Each cycle starts echopost on the same DIR, lets it run for a random
moment in one of three phases, and kills it:
  ingest   the server is down: logs are stored (and group commits are cut)
  replay   the server is up: the spool is being replayed while logs arrive
  exit     the clients pause and the server is up: echopost drains and
           exits, and the kill may land in the exit sequence
After the last cycle the server comes up and a final run must drain the
spool and exit 0. Every acknowledged log must have reached the server.

  test_crash.py [--cycles N] [--seed S]     (default 50 cycles)

Prints its figures: cycles, acknowledged, delivered, duplicates, lost.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import grpc  # noqa: E402

from fakeserver import FakeServer  # noqa: E402
import support  # noqa: E402


class Senders:
    """Client threads that send logs {"id": ...} and keep what was acked."""

    def __init__(self, socket_path, seed, threads=4):
        self.socket_path = socket_path
        self.seed = seed
        self.acked = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.sent = 0
        self.threads = [threading.Thread(target=self.run, args=(n,),
                                         daemon=True)
                        for n in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, n):
        rng = random.Random(self.seed * 100 + n)
        i = 0
        while not self.stop.is_set():
            if self.paused.is_set() or not os.path.exists(self.socket_path):
                time.sleep(0.01)
                continue
            log_id = "%d-%d" % (n, i)
            i += 1
            try:
                text = json.dumps({"id": log_id,
                                   "pad": "p" * rng.randrange(10, 2000)})
                ok = support.send_log(self.socket_path, text, ["crash"], "",
                                      timeout=2).success
            except grpc.RpcError:
                ok = False
            with self.lock:
                self.sent += 1
                if ok:
                    self.acked.add(log_id)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def start_agent(echopost, state_dir, url, out):
    env = dict(os.environ)
    env[support.JOURNAL_SIZE_ENV] = "65536"
    return subprocess.Popen(
        [echopost, "-datanadhi", state_dir, "-health-url", url,
         "--health-interval", "50ms"], env=env,
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def wait_listening(proc, socket_path, limit=2.0 * support.SLOW):
    """True once the socket is there; False if the process exited first."""
    if support.socket_appears(proc, socket_path, limit) or \
            proc.poll() is not None:
        return os.path.exists(socket_path)
    raise AssertionError("socket did not appear within %.1f s" % limit)


def crash_cycles(cycles, seed):
    print("seed %d: test_crash.py --seed %d runs the same cycles again"
          % (seed, seed), flush=True)
    rng = random.Random(seed)
    echopost = support.ECHOPOST
    work = tempfile.mkdtemp(prefix="ep-crash-", dir="/tmp")
    state_dir = os.path.join(work, "d")
    socket_path = os.path.join(state_dir, support.SOCKET_NAME)
    events = open(os.path.join(work, "events.log"), "w")
    server = FakeServer().start(state="down")
    senders = Senders(socket_path, seed)
    senders.start()
    phases = {"ingest": 0, "replay": 0, "exit": 0}
    try:
        for cycle in range(cycles):
            phase = rng.choices(["ingest", "replay", "exit"],
                                weights=[6, 3, 2])[0]
            phases[phase] += 1
            if phase == "ingest":
                server.down()
            else:
                server.up()
            if phase == "exit":
                senders.paused.set()
            agent = start_agent(echopost, state_dir, server.url, events)
            if wait_listening(agent, socket_path):
                time.sleep(rng.uniform(0.01, 0.35))
            agent.send_signal(signal.SIGKILL)
            code = agent.wait(timeout=10)
            if code not in (-signal.SIGKILL, 0):
                raise AssertionError("cycle %d: echopost exited %d before "
                                     "the kill" % (cycle, code))
            senders.paused.clear()
        senders.finish()
        server.up()
        agent = start_agent(echopost, state_dir, server.url, events)
        code = agent.wait(timeout=120)
        if code != 0:
            raise AssertionError("final run exited %d" % code)
        delivered = {}
        for request in server.requests(path="/log"):
            if request["status"] // 100 == 2:
                log_id = json.loads(request["body"])["log_data"]["id"]
                delivered[log_id] = delivered.get(log_id, 0) + 1
        lost = senders.acked - set(delivered)
        duplicates = sum(n - 1 for n in delivered.values())
        leftovers = [name for name in os.listdir(state_dir)
                     if not name.startswith("session-")]
        print("cycles %d (ingest %d, replay %d, exit %d), seed %d"
              % (cycles, phases["ingest"], phases["replay"], phases["exit"],
                 seed))
        print("sent %d, acknowledged %d, delivered %d, duplicates %d, "
              "lost %d" % (senders.sent, len(senders.acked), len(delivered),
                           duplicates, len(lost)))
        if lost:
            print("lost, for example:", sorted(lost)[:10])
        if leftovers:
            print("left in DIR after the final run:", leftovers)
        return not lost and not leftovers and len(senders.acked) > 0
    finally:
        senders.finish()
        server.stop()
        events.close()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--seed", type=int,
                        default=int(time.time()) % 100000)
    args = parser.parse_args()
    support.load_stubs()
    ok = crash_cycles(args.cycles, args.seed)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
