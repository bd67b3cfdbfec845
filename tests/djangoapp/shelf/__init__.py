"""A one-model Django app: books on a shelf."""
