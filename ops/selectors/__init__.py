"""Reads of the ops app that are more than a `get`, one module per area."""
