"""Policy rules and reserved names in the database; every change audit-logged."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from havarti.db import Database
from havarti.db.models import AuditLog, PolicyRule, ReservedName
from havarti.errors import Conflict, NotFound
from havarti.records import Reservation, StoredRule


def _rule(row: PolicyRule) -> StoredRule:
    return StoredRule(row.id, row.action, row.match, row.filename, row.reason)


class PolicyRepository:
    """Rules and reservations; ``load`` is what a process's policy snapshot reads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self) -> tuple[list[StoredRule], list[str]]:
        """Every stored rule and reserved pattern (two small reads)."""
        with self.db.session() as session:
            rules = [_rule(r) for r in session.scalars(select(PolicyRule).order_by(PolicyRule.id))]
            reserved = list(session.scalars(select(ReservedName.pattern).order_by(ReservedName.id)))
        return rules, reserved

    def add_rule(self, action: str, match: str, filename: str, reason: str, project: str,
                 described: str, remote_addr: str | None = None) -> StoredRule:
        """Store a checked rule; ``project`` and ``described`` go to the audit log."""
        with self.db.session() as session:
            row = PolicyRule(action=action, match=match, filename=filename, reason=reason)
            session.add(row)
            session.flush()
            session.add(AuditLog(action="policy-add", project=project, remote_addr=remote_addr,
                                 detail=f"id={row.id} {described}"))
            return _rule(row)

    def remove_rule(self, rule_id: int, project: str, described: str,
                    remote_addr: str | None = None) -> StoredRule:
        """Remove a rule, audited (``project``, ``described``); NotFound if there is none."""
        with self.db.session() as session:
            row = session.get(PolicyRule, rule_id)
            if row is None:
                raise NotFound(f"no policy rule {rule_id}")
            rule = _rule(row)
            session.delete(row)
            session.add(AuditLog(action="policy-remove", project=project, remote_addr=remote_addr,
                                 detail=f"id={rule_id} {described}"))
        return rule

    def reservations(self) -> list[Reservation]:
        """The stored reservations, oldest first."""
        with self.db.session() as session:
            return [Reservation(r.id, r.pattern, r.note, r.created)
                    for r in session.scalars(select(ReservedName).order_by(ReservedName.id))]

    def reserve(self, pattern: str, note: str = "", remote_addr: str | None = None) -> Reservation:
        """Reserve a (normalised) name or prefix; Conflict if it is reserved already."""
        try:
            with self.db.session() as session:
                row = ReservedName(pattern=pattern, note=note)
                session.add(row)
                session.flush()
                session.add(AuditLog(action="reserve", project=pattern, remote_addr=remote_addr,
                                     detail=note or None))
                return Reservation(row.id, pattern, note, row.created)
        except IntegrityError:
            raise Conflict(f"{pattern} is reserved already") from None

    def unreserve(self, reservation_id: int, remote_addr: str | None = None) -> Reservation:
        """Release a reservation, audited; NotFound if there is none."""
        with self.db.session() as session:
            row = session.get(ReservedName, reservation_id)
            if row is None:
                raise NotFound(f"no reservation {reservation_id}")
            found = Reservation(row.id, row.pattern, row.note, row.created)
            session.delete(row)
            session.add(AuditLog(action="unreserve", project=row.pattern, remote_addr=remote_addr))
        return found

