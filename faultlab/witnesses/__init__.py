"""Witnesses: each module marks what it observes (``faultlab.plugins.registry.register_witness``), and
``load_plugins`` collects it into a registry."""
