"""Fix it yourself: the learner writes the fix in a workspace of their own, and the lab judges it with the
same script and the same evidence as its own fix (``fix``, ``check``, ``progress``; ``faultlab.learn.commands``)."""
