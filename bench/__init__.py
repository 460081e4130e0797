"""Benchmarks that print figures (time, memory, throughput); run from the project root as
``python -m bench.NAME`` (``make bench`` runs them all). They import the test servers from the
``tests`` package."""
