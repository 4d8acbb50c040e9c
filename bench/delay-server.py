#!/usr/bin/python3
# Copyright (C) 2026 The EchoPost developers
# SPDX-License-Identifier: AGPL-3.0-or-later
"""delay-server.py: an HTTP/1.1 server that answers every request with
200 after a fixed delay, as a server far away would, for the replay
benchmark.

    delay-server.py PORT DELAY_MS

Requests on one connection are answered in turn (keep-alive); requests on
different connections wait side by side, so the server is never the limit
of the rate: with N connections it answers N / delay requests a second
(run-bench.sh checks that with wrk). It runs until killed.
"""

import asyncio
import sys

ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          b"Content-Length: 2\r\n\r\n{}")


async def serve(reader, writer, delay):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(delay)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port, delay):
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, delay), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: delay-server.py PORT DELAY_MS")
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]) / 1000.0))
