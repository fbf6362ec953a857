"""Stages of the enrichment pipeline (jobs/enrich.py). Each module has a pure core that runs
without Ray; the Ray Data wiring lives in jobs/enrich.py and jobs/enrichment/stages.py."""
