"""Run the sample feed server in the foreground: ``python -m cluster.samplefeeds``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from cluster.samplefeeds.server import start_sample_server


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cluster.samplefeeds",
        description="Serve newsray's bundled sample news feeds over HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8787, help="port to bind, 0 for any free one (default: %(default)s)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # Turn SIGTERM (e.g. from a process manager) into the same clean exit as Ctrl-C.
        stop.set()

    signal.signal(signal.SIGTERM, on_sigterm)
    with start_sample_server(args.host, args.port) as server:
        print(f"Serving sample feeds at {server.base_url}/", flush=True)
        print(f"OPML index: {server.opml_url}")
        for url in server.feed_urls:
            print(f"  {url}")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            # Short waits keep the main thread responsive to signals.
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("Sample feed server stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
