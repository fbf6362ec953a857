"""The `newsray` command: thin click commands over cluster.lifecycle and cluster.store."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from cluster.settings import Settings, SettingsError, load_settings

# Piped output (scripts, logs, tests) gets wide lines instead of tables wrapped at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 240)
T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _database_url(settings: Settings) -> str:
    from cluster.services import EmbeddedPostgres

    if settings.database_url:
        return settings.database_url
    embedded = EmbeddedPostgres(settings.resolved_data_dir)
    if not embedded.is_running():
        raise click.ClickException("PostgreSQL is not running: start everything with `newsray up`")
    return embedded.url


def _with_pool(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from cluster.db import create_pool, migrate

    async def run() -> T:
        url = _database_url(settings)
        await migrate(url)
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


@click.group()
def main() -> None:
    """newsray: a self-hosted, personalized news aggregator on Ray."""


@main.command()
@click.option("--demo", is_flag=True, help="Also serve the bundled sample feeds and subscribe to them.")
def up(demo: bool) -> None:
    """Start services, Ray, the Serve app and the crawl scheduler."""
    from cluster.lifecycle import up as lifecycle_up

    settings = _settings()
    started = time.monotonic()
    report = lifecycle_up(settings, demo=demo, log=lambda text: console.print(f"[dim]{text}[/dim]"))
    console.print(f"[green]newsray is up[/green] in {time.monotonic() - started:.0f} s")
    if report.migrations_applied:
        console.print(f"  migrations applied: {', '.join(f'{v:04d}' for v in report.migrations_applied)}")
    if report.default_sources_added:
        console.print(f"  default sources loaded: {report.default_sources_added}")
    if report.demo_feeds:
        console.print(f"  demo feeds: {len(report.demo_feeds)} from the bundled sample server")
    console.print(f"  reader:    [bold]{report.reader_url}[/bold]")
    if report.dashboard_url:
        console.print(f"  dashboard: [bold]{report.dashboard_url}[/bold]  (token: `ray get-auth-token`)")
    console.print(f"  ray:       {report.ray_address}   (export RAY_AUTH_MODE=token for the ray CLI)")


@main.command()
def down() -> None:
    """Stop everything `newsray up` started (data is kept)."""
    from cluster.lifecycle import down as lifecycle_down

    lifecycle_down(_settings(), log=console.print)


@main.command()
def status() -> None:
    """Report on each part; exits 1 when a part is down."""
    from cluster.lifecycle import status as lifecycle_status

    report = lifecycle_status(_settings())
    table = Table("part", "state", "detail")
    for part, info in report.items():
        table.add_row(part, "[green]ok[/green]" if info["ok"] else "[red]down[/red]", str(info["detail"]))
    console.print(table)
    sys.exit(0 if all(info["ok"] for info in report.values()) else 1)


@main.command()
def migrate() -> None:
    """Apply pending database migrations."""
    from cluster.db import migrate as run_migrations

    applied = asyncio.run(run_migrations(_database_url(_settings())))
    console.print(f"applied: {', '.join(f'{v:04d}' for v in applied)}" if applied else "schema is up to date")


@main.command()
@click.option("--all", "force", is_flag=True, help="Crawl every enabled source, due or not.")
def crawl(force: bool) -> None:
    """Crawl due sources now (one round), with a progress bar."""
    import ray
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cluster import components
    from cluster.lifecycle import ray_ports
    from cluster.ray_cluster import connect, head_address

    settings = _settings()
    address = settings.ray_address or head_address(ray_ports(settings))
    connect(address)
    scheduler = components.load(components.SCHEDULER_FACTORY)()
    round_id = ray.get(scheduler.start_round.remote(force))
    state: dict[str, Any] = {}
    with Progress(TextColumn("crawling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[detail]}"), console=console) as progress:
        task = progress.add_task("crawl", total=None, detail="")
        while not state.get("finished"):
            state = ray.get(scheduler.round_status.remote(round_id)) or {"finished": True}
            progress.update(task, total=state.get("total") or None, completed=state.get("done", 0),
                            detail=f"{state.get('inserted', 0)} new, {state.get('failed', 0)} failed")
            if not state.get("finished"):
                time.sleep(0.25)
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(state.get("errors", {}).items()))
    console.print(f"{state.get('total', 0)} sources, {state.get('inserted', 0)} new articles, "
                  f"{state.get('updated', 0)} updated, {state.get('not_modified', 0)} not modified, "
                  f"{state.get('failed', 0)} failed{f' ({errors})' if errors else ''}")


@main.group()
def sources() -> None:
    """Add, list, import and export sources."""


@sources.command("add")
@click.argument("url")
@click.option("--kind", type=click.Choice(["feed", "site"]), default=None,
              help="Skip discovery and add the URL as this kind.")
@click.option("--title", default=None)
@click.option("--category", default=None)
def sources_add(url: str, kind: str | None, title: str | None, category: str | None) -> None:
    """Subscribe by URL: a feed, or a site whose feed is discovered (else it is scraped as a site)."""
    from cluster import components
    from cluster.store.sources import NewSource, add_source
    from cluster.urls import normalize_source_url

    settings = _settings()
    try:
        normalized = normalize_source_url(url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if kind is None:
        policy = components.load(components.FETCH_POLICY)(settings)
        try:
            found = asyncio.run(components.load(components.DISCOVER_FEED)(normalized, policy))
        except Exception as exc:  # noqa: BLE001 - fetch errors carry their own clear message
            raise click.ClickException(f"could not reach {normalized}: {exc}") from None
        normalized, kind, title = found.url, found.kind, title or found.title
        console.print(f"discovered a {found.kind} ({found.how}): {found.url}")
    source, created = _with_pool(settings, lambda pool: add_source(
        pool, NewSource(url=normalized, kind=kind, title=title, category=category)))  # type: ignore[arg-type]
    console.print(f"{'added' if created else 'already present'}: #{source.id} {source.url} ({source.kind})")


@sources.command("list")
def sources_list() -> None:
    """Every source with its health."""
    from cluster.store.sources import list_sources

    rows = _with_pool(_settings(), lambda pool: list_sources(pool, limit=100000))
    table = Table("id", "kind", "title / url", "enabled", "status", "errors", "added", "last success", "last error")
    for s in rows:
        table.add_row(
            str(s.id), s.kind, (s.title or "") + "\n" + s.url, "yes" if s.enabled else "[red]no[/red]",
            str(s.last_status or "-"), str(s.consecutive_errors), str(s.articles_added),
            s.last_success_at.strftime("%Y-%m-%d %H:%M") if s.last_success_at else "-",
            (s.last_error or "")[:80],
        )
    console.print(table)
    console.print(f"{len(rows)} sources")


@sources.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def sources_import(path: str) -> None:
    """Import an OPML file; reports added, skipped (duplicates) and rejected."""
    from cluster.opml import OpmlError, parse_opml
    from cluster.store.sources import add_sources

    try:
        parsed = parse_opml(Path(path).read_bytes())
    except OpmlError as exc:
        raise click.ClickException(str(exc)) from None
    added = _with_pool(_settings(), lambda pool: add_sources(pool, parsed.sources))
    console.print(f"added {added}, skipped {len(parsed.sources) - added} (already present), "
                  f"rejected {len(parsed.rejected)}")
    for url, reason in parsed.rejected:
        console.print(f"  rejected {url}: {reason}")


@sources.command("export")
def sources_export() -> None:
    """Write every source as OPML to standard output."""
    from cluster.opml import to_opml
    from cluster.store.sources import NewSource, list_sources

    rows = _with_pool(_settings(), lambda pool: list_sources(pool, limit=100000))
    click.echo(to_opml([NewSource(s.url, s.kind, s.title, s.site_url, s.language, s.category) for s in rows]), nl=False)


def _set_enabled(source_id: int, enabled: bool) -> None:
    from cluster.store.sources import set_enabled

    if not _with_pool(_settings(), lambda pool: set_enabled(pool, source_id, enabled)):
        raise click.ClickException(f"no source #{source_id}")
    console.print(f"source #{source_id} {'enabled' if enabled else 'disabled'}")


@sources.command("enable")
@click.argument("source_id", type=int)
def sources_enable(source_id: int) -> None:
    """Re-enable a source (clears its error streak, due now)."""
    _set_enabled(source_id, True)


@sources.command("disable")
@click.argument("source_id", type=int)
def sources_disable(source_id: int) -> None:
    """Stop crawling a source."""
    _set_enabled(source_id, False)


from cluster.cli_users import users  # noqa: E402 - registered last, after `main` exists

main.add_command(users)

if __name__ == "__main__":
    main()
