"""The crawler's asyncio network backend under httpcore: TLS with HTTP/2 and HTTP/1.1 (ALPN),
certificate checks, timeouts, refused connections and keep-alive connections the server closed.

Servers are real sockets on 127.0.0.1: an asyncio server speaking HTTP/2 (the h2 library, which
httpx's HTTP/2 support uses too) or HTTP/1.1 behind TLS with a certificate made for the test.
(Plain HTTP/1.1 through this backend is what every test in test_fetch.py does.)
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpcore
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from actors.asyncio_backend import AsyncioBackend
from tests.polling import poll


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and "localhost": (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsray test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def server_context(certificate: tuple[Path, Path], protocols: list[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    context.set_alpn_protocols(protocols)
    return context


def client_context(certificate: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if certificate is not None:
        context.load_verify_locations(cafile=str(certificate[0]))
    return context


@dataclass
class Server:
    port: int
    connections: int = 0
    closed_by_server: int = 0


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Server], Awaitable[None]]


@asynccontextmanager
async def serve(handler: Handler, context: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    state = Server(port=0)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            await handler(reader, writer, state)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connected, "127.0.0.1", 0, ssl=context)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


async def http_any(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: Server) -> None:
    """HTTP/2 when ALPN chose it, else HTTP/1.1 with keep-alive; the body names the path."""
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
        await _http2(reader, writer)
        return
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        body = b"h1 " + path
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()


async def _http2(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    connection.initiate_connection()
    writer.write(connection.data_to_send())
    while data := await reader.read(65536):
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                body = b"h2 " + path
                connection.send_headers(event.stream_id, [(":status", "200"), ("content-length", str(len(body)))])
                connection.send_data(event.stream_id, body, end_stream=True)
        writer.write(connection.data_to_send())
        await writer.drain()


def pool(context: ssl.SSLContext | None = None, http2: bool = True) -> httpcore.AsyncConnectionPool:
    return httpcore.AsyncConnectionPool(ssl_context=context, http1=True, http2=http2, network_backend=AsyncioBackend())


async def test_tls_with_http2_multiplexes_on_one_connection(certificate) -> None:
    async with serve(http_any, server_context(certificate, ["h2", "http/1.1"])) as server:
        async with pool(client_context(certificate)) as http:
            responses = await asyncio.gather(*[http.request("GET", f"https://127.0.0.1:{server.port}/feed/{n}")
                                               for n in range(5)])
        assert [r.status for r in responses] == [200] * 5
        assert [r.content for r in responses] == [b"h2 /feed/%d" % n for n in range(5)]
        assert {r.extensions["http_version"] for r in responses} == {b"HTTP/2"}
        assert server.connections == 1


async def test_tls_with_http1_when_the_server_offers_only_that(certificate) -> None:
    async with serve(http_any, server_context(certificate, ["http/1.1"])) as server:
        async with pool(client_context(certificate)) as http:
            first = await http.request("GET", f"https://localhost:{server.port}/a")
            second = await http.request("GET", f"https://localhost:{server.port}/b")
        assert (first.content, second.content) == (b"h1 /a", b"h1 /b")
        assert first.extensions["http_version"] == b"HTTP/1.1"
        assert server.connections == 1  # kept alive and reused


async def test_an_untrusted_certificate_is_a_connect_error(certificate) -> None:
    async with serve(http_any, server_context(certificate, ["http/1.1"])) as server:
        async with pool(client_context(None)) as http:
            with pytest.raises(httpcore.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.request("GET", f"https://127.0.0.1:{server.port}/")


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: Server) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)  # cancelled when the test's server closes

    async with serve(silent) as server:
        async with pool() as http:
            started = time.monotonic()
            with pytest.raises(httpcore.ReadTimeout):
                await http.request("GET", f"http://127.0.0.1:{server.port}/", extensions={"timeout": {"read": 0.3}})
            assert time.monotonic() - started < 2


async def test_a_refused_connection_is_a_connect_error(unused_tcp_port: int) -> None:
    async with pool() as http:
        with pytest.raises(httpcore.ConnectError):
            await http.request("GET", f"http://127.0.0.1:{unused_tcp_port}/")


async def test_a_keepalive_connection_closed_by_the_server_is_replaced() -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: Server) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")  # keep-alive by HTTP/1.1 default...
        await writer.drain()
        writer.close()  # ...and yet closed, as servers do on idle timeouts
        state.closed_by_server += 1

    async with serve(one_then_close) as server:
        async with pool() as http:
            first = await http.request("GET", f"http://127.0.0.1:{server.port}/1")
            # The probe: the idle connection counts as expired once the server's FIN has arrived
            # (the pool may have dropped it already, when the server was quicker than the reply).
            await poll(lambda: all(c.has_expired() for c in http.connections), "the closed connection to expire", 5,
                       interval_s=0.01)
            assert server.closed_by_server == 1
            second = await http.request("GET", f"http://127.0.0.1:{server.port}/2")
        assert first.content == second.content == b"ok"
        assert server.connections == 2  # the closed connection was noticed, not reused and failed


async def test_a_keepalive_connection_with_an_unasked_answer_is_replaced() -> None:
    # A server that sends a second answer to a request once the first has been read: it waits in
    # the idle connection, and a reused connection would hand it to the next request. The event
    # loop has already read those bytes off the socket, so only the stream's buffer shows them.
    first_read = asyncio.Event()

    async def answer_twice_then_normally(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                         state: Server) -> None:
        first_connection = state.connections == 1
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            body = head.split(b" ", 2)[1]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            if first_connection:
                await first_read.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
                await writer.drain()
                first_connection = False

    async with serve(answer_twice_then_normally) as server:
        async with pool() as http:
            first = await http.request("GET", f"http://127.0.0.1:{server.port}/1")
            first_read.set()
            await poll(lambda: all(c.has_expired() for c in http.connections), "the stale answer to be seen", 5,
                       interval_s=0.01)
            second = await http.request("GET", f"http://127.0.0.1:{server.port}/2")
        assert (first.content, second.content) == (b"/1", b"/2")
        assert server.connections == 2


def test_tls_and_http2_on_uvloop(certificate) -> None:
    # Ray runs async actors (the crawlers) on uvloop, whose start_tls is its own code: the TLS
    # cases again there, on a loop of their own in a thread of their own.
    async def cases() -> None:
        await test_tls_with_http2_multiplexes_on_one_connection(certificate)
        await test_tls_with_http1_when_the_server_offers_only_that(certificate)
        await test_an_untrusted_certificate_is_a_connect_error(certificate)
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)

    failures: list[BaseException] = []

    def run() -> None:
        try:
            uvloop.run(cases())
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and not failures, failures
