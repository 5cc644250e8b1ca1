"""Maintenance scripts for the intent training data (not imported at run time)."""
