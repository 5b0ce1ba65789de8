"""The socket ``python -m app`` binds before uvicorn serves on it: its connections must send at once.

A response leaves in two writes (headers, then body). With Nagle's algorithm on, the body waits until the
client acknowledges the headers, and a client delays that ACK by up to 40 ms: one todo took ~40 ms instead of
~2 (README, "Performance"). asyncio turns Nagle off on every connection of a socket that says it is TCP.
"""

from __future__ import annotations

import asyncio
import socket

from app.__main__ import _bind


def test_connections_accepted_on_the_bound_socket_have_nagle_off() -> None:
    async def nodelay_of_an_accepted_connection() -> int:
        listener = _bind("127.0.0.1", 0)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname())
            try:
                return await asyncio.wait_for(accepted, 10)
            finally:
                writer.close()
                await writer.wait_closed()

    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0, "Nagle's algorithm is on for the app's connections"
