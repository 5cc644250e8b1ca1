"""The tickets desk (service, clock, staff API) for the tickets guard tests."""

from tests.tickets.conftest import desk  # noqa: F401
