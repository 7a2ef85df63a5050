"""Bringing outside material in: InstructLab SDG output as a recorded run, document repositories into the cache."""
