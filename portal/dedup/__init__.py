"""Duplicate leads: managers merge two leads of one person by hand, and undo a merge."""
