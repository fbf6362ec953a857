"""Connection pooling for the fetch client: one small httpcore pool per origin.

httpcore's AsyncConnectionPool looks at every connection it holds on every request and every
response close (a readability probe per idle connection), and it closes an idle connection whenever it
holds more connections than its keep-alive limit, counting busy ones too. A crawler talks to
hundreds of hosts at once: one shared pool must either stay small, and then keeps almost nothing
alive for the next feed of a host, or grow, and then that bookkeeping grows with the square of
its size (a list of all connections for each idle one). A pool per origin stays a few
connections long, so keep-alive works and the bookkeeping stays small; idle origins beyond a
bound, or unused for the keep-alive time, are closed, least recently used first.

Only public httpcore interfaces are used; every connection is still made by the network backend
passed in (the fetch module's address-checking one).
"""

from __future__ import annotations

import ssl
import time
import types
from collections import OrderedDict

import httpcore

__all__ = ["OriginPools"]

_Key = tuple[bytes, bytes, int]  # an origin: scheme, host, port


class OriginPools:
    """Drop-in for httpcore.AsyncConnectionPool: the same arguments, applied per origin.

    ``max_connections`` and ``max_keepalive_connections`` bound each origin's pool;
    ``max_origins`` bounds how many origins keep a pool (idle ones beyond it are closed,
    least recently used first), and an origin's pool unused for ``keepalive_expiry`` seconds is
    closed at the next request to any origin (its idle sockets would otherwise stay open until its
    own next request).
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        network_backend: httpcore.AsyncNetworkBackend,
        max_connections: int,
        max_keepalive_connections: int,
        keepalive_expiry: float,
        max_origins: int,
        http1: bool = True,
        http2: bool = False,
    ) -> None:
        if max_origins < 1 or max_connections < 1:
            raise ValueError("fetch: max_origins and max_connections must be at least 1")
        self._settings = {
            "ssl_context": ssl_context, "network_backend": network_backend, "max_connections": max_connections,
            "max_keepalive_connections": max_keepalive_connections, "keepalive_expiry": keepalive_expiry,
            "http1": http1, "http2": http2, "retries": 0,
        }
        self._max_origins = max_origins
        self._expiry_s = keepalive_expiry
        # Least recently used first: origin -> (its pool, when it was last used).
        self._pools: OrderedDict[_Key, tuple[httpcore.AsyncConnectionPool, float]] = OrderedDict()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)  # httpcore.Origin is not hashable
        now = time.monotonic()
        entry = self._pools.pop(key, None)
        pool = entry[0] if entry else httpcore.AsyncConnectionPool(**self._settings)  # type: ignore[arg-type]
        self._pools[key] = (pool, now)
        closing = self._take_unused(now, key)
        try:
            # No await before this call: the pool has its connection for this request before any
            # other request can look for idle pools to close.
            return await pool.handle_async_request(request)
        finally:
            for unused in closing:
                await unused.aclose()

    def _take_unused(self, now: float, current: _Key) -> list[httpcore.AsyncConnectionPool]:
        """Remove pools with nothing in flight that expired or exceed max_origins, oldest first."""
        surplus = len(self._pools) - self._max_origins
        closing = []
        for key, (pool, used_at) in self._pools.items():
            if surplus <= 0 and used_at > now - self._expiry_s:
                break  # the rest were used more recently still
            if key != current and all(connection.is_idle() for connection in pool.connections):
                closing.append(key)
                surplus -= 1
        return [self._pools.pop(key)[0] for key in closing]

    def connection_count(self) -> int:
        return sum(len(pool.connections) for pool, _ in self._pools.values())

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool, _ in pools:
            await pool.aclose()

    async def __aenter__(self) -> OriginPools:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        await self.aclose()
