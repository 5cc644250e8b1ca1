"""The dashboard's tests use the tickets desk: the service on a controllable clock with the staff API."""

from tests.tickets.conftest import desk

__all__ = ["desk"]
