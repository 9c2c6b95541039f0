"""Benchmarks of activeserve against its transport and compute limits and its peers.

Run from the repository root: ``python -m benchmarks.serving`` (see README.md here).
This folder is not part of the installed distribution.
"""
