"""The Serve application: the Api ingress, its builder, and a helper that deploys it.

    serve deploy deployments/serve.yaml          # on a running cluster
    deployments.app:build_app                    # import path for `serve run` / configs

The recipe is DESIGN.md's "Serving fast": HAProxy in front (flags in the environment of
`ray start`, see cluster.ray_cluster), two light replicas that each take 100 requests at
once, and no access log. Beside the ingress, one QueryEncoder replica holds the embedding
model for semantic search; the Api reaches it through a handle.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import cast

import httpx
from fastapi import FastAPI
from ray import serve
from ray.serve import Application, Deployment
from ray.serve.handle import DeploymentHandle

from deployments.api import create_app
from deployments.backends import Backends
from deployments.query_encoder import QUERY_ENCODER_NUM_CPUS, QueryEncoder
from deployments.query_encoding import handle_encoder

APP_NAME = "newsray"
ROUTE_PREFIX = "/"
DEFAULT_NUM_REPLICAS = 2
# Every open connection (and, later, every WebSocket) holds a slot; Serve's default of 5
# collapsed under load in DESIGN.md's measurements.
MAX_ONGOING_REQUESTS = 100
# Light: it waits on PostgreSQL. A whole CPU per replica would not schedule on 2 cores.
API_NUM_CPUS = 0.1
DEFAULT_DEPLOY_TIMEOUT_S = 180.0
HEALTH_POLL_INTERVAL_S = 0.25


# No app is given to serve.ingress: each replica builds its own FastAPI app when it starts
# (__serve_build_asgi_app__, after the constructor got its handles), so importing this module
# builds nothing and pickles no app.
@serve.deployment(
    name="Api",
    num_replicas=DEFAULT_NUM_REPLICAS,
    max_ongoing_requests=MAX_ONGOING_REQUESTS,
    ray_actor_options={"num_cpus": API_NUM_CPUS},
    # A log line per request costs more CPU than the request itself at these rates.
    logging_config={"enable_access_log": False, "log_level": "WARNING"},
)
@serve.ingress()
class Api:
    """The HTTP ingress: the REST API, /health and the web pages, reading the store directly
    (a DeploymentHandle hop would cost ~1.8 ms of CPU per request on the hot paths). Only a
    search query that Redis has no vector for goes to the QueryEncoder."""

    def __init__(self, query_encoder: DeploymentHandle | None = None) -> None:
        self._query_encoder = query_encoder

    def __serve_build_asgi_app__(self) -> FastAPI:
        if self._query_encoder is None:  # bound alone: the model loads in this replica
            return create_app()
        return create_app(backends=Backends(encode_query=handle_encoder(self._query_encoder)))


def _num_replicas(value: object) -> int:
    try:
        count = int(str(value))
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"deployments: args.num_replicas must be a positive integer, got {value!r}")
    return count


def _env_vars(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("deployments: args.env must be a mapping of variable names to values")
    return {str(key): str(item) for key, item in value.items()}


def _with_env(deployment: Deployment, num_cpus: float, env: dict[str, str] | None,
              **options: object) -> Deployment:
    if env:
        options["ray_actor_options"] = {"num_cpus": num_cpus, "runtime_env": {"env_vars": env}}
    return deployment.options(**options) if options else deployment  # type: ignore[arg-type]


def build_app(args: Mapping[str, object] | None = None) -> Application:
    """The newsray Serve application: the Api ingress, given a handle to the QueryEncoder.

    args (from a Serve config's `args:` or a caller): `num_replicas` overrides the ingress's
    replica count; `env` (a mapping) becomes every replica's environment variables, e.g. the
    NEWSRAY_DATABASE_URL of external services or the NEWSRAY_ENRICH_MODEL the articles were
    embedded with.
    """
    args = args or {}
    env = _env_vars(args["env"]) if args.get("env") else None
    api_options: dict[str, object] = {}
    if "num_replicas" in args:
        api_options["num_replicas"] = _num_replicas(args["num_replicas"])
    # The decorators turned the classes into Deployments; type checkers still see the classes.
    encoder = _with_env(cast(Deployment, QueryEncoder), QUERY_ENCODER_NUM_CPUS, env).bind()
    return _with_env(cast(Deployment, Api), API_NUM_CPUS, env, **api_options).bind(encoder)


def wait_until_healthy(url: str, timeout_s: float) -> None:
    """Poll GET /health until it answers 200, or raise with the last answer seen."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(f"{url}/health")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(HEALTH_POLL_INTERVAL_S)
    raise TimeoutError(f"deployments: {url}/health not ok within {timeout_s:.0f} s (last: {last})")


def _serving_address(requested_host: str, requested_port: int) -> tuple[str, int]:
    """Where Serve actually listens: a Serve instance started earlier on this cluster keeps
    its own http_options (serve.start only warns), so ask the controller."""
    from ray.serve.context import _get_global_client  # no public accessor for http_options

    client = _get_global_client()
    if client is None:  # serve.start() just ran; a None here is a Serve bug, not ours
        return requested_host, requested_port
    config = client.http_config
    host = config.host or requested_host
    # With HAProxy the proxy binds 0.0.0.0 unless told otherwise; we always pass a host, so
    # "0.0.0.0" here means someone else's Serve: loopback still reaches it.
    return ("127.0.0.1" if host in ("0.0.0.0", "::") else host), int(config.port or requested_port)


def deploy(
    http_host: str = "127.0.0.1",
    http_port: int = 8000,
    env: Mapping[str, str] | None = None,
    num_replicas: int | None = None,
    timeout_s: float = DEFAULT_DEPLOY_TIMEOUT_S,
) -> str:
    """Start Serve (if needed) and run the app on a connected Ray cluster; return its base URL
    once /health answers 200."""
    serve.start(http_options={"host": http_host, "port": http_port})
    args: dict[str, object] = {}
    if env:
        args["env"] = dict(env)
    if num_replicas is not None:
        args["num_replicas"] = num_replicas
    serve.run(build_app(args), name=APP_NAME, route_prefix=ROUTE_PREFIX, blocking=False)
    host, port = _serving_address(http_host, http_port)
    url = f"http://{host}:{port}"
    wait_until_healthy(url, timeout_s)
    return url
