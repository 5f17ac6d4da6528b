"""Reliability drills: faults survived and bad inputs rejected, with nothing lost."""
