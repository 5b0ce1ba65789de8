"""The plugin contract (``contract``: witnesses, actions, observations and their ``domain``), the registry that
loads and checks them (``registry``), and what a plugin is given during a run (``context``)."""
