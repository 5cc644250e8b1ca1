"""The JSON API under ``/api/v1``: token authentication with roles, a route registry that also
writes the OpenAPI description, and the routes themselves (one module per area)."""
