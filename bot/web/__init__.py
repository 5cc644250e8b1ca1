"""Web pages served by the service: the resident simulator (demo mode) and, later, consoles."""
