"""Policy rules and reserved names in the database; every change audit-logged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from havarti.db import Database
from havarti.db.models import AuditLog, PolicyRule, ReservedName
from havarti.domain.access import NamePattern
from havarti.domain.policy import Policy, Rule
from havarti.domain.text import problem
from havarti.errors import Conflict, InvalidRequest, NotFound


@dataclass(frozen=True)
class Reservation:
    id: int
    pattern: NamePattern
    note: str
    created: datetime

    def as_json(self) -> dict:
        return {"id": self.id, "pattern": self.pattern.text, "note": self.note,
                "created": self.created.isoformat(timespec="seconds")}


def _rule(row: PolicyRule) -> Rule:
    return Rule.parse(row.action, row.match, row.filename, row.reason, row.id)


class PolicyRepository:
    """Rules and reservations; ``load`` is what a process's policy snapshot reads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self) -> tuple[list[Rule], list[NamePattern]]:
        """Every stored rule and reserved pattern (two small reads)."""
        with self.db.session() as session:
            rules = [_rule(r) for r in session.scalars(select(PolicyRule).order_by(PolicyRule.id))]
            reserved = [NamePattern(p) for p in session.scalars(
                select(ReservedName.pattern).order_by(ReservedName.id))]
        return rules, reserved

    def snapshot(self, file_rules: tuple[Rule, ...] = (),
                 configured: tuple[str, ...] = ()) -> Policy:
        """The policy in force: ``file_rules`` (POLICY_FILE) and ``configured`` reserved
        names (RESERVED_NAMES) first, then the stored ones."""
        rules, reserved = self.load()
        return Policy(file_rules + tuple(rules),
                      tuple(NamePattern(p) for p in configured) + tuple(reserved))

    def add_rule(self, rule: Rule, remote_addr: str | None = None) -> Rule:
        with self.db.session() as session:
            row = PolicyRule(action=rule.action, match=rule.match, filename=rule.filename,
                             reason=rule.reason)
            session.add(row)
            session.flush()
            stored = _rule(row)
            session.add(AuditLog(action="policy-add", project=_project(rule),
                                 remote_addr=remote_addr, detail=f"id={row.id} {rule.describe()}"))
        return stored

    def remove_rule(self, rule_id: int, remote_addr: str | None = None) -> Rule:
        with self.db.session() as session:
            row = session.get(PolicyRule, rule_id)
            if row is None:
                raise NotFound(f"no policy rule {rule_id}")
            rule = _rule(row)
            session.delete(row)
            session.add(AuditLog(action="policy-remove", project=_project(rule),
                                 remote_addr=remote_addr, detail=f"id={rule_id} {rule.describe()}"))
        return rule

    def reservations(self) -> list[Reservation]:
        with self.db.session() as session:
            return [Reservation(r.id, NamePattern(r.pattern), r.note, r.created)
                    for r in session.scalars(select(ReservedName).order_by(ReservedName.id))]

    def reserve(self, pattern: NamePattern, note: str = "",
                remote_addr: str | None = None) -> Reservation:
        """Reserve a name or prefix; Conflict if it is reserved already."""
        note = " ".join(note.split())
        why = problem(note, 200)
        if why is not None:
            raise InvalidRequest(f"the note {why}")
        try:
            with self.db.session() as session:
                row = ReservedName(pattern=pattern.text, note=note)
                session.add(row)
                session.flush()
                session.add(AuditLog(action="reserve", project=pattern.text,
                                     remote_addr=remote_addr, detail=row.note or None))
                return Reservation(row.id, pattern, row.note, row.created)
        except IntegrityError:
            raise Conflict(f"{pattern.text} is reserved already") from None

    def unreserve(self, reservation_id: int, remote_addr: str | None = None) -> Reservation:
        with self.db.session() as session:
            row = session.get(ReservedName, reservation_id)
            if row is None:
                raise NotFound(f"no reservation {reservation_id}")
            found = Reservation(row.id, NamePattern(row.pattern), row.note, row.created)
            session.delete(row)
            session.add(AuditLog(action="unreserve", project=row.pattern, remote_addr=remote_addr))
        return found


def _project(rule: Rule) -> str:
    """The audit log's project column for a rule: its name pattern, or * for every project."""
    return rule.name.text if rule.name is not None else "*"
