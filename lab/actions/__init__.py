"""Actions: each module registers what a step can do (``lab.registry.register_action``)."""
