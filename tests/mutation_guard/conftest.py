"""The tickets desk (service, clock, staff API) and the migrated database for the tickets guard tests."""

from tests.tickets.conftest import desk  # noqa: F401  (the ticket desk; db is tests/conftest.py's)
