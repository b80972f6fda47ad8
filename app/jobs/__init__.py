"""Background jobs: the worker that claims and runs them (``app.jobs.worker``)."""
