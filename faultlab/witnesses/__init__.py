"""Witnesses: each module registers what it observes (``faultlab.plugins.registry.register_witness``)."""
