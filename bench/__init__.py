"""Benchmarks of the lending service: data generation, load drivers and the harness."""
