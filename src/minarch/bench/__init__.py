"""Performance benchmarks of the pack engine against PyTorch written the usual way.

``run_benchmarks`` is the package's one entry point; ``benchmarks/bench_pack.py``
and ``minarch bench`` print its dicts as JSON. Not tests: nothing here asserts a time.
"""

from minarch.bench.suite import run_benchmarks
from minarch.errors import BenchError

__all__ = ["BenchError", "run_benchmarks"]
