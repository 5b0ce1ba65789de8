"""Observing must not change what is observed: the lab reads the pool from shared memory, never by
sending requests into the server, so a leak's sawtooth is the same whether the lab looks or not."""

from __future__ import annotations

from pathlib import Path

from faultlab.model.catalogue import load_catalogue
from faultlab.plugins.registry import Registry
from faultlab.running.orchestrate import run_experiment

FIXTURES = Path(__file__).parent / "fixtures" / "experiments"


def test_the_leak_is_the_same_sampled_after_every_request_and_not_at_all(registry: Registry, tmp_path: Path) -> None:
    """Two batches of 12 reads on one server, each after a full collection: the first is sampled after
    every request, the second only at its end. With the old HTTP probes the sampled batch's garbage
    collections moved (its peak fell from 9 to 1, every time); now both batches end at the same count.

    On a busy machine the collector's timing also moves with the load (the server's thread pool makes and
    drops threads as it likes), and about one pair in seven disagrees either way: so two pairs of three must
    agree. An observer that moved the collections would make every pair disagree."""
    outcomes = []
    for attempt in range(3):
        result = run_experiment(
            registry, load_catalogue(registry, [FIXTURES]).get("dense-sparse"), tmp_path / str(attempt)
        )
        steps = {step.title: step.observation.values for step in result.runs["fault"].steps}
        dense = steps["dense"]["pool_checked_out_series"]
        assert max(dense) >= 4, f"the leak did not show: {dense}"
        outcomes.append((dense, steps["sparse"]["pool_checked_out"]))
        agreed = sum(series[-1] == sparse for series, sparse in outcomes)
        if agreed == 2 or len(outcomes) - agreed == 2:
            break
    assert agreed == 2, outcomes
