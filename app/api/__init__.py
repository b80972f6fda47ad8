"""HTTP layer: thin routers over app.services."""
