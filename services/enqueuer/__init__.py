"""Consumes enqueue requests: clone the template, set parameters, enqueue, exactly once."""
