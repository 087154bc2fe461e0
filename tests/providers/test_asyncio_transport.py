"""The asyncio-socket httpx transport against real local servers: HTTP, TLS, reuse, failures."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpcore
import httpx
import pytest
import uvloop

from bookchat.providers.asyncio_transport import AsyncioBackend, AsyncioTransport
from bookchat.providers.gemini_stream import GeminiStreamClient
from tests.network import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


def _answering(body: bytes = b"hello", *, close_after: int | None = None) -> Handler:
    """An HTTP/1.1 server handler: `body` to every request; closes after `close_after` answers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while close_after is None or answered < close_after:
                await _read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle


@asynccontextmanager
async def _server(
    handle: Handler, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, list[int]]]:
    """A local server on a free port, and the count of connections it accepted."""
    connections: list[int] = []
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writers.append(writer)
        await handle(reader, writer)

    port = free_port()
    server = await asyncio.start_server(accept, "127.0.0.1", port, ssl=ssl_context)
    try:
        yield port, connections
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def _client(**options) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AsyncioTransport(max_keepalive_connections=4, **options))


# Each test runs on both loops the service meets: bookchat serve runs uvloop, tests asyncio's own.
LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])


async def test_it_is_httpcores_pool_over_asyncio_sockets() -> None:
    # The transport swaps httpx's pool for one with this backend: if httpx renamed its pool
    # attribute, requests would silently go through anyio again, so it is checked here.
    transport = AsyncioTransport(max_keepalive_connections=4)
    assert isinstance(transport._pool, httpcore.AsyncConnectionPool)
    assert isinstance(transport._pool._network_backend, AsyncioBackend)
    await transport.aclose()


@LOOPS
def test_requests_share_one_kept_alive_connection(run) -> None:
    async def check() -> None:
        async with _server(_answering(b"hi")) as (port, connections), _client() as client:
            for _ in range(3):
                response = await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
                assert (response.status_code, response.content) == (200, b"hi")
        assert len(connections) == 1

    run(check())


@LOOPS
def test_a_connection_the_server_closed_is_not_reused(run) -> None:
    async def check() -> None:
        async with _server(_answering(close_after=1)) as (port, connections), _client() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
            await asyncio.sleep(0.1)  # the server's FIN arrives while the connection is idle
            assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200
        assert len(connections) == 2

    run(check())


@LOOPS
def test_a_closed_port_is_a_connect_error(run) -> None:
    async def check() -> None:
        async with _client() as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{free_port()}/")

    run(check())


@LOOPS
def test_a_silent_server_is_a_read_timeout(run) -> None:
    async def check() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _read_request(reader)
            await reader.read()  # silent until the client gives up and closes
            writer.close()

        async with _server(silent) as (port, _), _client() as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{port}/", timeout=httpx.Timeout(5, read=0.2))

    run(check())


@LOOPS
def test_a_reset_mid_body_is_a_read_error(run) -> None:
    async def check() -> None:
        async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
            await writer.drain()
            writer.transport.abort()

        async with _server(reset) as (port, _), _client() as client:
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await client.get(f"http://127.0.0.1:{port}/")

    run(check())


def _certificate(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed certificate for `name` (and its key), as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@LOOPS
def test_https_is_verified_and_streamed(run, tmp_path: Path) -> None:
    async def check() -> None:
        cert_file, key_file = _certificate(tmp_path)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert_file, key_file)
        trusting = ssl.create_default_context(cafile=str(cert_file))
        body = b"x" * 200_000  # several TLS records and reads
        async with _server(_answering(body), server_context) as (port, connections):
            async with _client(ssl_context=trusting) as client:
                for _ in range(2):
                    async with client.stream("GET", f"https://localhost:{port}/") as response:
                        received = b"".join([piece async for piece in response.aiter_raw()])
                    assert received == body
                assert len(connections) == 1
            # A client that does not trust the certificate refuses the connection.
            async with _client() as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get(f"https://localhost:{port}/")

    run(check())


async def test_the_gemini_client_uses_it_unless_a_proxy_is_set(monkeypatch) -> None:
    client = GeminiStreamClient(api_key="k", timeout=5)
    assert isinstance(client._client._transport, AsyncioTransport)
    await client.aclose()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    client = GeminiStreamClient(api_key="k", timeout=5)
    assert not isinstance(client._client._transport, AsyncioTransport)
    await client.aclose()


def _trickling(pieces: int, gap: float) -> Handler:
    """A reply written in `pieces` pieces of 3 bytes, `gap` seconds apart, on every request.

    Not chunked: h11 hands over one piece per socket read then, so the pieces count the reads.
    """

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await _read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (3 * pieces))
                for i in range(pieces):
                    writer.write(b"%03d" % i)
                    await writer.drain()
                    await asyncio.sleep(gap)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    return handle


@LOOPS
def test_a_paced_stream_reads_what_piled_up_at_once_and_then_reads_freely(run) -> None:
    async def check() -> None:
        expected = b"".join(b"%03d" % i for i in range(20))
        async with _server(_trickling(20, 0.01)) as (port, connections), _client() as client:
            async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                connection = response.extensions["network_stream"]
                received = []
                async for piece in response.aiter_raw():
                    received.append(piece)
                    connection.pace(0.2)  # once per 0.2 s: most pieces come several to a read
                connection.pace(0)
            assert b"".join(received) == expected
            assert len(received) < 20
            # Back in the pool unpaced, the connection serves the next request piece by piece.
            async with client.stream("GET", f"http://127.0.0.1:{port}/") as response:
                assert b"".join([p async for p in response.aiter_raw()]) == expected
            assert len(connections) == 1

    run(check())
