"""The Django app of tests/e2e/test_sharded_orm.py: its models (ormshard.models), installed there
once Django is set up in the test process."""
