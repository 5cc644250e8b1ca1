"""The tickets desk (service, clock, staff API) and the migrated database for the tickets guard tests."""

from tests.tickets.conftest import db, desk  # noqa: F401  (one migrated-database fixture for both folders)
