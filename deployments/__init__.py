"""Ray Serve deployments and the app builder; the FastAPI routers of the Api ingress."""
