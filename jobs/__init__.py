"""Batch jobs: each module has main() and runs as `python -m jobs.NAME` or under `ray job submit`."""
