"""The model registry: aliases with their history, and the promotion gate.

``promote`` runs the gate (:func:`decide`) on a candidate model version and, when it passes,
moves an alias (champion, challenger, shadow, canary) to it; every move is a recorded
``alias`` record, every decision a ``decision`` record. ``rollback`` returns an alias to its
previous holder; ``model_history`` lists the moves. See docs/registry.md.
"""

from __future__ import annotations

from loopml.registry._aliases import (
    ALIASES,
    AliasMove,
    champion_dataset,
    current_holder,
    model_history,
    rollback,
)
from loopml.registry._gate import Decision, GateCheck, Promotion, decide, promote
from loopml.registry._paired import JointCounts, PairedDifference, joint_counts, mcnemar_exact

__all__ = [
    "ALIASES",
    "AliasMove",
    "Decision",
    "GateCheck",
    "JointCounts",
    "PairedDifference",
    "Promotion",
    "champion_dataset",
    "current_holder",
    "decide",
    "joint_counts",
    "mcnemar_exact",
    "model_history",
    "promote",
    "rollback",
]
