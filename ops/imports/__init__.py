"""Imports from the field's own files: one module per format, each exposing an `IMPORTER`."""
