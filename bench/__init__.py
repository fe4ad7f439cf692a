"""Benchmarks on realistic data; run each as `python -m bench.<name>` (see its docstring)."""
