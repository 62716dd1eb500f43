"""Imports from the field's own files."""
