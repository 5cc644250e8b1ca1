"""Configuration rules shipped with the service (YAML)."""
