"""Running experiments: one run of a variant (``runner``), both runs of an experiment (``orchestrate``, ``together``),
several experiments at once (``parallel``), and what a run does before and after its steps."""
