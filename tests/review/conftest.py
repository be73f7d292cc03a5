"""Fixtures of the review tests: the API environment of tests/api."""

from tests.api.conftest import clean_environ, env  # noqa: F401  (fixtures)
