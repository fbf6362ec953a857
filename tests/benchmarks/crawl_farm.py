"""Benchmark: crawl a local feed farm with the real scheduler, crawlers, PostgreSQL and Redis.

    .venv/bin/python tests/benchmarks/crawl_farm.py [--feeds 10000 --items 20 --hosts 100 --json out.json]

One run, one machine, nothing mocked:

* a feed farm in its own process (a raw asyncio HTTP/1.1 server on uvloop, so its own CPU stays
  small next to the crawler's) listening on 127.0.1.1 ... 127.0.1.N, same port: F feeds of I items
  with deterministic content (80% RSS 2.0, 20% Atom 1.0, HTML descriptions, some full content),
  gzip-encoded, with ETag and Last-Modified (conditional GETs get 304); 5% of the feeds are faulty,
  with every fault in turn: 404, 410, 500, 503, malformed XML, an HTML page, a slow drip that
  outlasts the fetch timeout, 429 with a long Retry-After, a gzip bomb and a redirect loop;
* embedded PostgreSQL and Redis in a temporary data dir, a local Ray head started by
  cluster.ray_cluster.start_head, and one CrawlScheduler with its FeedCrawler pool;

then three forced rounds, each timed from the scheduler's start to its end:

  (a) the first full round (every entry new),
  (b) a refresh with nothing changed (every healthy feed answers 304),
  (c) a refresh after 20% of the feeds got 2 new items,

and (d) parse-only throughput of the same feed bytes in this one process (actors.parse, and
feedparser alone on a sample), the baseline the crawl is compared with. Afterwards every healthy
item must be stored exactly once (a set comparison of (source, guid) and a duplicates query),
and the crawler actors report their peak RSS.

Settings, and why: politeness pauses are off (host_delay_s=0: the farm is our own server) and
four requests may be in flight per host (host_concurrency=4: a slow-drip feed then blocks one
lane, not its host); the fetch timeout is 1 s so the slow drips end (a body still arriving at the
deadline is not retried, so each costs its lane about 1 s; a 503 is retried three times, up to
3.5 s); the full-content pass is off
(NEWSRAY_FULL_CONTENT=false): it fetches article pages, which the farm does not serve, and it
is not what this benchmark measures. Targets on the 2-core machine: (a) >= 250 feeds/s,
(b) >= 1,000 feeds/s, (c) >= 500 feeds/s, crawler actors <= 1.5 GB RSS together, nothing lost
or duplicated. Everything started is stopped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import bench_support  # noqa: E402 - a sibling script module
from bench_support import local_services, ray_head, stop_process  # noqa: E402

FAULTS = ("404", "410", "500", "503", "malformed", "html", "slow_drip", "429", "gzip_bomb", "redirect_loop")
FAULT_FRACTION = 0.05
BUMP_EVERY = 5  # every fifth healthy feed gets new items before round (c): 20%
NEW_ITEMS = 2
FETCH_TIMEOUT_S = 1.0
HOST_CONCURRENCY = 4
T0 = datetime(2026, 1, 1, tzinfo=UTC)
ITEM_SPACING = timedelta(minutes=37)
DRIP_INTERVAL_S = 0.25
DRIP_MAX_S = 30.0  # a drip ends by itself, whatever the client does
BOMB_BYTES = 11 * 1024 * 1024  # decompresses past the fetch policy's 10 MB cap
FARM_READY_S = 120.0
FARM_MAX_LIFETIME_S = 3 * 3600.0
ROUND_TIMEOUT_S = 900.0
PARSE_SAMPLE = 2000  # feeds parsed in (d); feedparser alone gets a tenth of them
TARGETS = {"a": 250.0, "b": 1000.0, "c": 500.0}
MEMORY_TARGET_BYTES = 1.5 * 1024**3

LEAD = ("Officials said on {day} that the plan would go ahead despite objections from residents, "
        "who say the new road cuts the village in two &amp; leaves the school without a safe crossing.")
BODY = ("<p>{lead}</p><p>The council will publish the final route in spring. “We listened,” a spokesperson "
        "said, adding that 40% of the budget goes to noise barriers.</p>"
        '<p><img src="/img/{n}/{k}.jpg" alt="Map of the route"> <a href="/articles/{n}/{k}.html">Read more</a></p>')
TURKISH = "Belediye açıklamasına göre yeni yol çalışması Şubat ayında başlayacak; öğrenciler için güvenli geçiş yapılacak."


def log(message: str) -> None:
    print(f"[farm-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- farm content


@dataclass(frozen=True)
class FarmSpec:
    feeds: int
    items: int
    hosts: int
    seed: int = 1

    def host(self, n: int) -> str:
        return f"127.0.1.{n % self.hosts + 1}"

    def path(self, n: int) -> str:
        return f"/feeds/{n}.{'atom' if self.is_atom(n) else 'xml'}"

    def url(self, n: int, port: int) -> str:
        return f"http://{self.host(n)}:{port}{self.path(n)}"

    @staticmethod
    def is_atom(n: int) -> bool:
        return n % 5 == 4

    def faults(self) -> dict[int, str]:
        """Which feeds are faulty and how: spread over hosts, every kind in turn."""
        rng = random.Random(self.seed)
        chosen = sorted(rng.sample(range(self.feeds), round(self.feeds * FAULT_FRACTION)))
        return {n: FAULTS[i % len(FAULTS)] for i, n in enumerate(chosen)}

    def bumped(self, faults: dict[int, str]) -> list[int]:
        return [n for n in range(self.feeds) if n % BUMP_EVERY == 0 and n not in faults]

    def item_numbers(self, generation: int) -> range:
        """Items a feed lists (newest first in the document): each generation adds NEW_ITEMS."""
        return range(NEW_ITEMS * generation, NEW_ITEMS * generation + self.items)

    def guid(self, n: int, k: int) -> str:
        return f"urn:farm:{n}:{k}" if self.is_atom(n) else f"farm:{n}:{k}"


def feed_document(spec: FarmSpec, n: int, generation: int) -> bytes:
    """One feed's bytes; the same (spec, n, generation) always gives the same bytes."""
    numbers = list(reversed(spec.item_numbers(generation)))
    turkish = n % 7 == 3
    if spec.is_atom(n):
        return _atom(spec, n, numbers, turkish).encode()
    return _rss(spec, n, numbers, turkish).encode()


def _when(k: int) -> datetime:
    return T0 + k * ITEM_SPACING


def _lead(n: int, k: int, turkish: bool) -> str:
    return escape(TURKISH) if turkish else LEAD.format(day=_when(k).strftime("%A"))


def _rss(spec: FarmSpec, n: int, numbers: list[int], turkish: bool) -> str:
    items = []
    for k in numbers:
        body = BODY.format(lead=_lead(n, k, turkish), n=n, k=k)
        content = f"<content:encoded><![CDATA[{body}{body}]]></content:encoded>" if k % 3 == 0 else ""
        link = f"/articles/{n}/{k}.html" if n % 2 else f"https://www{n % spec.hosts}.farm.example/{n}/{k}?utm_source=rss"
        items.append(
            f"<item><title>Feed {n} story {k}: {'Yol çalışması' if turkish else 'Road plan'} &amp; the village</title>"
            f"<link>{escape(link)}</link><guid isPermaLink=\"false\">{spec.guid(n, k)}</guid>"
            f"<pubDate>{format_datetime(_when(k))}</pubDate><dc:creator>Reporter {k % 9}</dc:creator>"
            f"<category>Local</category><category>{'Gündem' if turkish else 'Transport'}</category>"
            f"<description>{escape(body)}</description>{content}</item>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>'
        f"<title>Farm feed {n}</title><link>https://www{n % spec.hosts}.farm.example/</link>"
        f"<description>Deterministic feed {n} of the crawl benchmark</description>"
        f"<language>{'tr' if turkish else 'en-us'}</language><ttl>60</ttl>"
        f'<atom:link rel="self" type="application/rss+xml" href="{spec.path(n)}"/>\n{"".join(items)}</channel></rss>\n'
    )


def _atom(spec: FarmSpec, n: int, numbers: list[int], turkish: bool) -> str:
    entries = []
    for k in numbers:
        body = BODY.format(lead=_lead(n, k, turkish), n=n, k=k)
        content = f'<content type="html">{escape(body + body)}</content>' if k % 3 == 0 else ""
        stamp = _when(k).isoformat().replace("+00:00", "Z")
        entries.append(
            f"<entry><title>Feed {n} story {k}: road plan &amp; the village</title>"
            f'<link rel="alternate" href="/articles/{n}/{k}.html"/><id>{spec.guid(n, k)}</id>'
            f"<published>{stamp}</published><updated>{stamp}</updated>"
            f"<author><name>Reporter {k % 9}</name></author><category term=\"Local\"/>"
            f'<summary type="html">{escape(body)}</summary>{content}</entry>\n'
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{"tr" if turkish else "en"}">'
        f"<title>Farm feed {n}</title><id>urn:farm:{n}</id><updated>{_when(numbers[0]).isoformat()}</updated>"
        f'<link rel="alternate" href="https://www{n % spec.hosts}.farm.example/"/><link rel="self" href="{spec.path(n)}"/>\n'
        f'{"".join(entries)}</feed>\n'
    )


# --------------------------------------------------------------------------- farm server


def _response(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Farm:
    """Every response rendered ahead of time, so a request costs a dictionary lookup."""

    def __init__(self, spec: FarmSpec) -> None:
        self.spec = spec
        self.faults = spec.faults()
        self.generation = [0] * spec.feeds
        self.bodies: dict[int, tuple[bytes, bytes, str, str]] = {}  # n -> (200 response, 304 response, etag, date)
        self.requests = 0
        self.statuses: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        bomb = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        self.bomb = b"".join([bomb.compress(bytes(1 << 20)) for _ in range(BOMB_BYTES >> 20)] + [bomb.flush()])
        for n in range(spec.feeds):
            if n not in self.faults:
                self.render(n)

    def render(self, n: int) -> None:
        generation = self.generation[n]
        etag = f'"f{n}-g{generation}"'
        modified = format_datetime(_when(self.spec.item_numbers(generation)[-1]), usegmt=True)
        kind = "application/atom+xml" if self.spec.is_atom(n) else "application/rss+xml"
        body = gzip.compress(feed_document(self.spec, n, generation), compresslevel=6, mtime=0)
        common = {"ETag": etag, "Last-Modified": modified, "Cache-Control": "max-age=60"}
        ok = _response("200 OK", {"Content-Type": f"{kind}; charset=utf-8", "Content-Encoding": "gzip", **common}, body)
        self.bodies[n] = (ok, _response("304 Not Modified", common), etag, modified)

    def bump(self) -> int:
        bumped = self.spec.bumped(self.faults)
        for n in bumped:
            self.generation[n] += 1
            self.render(n)
        return len(bumped)

    def answer(self, host: str, path: str, headers: dict[str, str]) -> tuple[bytes, str | None]:
        """The response bytes and, for a slow drip, the marker to drip instead."""
        if path.startswith("/_control/"):
            return self.control(path), None
        name = path.rsplit("/", 1)[-1].split(".", 1)[0]
        if not name.isdigit() or not path.startswith(("/feeds/", "/loop/")):
            return self.count("404", _response("404 Not Found", {"Content-Type": "text/plain"}, b"no such feed")), None
        n = int(name)
        if n >= self.spec.feeds or self.spec.host(n) != host:
            return self.count("404", _response("404 Not Found", {"Content-Type": "text/plain"}, b"wrong host")), None
        fault = self.faults.get(n)
        if fault is not None:
            return self.fault(n, fault, path)
        ok, not_modified, etag, modified = self.bodies[n]
        match = headers.get("if-none-match")
        if match == etag or (match is None and headers.get("if-modified-since") == modified):
            return self.count("304", not_modified), None
        return self.count("200", ok), None

    def fault(self, n: int, fault: str, path: str) -> tuple[bytes, str | None]:
        plain = {"Content-Type": "text/plain"}
        if fault in ("404", "410", "500", "503"):
            reason = {"404": "Not Found", "410": "Gone", "500": "Internal Server Error", "503": "Service Unavailable"}
            return self.count(fault, _response(f"{fault} {reason[fault]}", plain, b"fault")), None
        if fault == "429":
            return self.count("429", _response("429 Too Many Requests", {**plain, "Retry-After": "3600"})), None
        if fault == "malformed":
            body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title><description>a < b & c'
            return self.count("200", _response("200 OK", {"Content-Type": "application/rss+xml"}, body)), None
        if fault == "html":
            body = b"<!DOCTYPE html><html><head><title>Not a feed</title></head><body><p>Moved</p></body></html>"
            return self.count("200", _response("200 OK", {"Content-Type": "text/html"}, body)), None
        if fault == "gzip_bomb":
            headers = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
            return self.count("200", _response("200 OK", headers, self.bomb)), None
        if fault == "redirect_loop":
            target = f"/loop/{n}" if path.startswith("/feeds/") else self.spec.path(n)
            return self.count("302", _response("302 Found", {"Location": target}, b"")), None
        self.count("200", b"")
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 100000\r\n\r\n"
                b'<?xml version="1.0"?><rss version="2.0">', "drip")

    def count(self, status: str, response: bytes) -> bytes:
        self.statuses[status] += 1
        return response

    def control(self, path: str) -> bytes:
        parts = urlsplit(path)
        if parts.path == "/_control/bump":
            result: dict[str, Any] = {"bumped": self.bump()}
        elif parts.path == "/_control/stats":
            result = {"requests": self.requests, "statuses": dict(self.statuses),
                      "max_in_flight_per_host": max(self.max_in_flight.values(), default=0)}
            if parse_qs(parts.query).get("reset"):
                self.statuses.clear()
                self.max_in_flight.clear()
                self.requests = 0
        else:
            result = {"error": "unknown control"}
        return _response("200 OK", {"Content-Type": "application/json"}, json.dumps(result).encode())


class FarmProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, GET only; enough for httpx and nothing more."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.host = ""
        self.drip: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        self.host = str(transport.get_extra_info("sockname")[0])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.drip is not None:
            self.drip.cancel()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.drip is None and (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4:]
            request_line, *header_lines = head.split("\r\n")
            method, _, rest = request_line.partition(" ")
            path = rest.rsplit(" ", 1)[0]
            headers = {}
            for line in header_lines:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            self.handle(method, path, headers)
        if len(self.buffer) > 65536 and self.transport is not None:
            self.transport.close()  # no request head is that long

    def handle(self, method: str, path: str, headers: dict[str, str]) -> None:
        assert self.transport is not None
        farm = self.farm
        farm.requests += 1
        farm.in_flight[self.host] += 1
        farm.max_in_flight[self.host] = max(farm.max_in_flight[self.host], farm.in_flight[self.host])
        if method != "GET":
            self.transport.write(_response("405 Method Not Allowed", {"Allow": "GET"}))
            farm.in_flight[self.host] -= 1
            return
        response, drip = farm.answer(self.host, path, headers)
        self.transport.write(response)
        if drip is None:
            farm.in_flight[self.host] -= 1
        else:
            self.drip = asyncio.get_running_loop().create_task(self.dripping())

    async def dripping(self) -> None:
        try:
            deadline = time.monotonic() + DRIP_MAX_S
            while time.monotonic() < deadline and self.transport is not None and not self.transport.is_closing():
                self.transport.write(b" ")
                await asyncio.sleep(DRIP_INTERVAL_S)
        finally:
            self.farm.in_flight[self.host] -= 1
            if self.transport is not None:
                self.transport.close()


async def serve_farm(spec: FarmSpec) -> None:
    farm = Farm(spec)
    loop = asyncio.get_running_loop()
    first = await loop.create_server(lambda: FarmProtocol(farm), spec.host(0), 0, backlog=4096)
    port = first.sockets[0].getsockname()[1]
    servers = [first]
    for index in range(1, spec.hosts):
        servers.append(await loop.create_server(lambda: FarmProtocol(farm), spec.host(index), port, backlog=4096))
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    parent = os.getppid()
    deadline = time.monotonic() + FARM_MAX_LIFETIME_S
    # Bounded, and gone with the benchmark even if that was killed without cleaning up.
    while not stop.is_set() and os.getppid() == parent and time.monotonic() < deadline:
        try:
            await asyncio.wait_for(stop.wait(), timeout=2.0)
        except TimeoutError:
            pass
    for server in servers:
        server.close()


def farm_main(spec_json: str) -> None:
    spec = FarmSpec(**json.loads(spec_json))
    try:
        import uvloop

        uvloop.run(serve_farm(spec))
    except ImportError:
        asyncio.run(serve_farm(spec))


@contextmanager
def farm_process(spec: FarmSpec, log_path: Path) -> Iterator[int]:
    command = [sys.executable, __file__, "--serve-farm", json.dumps(asdict(spec))]
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
                                   text=True)
    try:
        assert process.stdout is not None
        port = _read_ready(process, FARM_READY_S)
        yield port
    finally:
        stop_process(process)


def _read_ready(process: subprocess.Popen[str], timeout_s: float) -> int:
    import selectors

    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not selector.select(timeout=min(1.0, max(0.0, deadline - time.monotonic()))):
            if process.poll() is not None:
                raise RuntimeError(f"farm-bench: the farm exited with {process.returncode}")
            continue
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("farm-bench: the farm closed its output before it was ready")
        if line.startswith("READY "):
            return int(line.split()[1])
    raise TimeoutError(f"farm-bench: the farm was not ready within {timeout_s:.0f} s")


def farm_control(spec: FarmSpec, port: int, what: str) -> dict[str, Any]:
    import httpx

    response = httpx.get(f"http://{spec.host(0)}:{port}/_control/{what}", timeout=120, trust_env=False)
    response.raise_for_status()
    return dict(response.json())


# --------------------------------------------------------------------------- cluster


async def add_farm_sources(database_url: str, spec: FarmSpec, port: int) -> int:
    from cluster.db import create_pool, migrate
    from cluster.store.sources import NewSource, add_sources

    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        return await add_sources(pool, [NewSource(url=spec.url(n, port)) for n in range(spec.feeds)])
    finally:
        await pool.close()


# --------------------------------------------------------------------------- measuring


@dataclass
class RoundResult:
    name: str
    feeds: int
    seconds: float
    feeds_per_s: float
    articles_inserted: int
    articles_per_s: float
    not_modified: int
    failed: int
    errors: dict[str, int]
    redispatched: int
    cpu: dict[str, float] = field(default_factory=dict)  # cores busy, by kind of process
    # CPU seconds per feed of this run's processes: unlike feeds/s, not skewed by other work on
    # the machine; 2 / cpu_s_per_feed is what two otherwise idle cores would manage.
    cpu_s_per_feed: float = 0.0
    projected_feeds_per_s_2_cores: float = 0.0


def _process_label(proc: Any) -> str:
    name = proc.info.get("name") or "?"
    cmdline = " ".join(proc.info.get("cmdline") or [])[:300]
    for marker, label in (("FeedCrawler", "crawler actors"), ("CrawlScheduler", "scheduler actor"),
                          ("--serve-farm", "farm"), ("postgres", "postgres"), ("redis", "redis"),
                          ("gcs_server", "ray gcs"), ("raylet", "raylet"), ("crawl_farm.py", "driver")):
        if marker in name or marker in cmdline:
            return label
    return "ray other" if name.startswith("ray") or "ray" in cmdline else name


def _ours(proc: Any, marker: bytes, data_dir: str) -> bool:
    """Started by this run: our environment marker, or PostgreSQL (its server scrubs the
    environment, but the postmaster names our data dir and the backends are its children)."""
    if proc.pid == os.getpid():
        return True
    try:
        if marker in Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0"):
            return True
    except OSError:
        return False
    for candidate in (proc, proc.parent()):
        if candidate is not None and any(data_dir in part for part in (candidate.cmdline() or [])):
            return True
    return False


@contextmanager
def cpu_use(into: dict[str, float]) -> Iterator[None]:
    """Cores busy by kind of process while the block ran; everything not started by this run
    (other work on the machine) is summed up as "not this benchmark"."""
    import psutil

    data_dir = os.environ.get("NEWSRAY_DATA_DIR", "-")
    marker = f"NEWSRAY_DATA_DIR={data_dir}".encode()

    def snapshot() -> dict[int, tuple[str, float]]:
        taken = {}
        for proc in psutil.process_iter(attrs=["name", "cmdline", "cpu_times"]):
            times = proc.info.get("cpu_times")
            if times is None:
                continue
            try:
                label = _process_label(proc) if _ours(proc, marker, data_dir) else "not this benchmark"
            except psutil.Error:
                continue
            taken[proc.pid] = (label, times.user + times.system)
        return taken

    before = snapshot()
    started = time.monotonic()
    yield
    elapsed = max(time.monotonic() - started, 1e-9)
    totals: Counter[str] = Counter()
    for pid, (name, cpu) in snapshot().items():
        totals[name] += cpu - before.get(pid, (name, 0.0))[1]
    into.update({name: round(cpu / elapsed, 2) for name, cpu in totals.most_common(10) if cpu > 0.02})


@contextmanager
def py_spy(directory: Path | None, name: str) -> Iterator[None]:
    """Sample the crawler and scheduler actors with py-spy while the block runs (--py-spy DIR)."""
    if directory is None or shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None:
        yield
        return
    import psutil

    directory.mkdir(parents=True, exist_ok=True)
    marker = f"NEWSRAY_DATA_DIR={os.environ.get('NEWSRAY_DATA_DIR', '-')}".encode()
    targets = [p for p in psutil.process_iter(attrs=["cmdline"])
               if any(k in " ".join(p.info.get("cmdline") or [])[:80] for k in ("ray::FeedCrawler", "ray::CrawlScheduler"))
               and _ours(p, marker, "-")]
    spies = [subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(p.pid), "--rate", "100",
                               "--format", "raw", "--output", str(directory / f"{name}-{p.pid}.txt")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in targets]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
        for spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(timeout=10)


def wait_for_quiet(max_wait_s: float, busy_percent: float = 25.0) -> float:
    return bench_support.wait_for_quiet(max_wait_s, busy_percent, lambda busy: log(
        f"machine still {busy:.0f}% busy with other work: feeds/s will be skewed (CPU ms/feed less so)"))


def run_round(scheduler: Any, name: str, profile_dir: Path | None = None, quiet_wait_s: float = 0.0) -> RoundResult:
    if quiet_wait_s > 0:
        wait_for_quiet(quiet_wait_s)
    cpu: dict[str, float] = {}
    with cpu_use(cpu), py_spy(profile_dir, name):
        started = time.monotonic()
        status = _wait(scheduler.run_round.remote(True), ROUND_TIMEOUT_S)
        seconds = time.monotonic() - started
    result = RoundResult(
        name=name, feeds=int(status["total"]), seconds=round(seconds, 2),
        feeds_per_s=round(status["total"] / seconds, 1), articles_inserted=int(status["inserted"]),
        articles_per_s=round(status["inserted"] / seconds, 1), not_modified=int(status["not_modified"]),
        failed=int(status["failed"]), errors=dict(status["errors"]), redispatched=int(status["redispatched"]), cpu=cpu,
    )
    ours = sum(v for k, v in cpu.items() if k != "not this benchmark") * seconds
    result.cpu_s_per_feed = round(ours / max(1, result.feeds), 5)
    result.projected_feeds_per_s_2_cores = round(2 / result.cpu_s_per_feed, 1) if result.cpu_s_per_feed else 0.0
    log(f"round {name}: {result.feeds} feeds in {result.seconds:.1f} s = {result.feeds_per_s:,.0f} feeds/s, "
        f"{result.articles_inserted:,} articles ({result.articles_per_s:,.0f}/s), 304: {result.not_modified}, "
        f"errors {result.errors}; CPU {cpu}; {result.cpu_s_per_feed * 1000:.2f} ms CPU/feed")
    return result


def crawler_memory(scheduler: Any) -> dict[str, Any]:
    import ray

    crawlers = ray.get(scheduler.crawlers.remote(), timeout=60)
    stats = ray.get([c.stats.remote() for c in crawlers], timeout=60)
    return {"actors": len(stats), "peak_rss_bytes": sum(int(s["peak_rss_bytes"]) for s in stats),
            "rss_bytes": sum(int(s["rss_bytes"]) for s in stats), "per_actor": stats}


async def verify(database_url: str, spec: FarmSpec, port: int, faults: dict[int, str], generations: list[int]) -> dict[str, int]:
    """Every healthy item stored exactly once, nothing stored for a faulty feed."""
    import asyncpg

    expected: set[tuple[str, str]] = set()
    for n in range(spec.feeds):
        if n in faults:
            continue
        url = spec.url(n, port)
        for generation in range(generations[n] + 1):
            expected.update((url, spec.guid(n, k)) for k in spec.item_numbers(generation))
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT s.url, a.guid FROM articles a JOIN sources s ON s.id = a.source_id")
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT source_id, guid FROM articles GROUP BY 1, 2 HAVING count(*) > 1) d")
        disabled = await conn.fetchval("SELECT count(*) FROM sources WHERE NOT enabled")
    finally:
        await conn.close()
    stored = [(row["url"], row["guid"]) for row in rows]
    got = set(stored)
    return {"expected": len(expected), "stored": len(stored), "missing": len(expected - got),
            "unexpected": len(got - expected), "duplicate_rows": len(stored) - len(got),
            "duplicate_guids": int(duplicates), "disabled_sources": int(disabled)}


def parse_only(spec: FarmSpec, faults: dict[int, str], port: int) -> dict[str, Any]:
    """(d): the same feed bytes, parsed in this one process; feedparser alone on a tenth of them."""
    from actors.parse import FastPathDeclined, parse_feed

    healthy = [n for n in range(spec.feeds) if n not in faults][:PARSE_SAMPLE]
    documents = [(feed_document(spec, n, 0), spec.url(n, port),
                  "application/atom+xml" if spec.is_atom(n) else "application/rss+xml") for n in healthy]
    fast = 0
    for body, url, kind in documents:
        try:
            parse_feed(body, url, kind, parser="fast")
            fast += 1
        except FastPathDeclined:
            pass
    started, cpu_started = time.perf_counter(), time.process_time()
    entries = sum(len(parse_feed(body, url, kind).entries) for body, url, kind in documents)
    auto_s, auto_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    sample = documents[: max(1, len(documents) // 10)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for body, url, kind in sample:
        parse_feed(body, url, kind, parser="feedparser")
    feedparser_s, feedparser_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    result = {"feeds": len(documents), "entries": entries, "fast_path_share": round(fast / len(documents), 3),
              "feeds_per_s": round(len(documents) / auto_s, 1), "feeds_per_cpu_s": round(len(documents) / auto_cpu, 1),
              "feedparser_feeds": len(sample), "feedparser_feeds_per_s": round(len(sample) / feedparser_s, 1),
              "feedparser_feeds_per_cpu_s": round(len(sample) / feedparser_cpu, 1),
              "mean_bytes": round(sum(len(d[0]) for d in documents) / len(documents))}
    result["speedup"] = round(result["feeds_per_cpu_s"] / result["feedparser_feeds_per_cpu_s"], 1)
    log(f"parse-only: {result['feeds_per_s']:,.0f} feeds/s, {result['feeds_per_cpu_s']:,.0f} per CPU second "
        f"(fast path on {fast}/{len(documents)}); feedparser alone {result['feedparser_feeds_per_s']:,.0f} feeds/s, "
        f"{result['feedparser_feeds_per_cpu_s']:,.0f} per CPU second")
    return result


# --------------------------------------------------------------------------- report


def table(rounds: list[RoundResult], parse: dict[str, Any], memory: dict[str, Any], checks: dict[str, Any]) -> str:
    lines = ["| measurement | feeds | seconds | feeds/s | articles stored | articles/s | errors by kind | CPU ms/feed "
             "(this run's processes) | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    labels = {"a": "(a) first full round", "b": "(b) refresh, nothing changed (304)", "c": "(c) refresh, 20% +2 items"}
    for r in rounds:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) or "-"
        lines.append(f"| {labels[r.name]} | {r.feeds:,} | {r.seconds:.1f} | {r.feeds_per_s:,.0f} | {r.articles_inserted:,} "
                     f"| {r.articles_per_s:,.0f} | {errors} | {r.cpu_s_per_feed * 1000:.2f} "
                     f"| >= {TARGETS[r.name]:,.0f} feeds/s |")
    lines.append(f"| (d) parse only, one process | {parse['feeds']:,} | - | {parse['feeds_per_s']:,.0f} | - | - | - "
                 f"| {1000 / parse['feeds_per_cpu_s']:.2f} | feedparser alone: {parse['feedparser_feeds_per_s']:,.0f} "
                 f"feeds/s, {1000 / parse['feedparser_feeds_per_cpu_s']:.2f} ms/feed |")
    lines.append("")
    lines.append(f"crawler actors peak RSS: {memory['peak_rss_bytes'] / 2**20:,.0f} MiB over {memory['actors']} actors "
                 f"(target <= {MEMORY_TARGET_BYTES / 2**20:,.0f} MiB)")
    lines.append(f"crawl (a) / parse-only ratio: {checks['ratio_a_to_parse_only']:.2f} (feeds/s); CPU per feed, "
                 f"crawl (a) / parse only: {checks['cpu_ratio_a_to_parse_only']:.2f}")
    lines.append(f"CPU used by other work on the machine during the rounds (cores): "
                 f"{', '.join(str(r.cpu.get('not this benchmark', 0.0)) for r in rounds)}")
    lines.append(f"stored exactly once: {checks['verify']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--crawlers", type=int, default=0, help="FeedCrawler actors (default: one per CPU, at least 2)")
    parser.add_argument("--host-concurrency", type=int, default=HOST_CONCURRENCY)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data dir (for debugging)")
    parser.add_argument("--py-spy", type=Path, metavar="DIR", help="sample the actors with py-spy into DIR (profiling)")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="before each round, wait up to this many seconds for other work to finish (default 60)")
    parser.add_argument("--serve-farm", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


_STOP: list[int] = []


def _stop_on_sigterm() -> None:
    # Only noted here: an exception raised inside a blocking Ray call aborts the process before
    # any cleanup; _wait() turns the note into SystemExit between its short waits.
    def handler(signum: int, frame: object) -> None:
        _STOP.append(signum)

    signal.signal(signal.SIGTERM, handler)


def _wait(ref: Any, timeout_s: float) -> Any:
    """ray.get with a deadline, in short steps so that SIGTERM still leads to a clean stop."""
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _STOP:
            raise SystemExit(f"farm-bench: stopped by signal {_STOP[0]}")
        ready, _ = ray.wait([ref], timeout=1.0)
        if ready:
            return ray.get(ready[0])
    raise TimeoutError(f"farm-bench: no result within {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_farm:
        farm_main(args.serve_farm)
        return 0
    if not (1 <= args.feeds <= 100_000 and 1 <= args.items <= 200 and 1 <= args.hosts <= 254):
        raise SystemExit("farm-bench: --feeds 1..100000, --items 1..200, --hosts 1..254")
    _stop_on_sigterm()
    spec = FarmSpec(feeds=args.feeds, items=args.items, hosts=args.hosts)
    faults = spec.faults()
    crawlers = args.crawlers or max(2, os.cpu_count() or 2)
    log(f"{spec.feeds:,} feeds x {spec.items} items on {spec.hosts} hosts, {len(faults)} faulty; "
        f"{crawlers} crawler actors, host_concurrency {args.host_concurrency}, load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs")

    with local_services("nrf-", log, keep_data=args.keep_data) as (data_dir, settings, urls), ExitStack() as cleanup:
        log("rendering the farm")
        port = cleanup.enter_context(farm_process(spec, data_dir / "farm.log"))
        added = asyncio.run(add_farm_sources(urls.database_url, spec, port))
        log(f"farm on port {port}; {added:,} sources added")
        env = {
            **urls.as_env(), "NEWSRAY_DATA_DIR": str(data_dir), "NEWSRAY_LOAD_DEFAULT_SOURCES": "false",
            "NEWSRAY_CRAWL_ALLOWED_NETWORKS": "127.0.0.0/8", "NEWSRAY_FETCH_TIMEOUT_S": str(FETCH_TIMEOUT_S),
            "NEWSRAY_HOST_DELAY_S": "0", "NEWSRAY_HOST_CONCURRENCY": str(args.host_concurrency),
            "NEWSRAY_FULL_CONTENT": "false", "NEWSRAY_LOG_LEVEL": "WARNING",
            # Enrichment has its own benchmark; its micro-batches would share these two cores.
            "NEWSRAY_ENRICH_AUTO": "false",
        }
        cleanup.enter_context(ray_head(settings, env, num_cpus=os.cpu_count()))
        import ray

        from actors.scheduler import CrawlScheduler

        scheduler = CrawlScheduler.options(name="farm-bench-scheduler").remote(crawlers, 3600.0, args.host_concurrency, 0.0)
        ray.get([c.ping.remote() for c in ray.get(scheduler.crawlers.remote(), timeout=120)], timeout=120)
        rounds = [run_round(scheduler, "a", args.py_spy, args.quiet_wait),
                  run_round(scheduler, "b", args.py_spy, args.quiet_wait)]
        bumped = farm_control(spec, port, "bump")["bumped"]
        log(f"{bumped:,} feeds got {NEW_ITEMS} new items")
        rounds.append(run_round(scheduler, "c", args.py_spy, args.quiet_wait))
        memory = crawler_memory(scheduler)
        farm_stats = farm_control(spec, port, "stats")
        generations = [1 if n in set(spec.bumped(faults)) else 0 for n in range(spec.feeds)]
        checked = asyncio.run(verify(urls.database_url, spec, port, faults, generations))
        ray.kill(scheduler)
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait)
    parse = parse_only(spec, faults, port)

    by_name = {r.name: r for r in rounds}
    checks: dict[str, Any] = {
        **{f"{name}_feeds_per_s_at_least_{TARGETS[name]:.0f}": by_name[name].feeds_per_s >= TARGETS[name]
           for name in ("a", "b", "c")},
        "crawler_peak_rss_within_1_5_GiB": memory["peak_rss_bytes"] <= MEMORY_TARGET_BYTES,
        "nothing_lost_or_duplicated": checked["missing"] == 0 and checked["unexpected"] == 0
        and checked["duplicate_rows"] == 0 and checked["duplicate_guids"] == 0,
        "ratio_a_to_parse_only": round(by_name["a"].feeds_per_s / parse["feeds_per_s"], 3),
        "cpu_ratio_a_to_parse_only": round(by_name["a"].cpu_s_per_feed * parse["feeds_per_cpu_s"], 2),
        "verify": checked,
    }
    checks["all_targets_met"] = all(v for k, v in checks.items() if isinstance(v, bool))
    print(table(rounds, parse, memory, checks))
    print()
    for name, value in checks.items():
        print(f"{name}: {value}")
    if args.json:
        report = {
            "spec": asdict(spec), "faults": dict(Counter(faults.values())), "crawlers": crawlers,
            "host_concurrency": args.host_concurrency, "host_delay_s": 0.0, "fetch_timeout_s": FETCH_TIMEOUT_S,
            "cpus": os.cpu_count(), "python": platform.python_version(), "rounds": [asdict(r) for r in rounds],
            "parse_only": parse, "memory": memory, "farm": farm_stats, "checks": checks,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"results written to {args.json}")
    return 0 if checks["all_targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
