"""Luodi's edges: the command line now, the Flask HTTP API later."""
