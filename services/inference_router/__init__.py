"""Consumes inference requests: pick a healthy replica, call the model, publish the reply."""
