"""Benchmarks of Autocloud; `bench/ingest.py` measures the ingest path end to end."""
