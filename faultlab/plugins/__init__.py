"""The plugin contract (``contract``: witnesses, actions, observations and their ``domain``), the registry that
``load_plugins()`` builds and checks them into (``registry``, an object passed to whatever needs it), and what
a plugin is given during a run (``context``)."""
