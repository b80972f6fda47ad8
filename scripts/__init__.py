"""Operator scripts that drive the product from outside (not part of the installed package)."""
