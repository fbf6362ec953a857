"""The `newsray` CLI against the session's real database, servers and Ray cluster."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from cluster.cli import main
from cluster.samplefeeds import SampleFeedServer


def newsray(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code != 0
    return result.output



@pytest.fixture
def empty_db(db: asyncpg.Pool) -> asyncpg.Pool:
    return db


def test_sources_add_discovers_the_feed_and_lists_it(empty_db: asyncpg.Pool, sample_server: SampleFeedServer) -> None:
    output = newsray("sources", "add", sample_server.base_url + "/")
    assert "discovered a feed (link)" in output and "added: #1" in output
    again = newsray("sources", "add", sample_server.base_url + "/")
    assert "already present: #1" in again
    listed = newsray("sources", "list")
    assert "1 sources" in listed and sample_server.base_url in listed


def test_sources_add_rejects_bad_and_unreachable_urls(empty_db: asyncpg.Pool, closed_port: int) -> None:
    assert "url:" in fails("sources", "add", "ftp://example.org/feed")
    assert "could not reach" in fails("sources", "add", f"http://127.0.0.1:{closed_port}/")


def test_opml_import_reports_and_export_round_trips(empty_db: asyncpg.Pool, tmp_path: Path,
                                                    sample_server: SampleFeedServer) -> None:
    opml = tmp_path / "in.opml"
    feeds = "".join(f'<outline type="rss" text="f{i}" xmlUrl="{url}"/>' for i, url in enumerate(sample_server.feed_urls))
    opml.write_text(f'<?xml version="1.0"?><opml version="2.0"><head/><body><outline text="News">{feeds}'
                    f'<outline type="rss" text="bad" xmlUrl="ftp://nope/feed"/></outline></body></opml>')
    first = newsray("sources", "import", str(opml))
    assert f"added {len(sample_server.feed_urls)}, skipped 0" in first and "rejected 1" in first
    second = newsray("sources", "import", str(opml))
    assert f"added 0, skipped {len(sample_server.feed_urls)}" in second
    exported = newsray("sources", "export")
    round_trip = tmp_path / "out.opml"
    round_trip.write_text(exported)
    assert f"added 0, skipped {len(sample_server.feed_urls)}" in newsray("sources", "import", str(round_trip))
    assert all(url in exported for url in sample_server.feed_urls) and 'text="News"' in exported


def test_disable_and_enable(empty_db: asyncpg.Pool, sample_server: SampleFeedServer) -> None:
    newsray("sources", "add", "--kind", "feed", sample_server.feed_urls[0])
    assert "source #1 disabled" in newsray("sources", "disable", "1")
    assert "source #1 enabled" in newsray("sources", "enable", "1")
    assert "no source #99" in fails("sources", "enable", "99")


def test_crawl_reports_a_round(ray_cluster: str, empty_db: asyncpg.Pool, sample_server: SampleFeedServer) -> None:
    for url in sample_server.feed_urls[:3]:
        newsray("sources", "add", "--kind", "feed", url)
    output = newsray("crawl")
    assert "3 sources" in output and "0 failed" in output
    assert "3 sources, 0 new articles" in newsray("crawl", "--all")


def test_migrate_is_idempotent(empty_db: asyncpg.Pool) -> None:
    assert "schema is up to date" in newsray("migrate")
