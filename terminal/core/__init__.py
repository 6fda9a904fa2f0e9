"""Plumbing without business words: config files, atomic writes, systemd, executors, PAN checks.

Imports nothing else of ``terminal`` (an import-linter contract in pyproject.toml).
"""
