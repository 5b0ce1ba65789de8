"""The correct todo API: the baseline every fault in ``faults/`` differs from."""
