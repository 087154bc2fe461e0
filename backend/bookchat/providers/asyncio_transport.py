"""An httpx transport whose connections are asyncio's own streams rather than anyio's.

Why (speed): an answer streamed from Gemini is a hundred chunks or more, each its own socket
read. httpcore reads through anyio, which per read enters a cancel scope, looks up the running
async library and the current task and takes a checkpoint; with TLS, anyio also runs the TLS
records through Python (`ssl.MemoryBIO`), where asyncio (and uvloop) do it in C. Those layers
were a quarter of the CPU spent reading an answer (backend/docs/benchmarks.md). httpcore takes
any network backend; this is one over `asyncio.open_connection`, with httpcore's own pool,
HTTP/1.1 parser and errors, so httpx behaves as it always does above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

# Per read: the largest piece asked of the socket (httpcore asks for 64 KiB), and what the
# stream reader may hold before it stops reading from the socket (back-pressure).
READ_LIMIT = 256 * 1024

_EXTRA_INFO = {"client_addr": "sockname", "server_addr": "peername", "socket": "socket"}


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection as httpcore reads and writes it; its errors are httpcore's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._interval = 0.0
        self._next_read = 0.0

    def pace(self, interval: float) -> None:
        """Read at most once per `interval` seconds from now on; 0 reads as data comes again.

        Meanwhile the socket is not watched: what arrives waits in the kernel and the next read
        takes all of it, so a reply streamed in many small chunks wakes the process once per
        interval instead of once per chunk (each wake-up of an idle process costs about as much
        CPU as handling a chunk: backend/docs/benchmarks.md).
        """
        if interval == self._interval:
            return
        self._interval = interval
        if interval > 0:
            self._next_read = asyncio.get_running_loop().time() + interval
            self._writer.transport.pause_reading()
        else:
            self._writer.transport.resume_reading()

    async def _wait_for_turn(self) -> None:
        loop = asyncio.get_running_loop()
        if (delay := self._next_read - loop.time()) > 0:
            await asyncio.sleep(delay)
        self._next_read = loop.time() + self._interval
        self._writer.transport.resume_reading()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if self._interval > 0:
                await self._wait_for_turn()
            if timeout is None:
                data = await self._reader.read(max_bytes)
            else:
                async with asyncio.timeout(timeout):
                    data = await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout(f"no data within {timeout} s") from None
        except OSError as exc:  # a reset connection, a TLS error (ssl.SSLError is one)
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc
        if self._interval > 0:
            # What the kernel held is read; the rest waits there until the next turn.
            self._writer.transport.pause_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not write within {timeout} s") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._writer.close()
        # Closing a TLS connection sends its close_notify; a peer that has gone is not waited for.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks before reusing an idle connection: readable then means the server
            # closed it (or sent what nobody asked for), so it is not reused.
            return self._reader.at_eof() or bool(getattr(self._reader, "_buffer", b""))
        return self._writer.get_extra_info(_EXTRA_INFO.get(info, info))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens AsyncioStream connections."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    limit=READ_LIMIT,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=READ_LIMIT)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP/1.1 transport, its connections opened by AsyncioBackend."""

    def __init__(
        self,
        *,
        max_keepalive_connections: int,
        keepalive_expiry: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        context = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        super().__init__(verify=context)
        # httpx has no setting for the network backend; its pool is httpcore's, which has one.
        # Built with the options httpx itself would pass (no connection cap: see the caller).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=None,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=AsyncioBackend(),
        )
