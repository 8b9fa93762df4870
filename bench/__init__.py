"""Benchmarks of phoenix-cert against today's shell method, on the real Swarm.

`python -m bench [--quick] [NAME ...]` (or `make bench`); see `bench/RESULTS.md` for the
figures and `python -m bench --help` for the options. Not part of the test command.
"""
