"""Workflow functions: each stage of the loop as one call over a project and its store."""
