"""The tuning loop tests use the API client of tests/api."""

from tests.api.conftest import api as api
