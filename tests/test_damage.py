#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Damage sweep: one flipped byte or one zeroed 4 KiB block in a spool
file, at offsets spread over it, must never lose an acknowledged log
silently (issue 23).

One template DIR is made: the server down, --logs logs of 1-2 KB stored
one per new channel on small journals (ECHOPOST_TEST_JOURNAL_SIZE): a
third of them, a wait until a journal is sealed, the server up for a few
deliveries (so that the head is saved) and down again, the rest, and
SIGTERM as soon as a spare is ready, so that it holds every kind of spool
file:
  newest    the journal with the highest number, the one being written
  closed    an older journal, not sealed yet
  spare     echopost.spool.journal.spare
  sealed    echopost.spool.sealed.A-B
  position  echopost.spool.position
For each kind and each offset (seeded), a copy of the template gets one
byte xor 0xff or 4 KiB of zeros there (the two alternate), and echopost
starts on it with the server up, until it exits. Checked, as in
test_faults.py: (a) every acknowledged log delivered or named by a
record_missing event, (b) the socket within 2 s, (c) no crash, (e) no exit
0 after a record_missing; and (f) a file that held a record reported
missing is not deleted: it, or a NAME.damaged-* copy of it, remains.

  test_damage.py [--points N] [--seed S] [--kind NAME]... [--minutes M]
                 [--keep DIR] [--logs N]

--points is per kind (default 4: the sample make check runs). Prints per
kind: points, damaged, delivered, reported missing, silently lost; last,
"N passed, N failed".
"""

import os
import random
import shutil
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fakeserver import FakeServer  # noqa: E402
import support  # noqa: E402
from test_faults import (Point, account, delivered_ids,  # noqa: E402
                         dumped_seqs, replay)
from test_killpoints import (  # noqa: E402
    send, sealed_in, sockets, sweep_arguments)

KINDS = ("newest", "closed", "spare", "sealed", "position")
SPARE = support.SPOOL + support.c_define("JOURNAL_SUFFIX") + "spare"
BLOCK = 4096


def journals_in(dir):
    """Journal names by number."""
    return sorted((n for n in os.listdir(dir)
                   if support.JOURNAL_RE.fullmatch(n)),
                  key=lambda n: int(n.rsplit(".", 1)[1]))


def first_of(path):
    """The first sequence number a journal's header names."""
    with open(path, "rb") as f:
        return struct.unpack(">Q", f.read(16)[4:12])[0]


def make_template(work, server, sizes):
    """The template DIR, its acked ids (the kth has seq k), the ids it
    delivered, and by kind (file name, the seqs it holds)."""
    dir = tempfile.mkdtemp(prefix="template-", dir=work)
    point = Point(work)
    server.reset()
    server.down()
    proc = point.start("template", dir, server.url, preload=False)
    sock = os.path.join(dir, support.SOCKET_NAME)
    acked = []
    third = len(sizes) // 3
    for i, size in enumerate(sizes):
        if i == third:
            support.wait_until(lambda: sealed_in(dir), 5 * support.SLOW)
            # A few deliveries, so that the head is saved: a position
            # file with something in it to damage. A slow server, one
            # answer at a time, so that the spool is not emptied.
            server.set(log_delay=0.1, serial=True)
            server.up()
            support.wait_until(lambda: len(delivered_ids(server)) >= 3,
                               5 * support.SLOW)
            time.sleep(0.3)
            server.down()
            server.set(log_delay=0, serial=False)
        if send(sock, "log-%d" % i, size):
            acked.append("log-%d" % i)
    # Stopped at once, before the mover seals all the journals just
    # closed; a sealed file of undelivered records wanted too (the one
    # sealed before may have been delivered whole).
    support.wait_until(lambda: sealed_in(dir) and os.path.exists(
        os.path.join(dir, SPARE)), 3 * support.SLOW, step=0.002)
    point.stop(proc)
    delivered = delivered_ids(server)
    if len(acked) != len(sizes):
        raise AssertionError("template: %d of %d logs acked"
                             % (len(acked), len(sizes)))
    if any(seq != acked.index(i) for i, seq in dumped_seqs(dir).items()):
        raise AssertionError("template: --dump's seqs are not 0.. in "
                             "arrival order")
    files = {}
    journals = journals_in(dir)
    bounds = [first_of(os.path.join(dir, n)) for n in journals]
    bounds.append(len(acked))
    if journals:
        files["newest"] = (journals[-1], set(range(bounds[-2], bounds[-1])))
    if len(journals) > 1:
        files["closed"] = (journals[0], set(range(bounds[0], bounds[1])))
    sealed = sealed_in(dir)
    if sealed:
        files["sealed"] = (sealed[-1], set(range(*map(
            int, support.SEALED_RE.fullmatch(sealed[-1]).groups()))))
    for kind, name in (("spare", SPARE), ("position", support.POSITION)):
        if os.path.exists(os.path.join(dir, name)):
            files[kind] = (name, set())
    return dir, acked, delivered, files


def damage(path, offset, zero):
    """4 KiB of zeros at offset (zero), else one byte xor 0xff."""
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(BLOCK if zero else 1)
        f.seek(offset)
        f.write(bytes(len(data)) if zero else bytes([data[0] ^ 0xFF]))


def offsets(rng, size, points):
    """points offsets over 0..size-1, spread out, jittered; the first
    byte (a header) always among them."""
    if points >= size:
        return list(range(size))
    step = size / points
    return sorted({0} | {int(i * step + rng.random() * step)
                         for i in range(1, points)})


def one(work, server, template, acked, earlier, name, held, offset, zero,
        keep):
    """Damage a copy of template's file name at offset, replay it, check;
    earlier: the ids the template run delivered. Returns a result dict."""
    here = tempfile.mkdtemp(prefix="point-", dir=work)
    dir = os.path.join(here, "dn")
    shutil.copytree(template, dir, ignore=sockets)
    damage(os.path.join(dir, name), offset, zero)
    point = Point(here)
    server.reset()
    server.up()
    replay(point, "replay", dir, server.url, preload=False,
           timeout=support.EXIT_WAIT)
    missing = point.missing()
    got, reported, lost = account(acked, delivered_ids(server) | earlier,
                                  missing)
    problems = point.failed_starts + point.check_runs()
    if lost:
        problems.append("%d acked logs silently lost: %s"
                        % (len(lost), lost))
    if held & point.missing(("record_missing",)) and not any(n == name or
                                  n.startswith(name + ".damaged-")
                                  for n in os.listdir(dir)):
        problems.append("%s held records reported missing, and is gone"
                        % name)
    if problems and keep:
        shutil.copytree(here, os.path.join(keep, "%s-%d-%s" % (
            name, offset, "zero" if zero else "flip")), ignore=sockets)
    shutil.rmtree(here, ignore_errors=True)
    return {"delivered": len(got), "reported": len(reported),
            "lost": len(lost), "problems": problems}


def main():
    args = sweep_arguments(__doc__, 4, "kind", KINDS, 40,
                           "logs the template stores").parse_args()
    support.load_stubs()
    rng = random.Random(args.seed)
    sizes = [rng.randrange(1000, 2000) for _ in range(args.logs)]
    work = tempfile.mkdtemp(prefix="ep-damage-", dir="/tmp")
    server = FakeServer().start(state="down")
    deadline = (time.monotonic() + args.minutes * 60 if args.minutes
                else None)
    kinds = args.kind or KINDS
    passed = failed = 0
    print("seed %d, %d points per kind, %d logs of 1-2 KB"
          % (args.seed, args.points, args.logs))
    try:
        # The kinds depend on how far the mover got: a few tries.
        for _ in range(3):
            template, acked, earlier, files = make_template(work, server,
                                                            sizes)
            if set(kinds) <= set(files):
                break
        for index, kind in enumerate(kinds):
            if kind not in files:
                print("FAIL %s: the template has no such file: %s"
                      % (kind, sorted(os.listdir(template))))
                failed += 1
                continue
            began = time.monotonic()
            share = (None if deadline is None else
                     began + (deadline - began) / (len(kinds) - index))
            name, held = files[kind]
            size = os.path.getsize(os.path.join(template, name))
            counts = dict.fromkeys(("points", "delivered", "reported",
                                    "lost"), 0)
            for n, offset in enumerate(offsets(rng, size, args.points)):
                if share is not None and time.monotonic() > share:
                    break
                zero = n % 2 == 1
                r = one(work, server, template, acked, earlier, name, held,
                        offset, zero, args.keep)
                counts["points"] += 1
                for key in ("delivered", "reported", "lost"):
                    counts[key] += r[key]
                passed += not r["problems"]
                failed += bool(r["problems"])
                if r["problems"]:
                    print("FAIL %s %s at %d (%s): %s"
                          % (kind, "zeroed" if zero else "flipped", offset,
                             name, "; ".join(r["problems"])))
            print("%-8s %s, %d bytes; points %d, damaged %d, delivered %d, "
                  "reported missing %d, silently lost %d; %.0f s"
                  % (kind, name, size, counts["points"], counts["points"],
                     counts["delivered"], counts["reported"],
                     counts["lost"], time.monotonic() - began))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
