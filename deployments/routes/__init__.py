"""The Api ingress's routers, one module per resource."""
