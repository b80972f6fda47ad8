"""Dashboard pages, one module per tab (see ``app.dashboard.router``)."""
