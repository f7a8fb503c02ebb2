"""Aliases (champion, challenger, shadow, canary): moves, history and rollback.

Every move is an ``alias`` record named after the alias: the model it now points at, the
holder it replaced, the decision that allowed it, who moved it and when, whether a failed
gate was overridden and why. The current holder of an alias is the newest record of that
name, so the history is the list of records and never loses a move.

A move reads the current holder and writes the move record inside ONE store transaction
(:meth:`loopml.store.Transaction.latest` takes the project's write lock first): two racing
promotions serialize, and the second, finding a holder other than the one its decision was
made against, is refused and stores nothing.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InputError, NotFoundError, StoreError
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.project import Project
    from loopml.store import Record, Transaction

__all__ = [
    "ALIASES",
    "AliasMove",
    "champion_dataset",
    "current_holder",
    "model_history",
    "move_alias",
    "rollback",
]

ALIASES = ("champion", "challenger", "shadow", "canary")


@dataclass(frozen=True)
class AliasMove(HtmlRepr):
    """One move of an alias (one ``alias`` record)."""

    id: str
    alias: str
    model: str | None  # name@version now holding the alias
    model_id: str | None
    previous: str | None  # the holder it replaced
    decision: str | None  # the gate decision record id (None for a rollback)
    who: str
    when: str
    forced: bool
    reason: str
    action: str  # "promote" or "rollback"
    canary_share: float | None = None
    stack: list[str] = field(default_factory=list)  # earlier holders, for rollback
    mlflow: dict[str, Any] | None = None

    @classmethod
    def from_record(cls, rec: Record) -> AliasMove:
        p = rec.payload
        return cls(
            id=rec.id,
            alias=str(p.get("alias", rec.name)),
            model=p.get("model"),
            model_id=p.get("model_id"),
            previous=p.get("previous"),
            decision=p.get("decision"),
            who=str(p.get("who", "")),
            when=str(p.get("when", rec.created_at)),
            forced=bool(p.get("forced", False)),
            reason=str(p.get("reason", "")),
            action=str(p.get("action", "promote")),
            canary_share=p.get("canary_share"),
            stack=[str(s) for s in p.get("stack") or []],
            mlflow=p.get("mlflow"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alias": self.alias,
            "model": self.model,
            "model_id": self.model_id,
            "previous": self.previous,
            "decision": self.decision,
            "who": self.who,
            "when": self.when,
            "forced": self.forced,
            "reason": self.reason,
            "action": self.action,
            "canary_share": self.canary_share,
            "stack": list(self.stack),
            "mlflow": self.mlflow,
        }


def check_alias(alias: str) -> str:
    if alias not in ALIASES:
        raise InputError(
            f"unknown alias {alias!r}; expected one of {', '.join(ALIASES)}",
            hint="pass --to champion (or challenger, shadow, canary)",
            where="--to",
        )
    return alias


def current_holder(project: Project, alias: str = "champion") -> AliasMove | None:
    """The newest move of ``alias`` (its current holder), or None when it was never set."""
    rec = project.store.latest("alias", name=check_alias(alias))
    return AliasMove.from_record(rec) if rec is not None else None


def champion_dataset(project: Project, *, hint: str) -> tuple[AliasMove, str, bool]:
    """The champion's move, the dataset version it learned from and whether that version
    had a split (its train part) -- what monitoring and the flywheel default to. A clear
    NotFoundError (with ``hint``: what to pass instead) when no model holds the alias or it
    names no dataset."""
    holder = current_holder(project, "champion")
    if holder is None or holder.model is None:
        raise NotFoundError(
            "no model holds the champion alias, whose training data is the default here",
            hint=hint,
            where="champion",
        )
    rec = project.store.get(holder.model, kind="model")
    lineage = dict(rec.payload.get("lineage") or {})
    dataset = lineage.get("dataset")
    if not dataset:
        raise NotFoundError(
            f"the champion {holder.model} does not name the dataset it learned from",
            hint=hint,
            where="champion",
        )
    return holder, str(dataset), bool(lineage.get("split_id"))


def model_history(project: Project, alias: str | None = None) -> list[AliasMove]:
    """Every move (of ``alias``, or of every alias), oldest first."""
    name = check_alias(alias) if alias is not None else None
    recs = project.store.list("alias", name=name)
    return [AliasMove.from_record(r) for r in sorted(recs, key=lambda r: r.seq)]


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers without a passwd entry)
        return "unknown"


def move_alias(
    tx: Transaction,
    *,
    alias: str,
    model: str,
    model_id: str,
    expected: str | None,
    decision: str | None,
    forced: bool = False,
    reason: str = "",
    canary_share: float | None = None,
    action: str = "promote",
    stack: list[str] | None = None,
    extra_check: Callable[[], None] | None = None,
    mirror: Callable[[], dict[str, Any] | None] | None = None,
) -> AliasMove:
    """Move ``alias`` to ``model`` inside ``tx``, if its holder is still ``expected``.

    The holder is read inside the transaction (under the write lock), so the check and the
    move cannot interleave with another writer's. ``extra_check`` runs after the read (e.g.
    the champion a challenger was judged against must not have moved either); ``mirror``
    (the MLflow alias) runs last, before the commit: if it fails nothing is stored.
    """
    from loopml._lineage import utcnow

    rec = tx.latest("alias", name=alias)
    holder = AliasMove.from_record(rec) if rec is not None else None
    now_at = holder.model if holder is not None else None
    if now_at != expected:
        raise StoreError(
            f"the {alias} alias moved while this {action} ran: it now points at "
            f"{now_at or 'no model'}, but this {action} was decided against "
            f"{expected or 'no model'}; nothing was moved",
            hint=f"run the {action} again: it will be decided against the current {alias}",
            where=f"alias {alias}",
        )
    if now_at == model and action == "promote":
        raise InputError(
            f"{model} already holds the {alias} alias (move {holder.id if holder else ''})",
            hint="promote another model version, or `loopml model history` to see the moves",
            where=f"alias {alias}",
        )
    if extra_check is not None:
        extra_check()
    if stack is None:
        stack = [*(holder.stack if holder else []), *([now_at] if now_at else [])]
    payload: dict[str, Any] = {
        "alias": alias,
        "model": model,
        "model_id": model_id,
        "previous": now_at,
        "decision": decision,
        "who": _user(),
        "when": utcnow(),
        "forced": forced,
        "reason": reason,
        "action": action,
        "canary_share": canary_share,
        "stack": stack[-50:],
    }
    if mirror is not None:
        payload["mlflow"] = mirror()
    return AliasMove.from_record(tx.put("alias", alias, payload))


def rollback(project: Project, *, alias: str = "champion", reason: str = "") -> AliasMove:
    """Move ``alias`` back to the holder before the current one (a recorded move).

    The model it returns to must still be loadable: its artifact is verified first.
    """
    from loopml.models import get_model

    check_alias(alias)
    holder = current_holder(project, alias)
    if holder is None or holder.model is None:
        raise NotFoundError(
            f"the {alias} alias was never set: there is nothing to roll back",
            hint="promote a model first: loopml promote MODEL@V",
            where=f"alias {alias}",
        )
    if not holder.stack:
        raise NotFoundError(
            f"{holder.model} is the first {alias}: there is no previous holder to return to",
            hint="promote another model version instead",
            where=f"alias {alias}",
        )
    target = holder.stack[-1]
    mv = get_model(project, target)
    if mv.model_artifact:
        project.store.artifacts.get_bytes(mv.model_artifact)  # verified: missing or tampered
    with project.store.transaction() as tx:
        return move_alias(
            tx,
            alias=alias,
            model=mv.ref,
            model_id=mv.id,
            expected=holder.model,
            decision=None,
            reason=reason or f"rollback from {holder.model}",
            action="rollback",
            stack=holder.stack[:-1],
        )
