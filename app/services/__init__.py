"""Business logic. Services take a session and never commit; the caller's transaction does."""
