"""httpcore's network backend on plain asyncio streams, for the crawler's HTTP client.

httpcore's default backend goes through anyio: every read and write opens a cancel scope
(``anyio.fail_after``), asks sniffio which event loop runs and passes anyio's checkpoints. In
the crawl benchmark that was about 7 % of a crawler's Python time, for a program that only ever
runs on asyncio. This backend does the same job with asyncio's own streams and timeouts:
the same exceptions (httpcore's ConnectError, ReadTimeout, ...), TLS with ALPN (HTTP/2) through
``StreamWriter.start_tls``, and the "is_readable" probe httpcore uses to drop idle connections
the server closed. Address checks stay in actors.fetch, whose backend extends this one.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

__all__ = ["AsyncioBackend", "AsyncioStream"]

# Bytes buffered per connection before reading pauses the socket (asyncio's default is 64 KiB;
# feeds arrive in bodies of tens of KB and httpcore reads 64 KiB at a time).
_READ_LIMIT = 256 * 1024


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout(f"no data within {timeout:g}s") from None
        except OSError as exc:  # ssl.SSLError and ConnectionError included
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            if timeout is None:
                await self._writer.drain()
            else:
                async with asyncio.timeout(timeout):
                    await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not send within {timeout:g}s") from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: writing to a closed transport
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        # Closing never waits for the peer: a request is fully sent before its response is read,
        # so nothing is left to flush, and a server that stopped reading must not hold the socket.
        self._writer.transport.abort()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            await self._writer.start_tls(ssl_context, server_hostname=server_hostname, ssl_handshake_timeout=timeout)
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout(f"no TLS handshake within {timeout:g}s") from None
        except OSError as exc:  # ssl.SSLError and ConnectionError included
            await self.aclose()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self  # the writer's transport is now the TLS one; the reader is fed through it

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        if info == "is_readable":
            # An idle keep-alive connection is readable only when the server closed it or sent
            # something unasked: httpcore then opens a new one instead of failing a request (or
            # reading a stale answer as the next one's). The event loop reads every connection as
            # bytes arrive, so the reader knows: its EOF, or bytes in its buffer (StreamReader has
            # no public size for it). A poll() of the socket, asked for every idle connection each
            # time the pool hands one out, missed those buffered bytes (they are off the socket
            # already) and cost 1.2-1.5 us a probe against 0.2-0.3.
            return self._reader.at_eof() or bool(self._reader._buffer) or self._writer.transport.is_closing()
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens :class:`AsyncioStream` connections; the caller has checked the address."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, local_addr=local, limit=_READ_LIMIT)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection to {host}:{port} within {timeout:g}s") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock: socket.socket | None = writer.get_extra_info("socket")
        if sock is not None:
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("fetch: unix sockets are not used")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
