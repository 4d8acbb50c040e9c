#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Hostile input on EchoPost's socket: oversized, malformed and hostile
requests, raw non-gRPC bytes, silent clients, a thousand connections at
once.

Each test runs the real echopost binary against the fake server
(fakeserver.py, its own process) and talks to it over its UNIX socket,
with gRPC and with bytes made by hand (support: pb_field, raw_call,
h2_frame). Every test says in a comment which guarantee it protects; each
one fails if that guarantee is broken. Every wait is bounded and every
test cleans up its processes and temp dirs (support.EchoPostTest).

Paths come from the environment, as for test_e2e.py (ECHOPOST, ECHOPOST_PROTO).
Run with /usr/bin/python3 tests/test_hostile.py.
"""

import json
import os
import random
import resource
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from support import (  # noqa: E402
    H2_PREFACE, SLOW, ReliabilityTest, c_define, drain_socket, h2_frame,
    half_open_call, load_stubs, log_data_of, open_fds, pb_field, raw_call,
    send_log, spool_kept, vm_rss_kib, wait_until)


def setUpModule():
    load_stubs()


# Calls still open when echopost closes its socket get this long.
CLOSE_GRACE = c_define("CLOSE_GRACE_MS") / 1000


class HostileInputTest(ReliabilityTest):

    def setUp(self):
        super().setUp()
        self.start_server("down")

    def finish(self, proc, good):
        """Server up: exactly the good logs (texts) are delivered, in
        order, and echopost exits 0: nothing refused was stored."""
        posts = self.deliver_and_exit(proc)
        self.assert_arrival_order([log_data_of(p) for p in posts],
                                  [json.loads(t) for t in good], once=True)

    def test_oversized_message_is_resource_exhausted_and_serving_goes_on(self):
        # Protects: --max-message-size: a bigger request is refused with
        # RESOURCE_EXHAUSTED, is not stored, and the process keeps serving.
        proc, sock = self.start_in(self.dir, ["--max-message-size", "4k"])
        good = [self.assert_serving(proc, sock, "before")]
        with self.assertRaises(grpc.RpcError) as cm:
            send_log(sock, json.dumps({"big": "b" * 5000}))
        self.assertEqual(cm.exception.code(),
                         grpc.StatusCode.RESOURCE_EXHAUSTED)
        good.append(self.assert_serving(proc, sock, "after"))
        self.finish(proc, good)

    def test_malformed_protobuf_is_refused_with_reason_never_crashes(self):
        # Protects: request decoding. Bytes that are not a LogRequest get
        # success false with a reason that says so, never a crash, and
        # nothing of them is stored.
        proc, sock = self.start_in(self.dir)
        rng = random.Random(3)
        cases = {
            "length past the end": b"\x0a\xff\xff\xff\x0f",
            "truncated varint": b"\x0a\xff",
            "wrong wire type": b"\x0b\x01",
            "field number zero": b"\x02\x01x",
            "bytes 0..255": bytes(range(256)),
            "random": rng.randbytes(4000),
            "nested garbage": pb_field(1, b'{"a":1}') + b"\x12\xff\xff",
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                r = raw_call(sock, data)
                self.assertFalse(r.success, "malformed request stored")
                self.assertIn("malformed", r.message)
                self.assertIsNone(proc.poll(), "echopost died")
        good = [self.assert_serving(proc, sock)]
        self.finish(proc, good)

    def test_invalid_utf8_is_refused_with_reason(self):
        # Protects: proto3 strings are UTF-8 and the server gets JSON text:
        # invalid UTF-8 in json_data or in a pipeline is refused with a
        # reason, not stored.
        proc, sock = self.start_in(self.dir)
        cases = {
            "json_data": pb_field(1, b'{"a": "\xff\xfe"}'),
            "json_data overlong": pb_field(1, b'{"a": "\xc0\xaf"}'),
            "json_data surrogate": pb_field(1, b'{"a": "\xed\xa0\x80"}'),
            "pipeline": pb_field(1, b'{"a": 1}') + pb_field(2, b"\xc3\x28"),
            "second pipeline": (pb_field(1, b'{"a": 1}') + pb_field(2, b"ok")
                                + pb_field(2, b"bad\x80")),
        }
        for name, data in cases.items():
            with self.subTest(case=name):
                r = raw_call(sock, data)
                self.assertFalse(r.success, "invalid UTF-8 stored")
                self.assertIn("not valid", r.message)
                self.assertIsNone(proc.poll())
        good = [self.assert_serving(proc, sock)]
        self.finish(proc, good)

    def test_nul_bytes_are_refused_or_kept_never_truncated(self):
        # Protects: "log_data is the json_data as received" and the
        # pipeline codes. A NUL is valid UTF-8 in a proto3 string; a
        # json_data holding one is not a JSON text, so it must be refused;
        # a pipeline holding one must be refused or delivered whole, never
        # cut at the NUL (which would send the log to another pipeline).
        proc, sock = self.start_in(self.dir)
        r = send_log(sock, '{"a": 1}\x00{"b": 2}')
        self.assertFalse(r.success,
                         "json_data with a NUL byte was accepted (a JSON "
                         "text cannot hold one)")
        r = send_log(sock, '{"pipe": "nul"}', ["pi\x00pe"])
        accepted = r.success
        posts = self.deliver_and_exit(proc)
        got = [json.loads(p["body"]) for p in posts]
        if accepted:
            self.assertEqual(got, [{"pipelines": ["pi\x00pe"],
                                    "log_data": {"pipe": "nul"}}],
                             "a pipeline with a NUL was delivered altered")
        else:
            self.assertEqual(got, [])

    def test_deeply_nested_json_is_refused_with_reason(self):
        # Protects: the JSON check does not blow the stack or hang on
        # 100 000 nested arrays; the log is refused with a reason.
        proc, sock = self.start_in(self.dir)
        for name, text in (
                ("unclosed", '{"a": ' + "[" * 100000),
                ("closed", '{"a": ' + "[" * 100000 + "]" * 100000 + "}")):
            with self.subTest(case=name):
                t0 = time.monotonic()
                r = send_log(sock, text)
                self.assertFalse(r.success)
                self.assertIn("not valid JSON", r.message)
                self.assertLess(time.monotonic() - t0, 5.0)
                self.assertIsNone(proc.poll())
        good = [self.assert_serving(proc, sock)]
        self.finish(proc, good)

    def test_huge_pipeline_list_is_stored_or_refused_no_crash(self):
        # Protects: a request with as many pipelines as fit in the
        # default --max-message-size (1 MiB) is either stored (and then
        # delivered whole) or refused with a reason; the process survives
        # and keeps serving.
        proc, sock = self.start_in(self.dir)
        # Each "p": 3 bytes on the wire.
        count = (c_define("DEFAULT_MESSAGE_SIZE") - 64) // 3
        t0 = time.monotonic()
        try:
            r = send_log(sock, '{"many": true}', ["p"] * count, timeout=30)
            stored, reason = r.success, r.message
        except grpc.RpcError as e:
            stored, reason = False, e.details()
        self.assertLess(time.monotonic() - t0, 20.0)
        if not stored:
            self.assertTrue(reason, "refused without a reason")
        good = self.assert_serving(proc, sock)
        posts = self.deliver_and_exit(proc)
        bodies = [json.loads(p["body"]) for p in posts]
        if stored:
            self.assertEqual(len(bodies), 2)
            self.assertEqual(bodies[0]["log_data"], {"many": True})
            self.assertEqual(bodies[0]["pipelines"], ["p"] * count)
            bodies = bodies[1:]
        self.assertEqual([b["log_data"] for b in bodies], [json.loads(good)])

    def test_non_grpc_bytes_on_the_socket_do_no_harm(self):
        # Protects: the listener against clients that do not speak gRPC:
        # HTTP/1.1, random bytes, a broken HTTP/2 preface. The process
        # stays up and keeps serving.
        proc, sock = self.start_in(self.dir)
        rng = random.Random(5)
        payloads = {
            "http/1.1": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "random 64k": rng.randbytes(64 * 1024),
            "preface then junk": H2_PREFACE + rng.randbytes(4096),
            "half a preface": H2_PREFACE[:7],
        }
        for name, data in payloads.items():
            with self.subTest(case=name):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.settimeout(5)
                    s.connect(sock)
                    try:
                        s.sendall(data)
                    except OSError:
                        pass            # the server may hang up on us
                    drain_socket(s, 0.5)
                finally:
                    s.close()
                self.assertIsNone(proc.poll(), "echopost died")
                self.assert_serving(proc, sock, name)
        self.assertEqual(self.stop_echopost(proc), 0)

    def test_silent_clients_block_neither_others_nor_shutdown(self):
        # Protects: a client that connects and never sends, and one that
        # opens a SendLog call and never finishes its message, do not
        # stop other logs from being served, and SIGTERM still ends the
        # run within the close grace (listener.c CLOSE_GRACE_MS) + 2 s,
        # with exit 0 and the acknowledged logs kept.
        proc, sock = self.start_in(self.dir)
        held = []
        try:
            idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            held.append(idle)
            idle.connect(sock)
            half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            held.append(half)
            half.connect(sock)
            half.sendall(half_open_call())
            time.sleep(0.2)
            for i in range(5):
                t0 = time.monotonic()
                self.assert_serving(proc, sock, "while held %d" % i)
                self.assertLess(time.monotonic() - t0, 2.0,
                                "a log waited behind a silent client")
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            status = self.wait_exit(proc, timeout=CLOSE_GRACE + 5)
            took = time.monotonic() - t0
        finally:
            for s in held:
                s.close()
        self.assertEqual(status, 0)
        self.assertLess(took, CLOSE_GRACE + 2.0,
                        "SIGTERM took %.1fs with silent clients" % took)
        self.assertEqual(self.events_of(proc)[-1].get("spooled"), 5)
        self.assertTrue(spool_kept(self.dir))

    def test_thousand_connections_at_once(self):
        # Protects: resources under a connection flood: 1000 connections
        # held at once do not stop a real log from being served, memory
        # (VmRSS) grows by less than 64 MiB, and the descriptors are given
        # back once the connections close.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            if hard != resource.RLIM_INFINITY and hard < 1200:
                self.skipTest("RLIMIT_NOFILE hard limit %d < 1200" % hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (
                1200 if hard == resource.RLIM_INFINITY else min(hard, 4096),
                hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE,
                            (soft, hard))
        proc, sock = self.start_in(self.dir)
        good = [self.assert_serving(proc, sock, "warm-up")]
        rss0, fds0 = vm_rss_kib(proc.pid), open_fds(proc.pid)
        held = []
        try:
            for i in range(1000):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                held.append(s)
                s.settimeout(5)
                s.connect(sock)
                if i % 2:
                    s.sendall(H2_PREFACE + h2_frame(4, 0, 0, b""))
            # Let echopost accept them all. fds0 may still hold the
            # warm-up call's connection, closing under AddressSanitizer's
            # pace: a few short of 1000 more is all of them.
            accepted = wait_until(
                lambda: open_fds(proc.pid) >= fds0 + 990, 30.0 * SLOW, 0.05)
            self.assertTrue(accepted, "echopost did not accept 1000 "
                            "connections: %d descriptors more"
                            % (open_fds(proc.pid) - fds0))
            t0 = time.monotonic()
            good.append(self.assert_serving(proc, sock, "flooded"))
            self.assertLess(time.monotonic() - t0, 5.0)
            grown = vm_rss_kib(proc.pid) - rss0
            # AddressSanitizer keeps freed memory in quarantine: no bound.
            if os.environ.get("ECHOPOST_SANITIZED") != "yes":
                self.assertLess(grown, 64 * 1024,
                                "VmRSS grew by %d KiB with 1000 connections"
                                % grown)
        finally:
            for s in held:
                s.close()
        self.assertTrue(
            wait_until(lambda: open_fds(proc.pid) <= fds0 + 10, 5.0, 0.05),
            "descriptors not given back: %d open, %d before"
            % (open_fds(proc.pid), fds0))
        good.append(self.assert_serving(proc, sock, "after"))
        self.finish(proc, good)


if __name__ == "__main__":
    unittest.main(verbosity=2)
