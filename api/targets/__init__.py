"""Targets and progress: a bar and a deadline for any figure or measure on any scope, and who meets it."""
