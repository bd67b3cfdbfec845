"""shardgate's benchmark harness (not part of the test run): ``python -m tests.bench.run``."""
