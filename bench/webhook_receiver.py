"""A client service's webhook endpoint for the bench, in a process of its own: asyncio, as
cheap per request as Python gets, so that it takes little of the machine from the consumer
being measured.

``python bench/webhook_receiver.py PORT MODE``: MODE ``fast`` answers 200 at once, ``slow``
after 5 seconds, ``silent`` never (it reads the request and keeps the connection open).
``GET /_stats`` answers ``{"posts": n}``. Imports nothing of the project's.
"""

from __future__ import annotations

import asyncio
import json
import sys

SLOW_SECONDS = 5.0
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class Receiver:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.posts = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip() or 0)
                if length:
                    await reader.readexactly(length)
                if lines[0].startswith("GET /_stats"):
                    body = json.dumps({"posts": self.posts}).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    await writer.drain()
                    continue
                self.posts += 1
                if self.mode == "silent":
                    await asyncio.Event().wait()  # never answers; the client times out
                if self.mode == "slow":
                    await asyncio.sleep(SLOW_SECONDS)
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def main(port: int, mode: str) -> None:
    receiver = Receiver(mode)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
