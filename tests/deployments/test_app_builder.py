"""deployments.app.build_app and deployments/serve.yaml, without a cluster (building an
Application is local; only serve.run needs Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from deployments.app import API_NUM_CPUS, DEFAULT_NUM_REPLICAS, MAX_ONGOING_REQUESTS, build_app

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


def test_args_override_replicas_and_pass_environment() -> None:
    deployment = build_app({"num_replicas": "3", "env": {"NEWSRAY_DATABASE_URL": "postgresql://db/x", "N": 1}})._bound_deployment
    assert deployment.num_replicas == 3
    assert deployment.ray_actor_options == {
        "num_cpus": API_NUM_CPUS,
        "runtime_env": {"env_vars": {"NEWSRAY_DATABASE_URL": "postgresql://db/x", "N": "1"}},
    }


@pytest.mark.parametrize("args", [{"num_replicas": 0}, {"num_replicas": "many"}, {"env": ["A=1"]}])
def test_bad_args_are_refused_with_the_layer_name(args: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="^deployments: args"):
        build_app(args)


def test_serve_config_is_valid_and_matches_the_code() -> None:
    config = ServeDeploySchema.model_validate(yaml.safe_load(SERVE_CONFIG.read_text()))
    assert config.http_options.host == "127.0.0.1" and config.http_options.port == 8000
    [application] = config.applications
    assert application.import_path == "deployments.app:build_app" and application.route_prefix == "/"
    [api] = application.deployments
    assert api.name == "Api" and api.num_replicas == DEFAULT_NUM_REPLICAS
    assert api.max_ongoing_requests == MAX_ONGOING_REQUESTS
    assert api.ray_actor_options.num_cpus == API_NUM_CPUS
    assert api.logging_config.enable_access_log is False
