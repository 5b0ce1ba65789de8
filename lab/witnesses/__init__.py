"""Witnesses: each module registers what it observes (``lab.registry.register_witness``)."""
