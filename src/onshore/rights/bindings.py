"""Who a datum is about: resolve the subject from vehicle + time (+ the vehicle's driver profile)."""

from __future__ import annotations

from collections.abc import Sequence

from onshore.storage.subjects import Binding


class SubjectResolver:
    """Resolves subjects for one vehicle's batch from its bindings.

    A record with a driver profile is about the driver bound to that profile at its time; any other record is
    about the owner at its time (the pack's ``subjects.unknown: owner`` rule). With no owner bound at all, the
    datum is attributed to the vehicle itself (``fallback``), which no consent covers, so personal data is
    not collected.
    """

    def __init__(self, bindings: Sequence[Binding], fallback: str) -> None:
        self.fallback = fallback
        self._owners = sorted((b for b in bindings if b.role == "owner"), key=lambda b: b.from_ms)
        self._drivers = [b for b in bindings if b.role != "owner" and b.profile is not None]

    @property
    def subjects(self) -> list[str]:
        return sorted({b.subject_ref for b in (*self._owners, *self._drivers)} | {self.fallback})

    def _owner_at(self, ts: int) -> str:
        for b in reversed(self._owners):
            if b.from_ms <= ts and (b.until_ms is None or ts < b.until_ms):
                return b.subject_ref
        return self.fallback

    def resolve(self, ts_ms: Sequence[int], profiles: Sequence[str | None]) -> list[str]:
        """The subject of each record."""
        if not self._drivers or not any(profiles):
            owners = self._owners
            if len(owners) == 1 and owners[0].until_ms is None and owners[0].from_ms <= min(ts_ms, default=0):
                return [owners[0].subject_ref] * len(ts_ms)  # the common case: one current owner
        out = []
        for ts, profile in zip(ts_ms, profiles, strict=True):
            subject = None
            if profile is not None:
                for b in self._drivers:
                    if b.profile == profile and b.from_ms <= ts and (b.until_ms is None or ts < b.until_ms):
                        subject = b.subject_ref
                        break
            out.append(subject or self._owner_at(ts))
        return out
