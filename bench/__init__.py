"""MissionHub's benchmark: `make bench` (or `python -m bench.run`). See bench/run.py."""
