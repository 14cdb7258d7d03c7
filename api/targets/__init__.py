"""Targets and progress: a bar and a deadline for any figure on any scope, and who meets it."""
