"""Actions: each module marks what a step can do (``faultlab.plugins.registry.register_action``), and
``load_plugins`` collects it into a registry."""
