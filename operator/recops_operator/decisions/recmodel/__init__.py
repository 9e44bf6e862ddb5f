"""What a RecModel should look like: which versions to serve, with which weights, whether to
train, and the status that tells the story. Pure functions of typed inputs.

:func:`plan` is the entry point; each module decides one part of it:

- ``versions``: the versions a RecModel knows, learnt from TrainingRuns that passed the gate;
- ``rollouts``: following the Rollouts (the active one, a promotion);
- ``retiring``: which versions keep their pods at zero traffic, and which go;
- ``weights``: what runs on which target, the route's weights, the stable and canary roles;
- ``training``: releasing a finished TrainingRun and starting the next one;
- ``report``: the conditions, Ready and the phase;
- ``plan``: one pass through them, in that order.
"""

from __future__ import annotations

from recops_operator.decisions.recmodel.observation import (
    DeploymentObservation,
    RecModelObservation,
)
from recops_operator.decisions.recmodel.plan import RecModelPlan, plan
from recops_operator.decisions.recmodel.report import invalid_spec

__all__ = [
    "DeploymentObservation",
    "RecModelObservation",
    "RecModelPlan",
    "invalid_spec",
    "plan",
]
