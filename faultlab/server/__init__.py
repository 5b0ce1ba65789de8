"""The lab's side of a server: starting and stopping it (``launch``, ``forkserver``, ``process``, ``lifeline``),
talking to it (``client``) and reading what the OS says about it (``procfs``)."""
