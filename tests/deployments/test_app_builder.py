"""deployments.app.build_app and deployments/serve.yaml, without a cluster (building an
Application is local; only serve.run needs Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve import Application, Deployment
from ray.serve.schema import ServeDeploySchema

from deployments.app import API_NUM_CPUS, DEFAULT_NUM_REPLICAS, MAX_ONGOING_REQUESTS, build_app
from deployments.query_encoder import QUERY_ENCODER_MAX_ONGOING_REQUESTS, QUERY_ENCODER_NUM_CPUS

SERVE_CONFIG = Path(__file__).resolve().parents[2] / "deployments" / "serve.yaml"


def test_defaults_follow_the_serving_fast_recipe() -> None:
    deployment = build_app()._bound_deployment
    assert deployment.name == "Api"
    assert deployment.num_replicas == DEFAULT_NUM_REPLICAS == 2
    assert deployment.ray_actor_options == {"num_cpus": API_NUM_CPUS}
    config = deployment._deployment_config
    assert config.max_ongoing_requests == MAX_ONGOING_REQUESTS == 100
    assert config.logging_config is not None
    assert config.logging_config["enable_access_log"] is False
    assert config.logging_config["log_level"] == "WARNING"


def encoder_of(app: Application) -> Deployment:
    """The deployment bound as the Api's constructor argument."""
    [encoder] = app._bound_deployment._replica_config.init_args
    assert isinstance(encoder, Application)
    return encoder._bound_deployment


def test_the_api_gets_one_light_query_encoder() -> None:
    encoder = encoder_of(build_app())
    assert encoder.name == "QueryEncoder" and encoder.num_replicas == 1
    # A fraction of a CPU: the 2-core cluster also runs two Api replicas, crawlers and enrichment.
    assert encoder.ray_actor_options == {"num_cpus": QUERY_ENCODER_NUM_CPUS} and QUERY_ENCODER_NUM_CPUS < 0.5
    assert encoder._deployment_config.max_ongoing_requests == QUERY_ENCODER_MAX_ONGOING_REQUESTS


def test_args_override_replicas_and_pass_environment() -> None:
    app = build_app({"num_replicas": "3", "env": {"NEWSRAY_DATABASE_URL": "postgresql://db/x", "N": 1}})
    deployment = app._bound_deployment
    assert deployment.num_replicas == 3
    env = {"env_vars": {"NEWSRAY_DATABASE_URL": "postgresql://db/x", "N": "1"}}
    assert deployment.ray_actor_options == {"num_cpus": API_NUM_CPUS, "runtime_env": env}
    # The encoder reads the same settings (the model the articles were embedded with).
    encoder = encoder_of(app)
    assert encoder.ray_actor_options == {"num_cpus": QUERY_ENCODER_NUM_CPUS, "runtime_env": env}
    assert encoder.num_replicas == 1


@pytest.mark.parametrize("args", [{"num_replicas": 0}, {"num_replicas": "many"}, {"env": ["A=1"]}])
def test_bad_args_are_refused_with_the_layer_name(args: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="^deployments: args"):
        build_app(args)


def test_serve_config_is_valid_and_matches_the_code() -> None:
    config = ServeDeploySchema.model_validate(yaml.safe_load(SERVE_CONFIG.read_text()))
    assert config.http_options.host == "127.0.0.1" and config.http_options.port == 8000
    [application] = config.applications
    assert application.import_path == "deployments.app:build_app" and application.route_prefix == "/"
    api, encoder = application.deployments
    assert api.name == "Api" and api.num_replicas == DEFAULT_NUM_REPLICAS
    assert api.max_ongoing_requests == MAX_ONGOING_REQUESTS
    assert api.ray_actor_options.num_cpus == API_NUM_CPUS
    assert api.logging_config.enable_access_log is False
    assert encoder.name == "QueryEncoder" and encoder.num_replicas == 1
    assert encoder.max_ongoing_requests == QUERY_ENCODER_MAX_ONGOING_REQUESTS
    assert encoder.ray_actor_options.num_cpus == QUERY_ENCODER_NUM_CPUS
    assert encoder.logging_config.enable_access_log is False
