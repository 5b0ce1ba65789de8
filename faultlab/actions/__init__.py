"""Actions: each module registers what a step can do (``faultlab.plugins.registry.register_action``)."""
