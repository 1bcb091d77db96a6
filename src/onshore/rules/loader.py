"""Load rule packs, validate them, and answer "what does the law say about this signal?" fast."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

from onshore.documents import read_document
from onshore.errors import RulePackError
from onshore.geo.zones import ZoneIndex
from onshore.model import ResolvedRule
from onshore.rules.schema import CameraRule, Category, PrecisionRule, RulePack, SignalRule, ZoneRule

BUILTIN_PACKS_DIR = Path(__file__).parent / "packs"


def builtin_pack_names() -> list[str]:
    """Names of the packs shipped with onshore."""
    return sorted(p.stem for p in BUILTIN_PACKS_DIR.glob("*.yaml"))


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # `*` matches one or more whole path segments, or the rest of a segment.
    parts = [re.escape(part) for part in pattern.split("*")]
    return re.compile("^" + "[A-Za-z0-9._]+".join(parts) + "$")


@dataclass
class LoadedPack:
    """A validated rule pack with its lookup indexes and zone index."""

    pack: RulePack
    path: Path
    zones: ZoneIndex
    enabled_overrides: frozenset[str] = frozenset()
    _exact: dict[str, ResolvedRule] = field(default_factory=dict)
    _patterns: list[tuple[int, re.Pattern[str], ResolvedRule]] = field(default_factory=list)
    _default: ResolvedRule | None = None
    location_decimals: int | None = None

    def __post_init__(self) -> None:
        for rule in self.pack.signals:
            if not self._is_active(rule):
                continue
            resolved = _resolve(rule, known=True)
            for signal in rule.signals:
                if "*" in signal:
                    self._patterns.append((len(signal.replace("*", "")), _pattern_regex(signal), resolved))
                else:
                    self._exact[signal] = resolved
        self._patterns.sort(key=lambda item: -item[0])
        d = self.pack.default_signal
        self._default = ResolvedRule(
            rule_id=d.id,
            categories=tuple(c.value for c in d.categories),
            tags=tuple(d.tags),
            purposes=tuple(d.purposes),
            value_kind="any",
            article=f"{d.source.instrument} {d.source.article}",
            known=False,
            categories_csv=",".join(c.value for c in d.categories),
            tags_csv=",".join(d.tags),
        )
        self.location_decimals = self._precision_for("location")
        self.resolve = lru_cache(maxsize=8192)(self._resolve_uncached)  # type: ignore[method-assign]

    def _is_active(self, rule: SignalRule | PrecisionRule) -> bool:
        return rule.active or rule.id in self.enabled_overrides

    def _precision_for(self, tag: str) -> int | None:
        decimals = [r.decimals for r in self.pack.precision if tag in r.tags and self._is_active(r)]
        return min(decimals) if decimals else None

    @property
    def jurisdiction(self) -> str:
        return self.pack.jurisdiction

    def _resolve_uncached(self, signal: str) -> ResolvedRule:
        hit = self._exact.get(signal)
        if hit is not None:
            return hit
        for _, regex, resolved in self._patterns:
            if regex.match(signal):
                return resolved
        assert self._default is not None
        return self._default

    def resolve(self, signal: str) -> ResolvedRule:  # replaced by a cached version in __post_init__
        """The rule that classifies ``signal`` (exact name, then the most specific pattern, then default)."""
        return self._resolve_uncached(signal)

    def zone_rule(self, zone_id: str) -> ZoneRule:
        """The zone rule whose file holds zone ``zone_id`` (an id `ZoneIndex.hits` returned)."""
        rule_id = self.zones.rule_of[zone_id]
        return next(z for z in self.pack.zones if z.id == rule_id)

    def camera_rule(self, camera: str) -> CameraRule | None:
        """The first active camera rule of the pack's ``frames`` section matching ``camera``, or None."""
        frames = self.pack.frames
        if frames is None:
            return None
        for rule in frames.cameras:
            if (rule.active or rule.id in self.enabled_overrides) and any(
                fnmatch.fnmatchcase(camera, pattern) for pattern in rule.cameras
            ):
                return rule
        return None

    def consent_required(self, categories: Iterable[Category | str]) -> str | None:
        """``"separate"``, ``"ordinary"`` or None: the consent level collection of these categories needs."""
        cats = set(categories)
        if cats & set(self.pack.consent.separate_for):
            return "separate"
        if cats & set(self.pack.consent.required_for):
            return "ordinary"
        return None


def _resolve(rule: SignalRule, *, known: bool) -> ResolvedRule:
    return ResolvedRule(
        rule_id=rule.id,
        categories=tuple(c.value for c in rule.categories),
        tags=tuple(rule.tags),
        purposes=tuple(rule.purposes),
        value_kind=rule.value.value,
        article=f"{rule.source.instrument} {rule.source.article}",
        known=known,
        categories_csv=",".join(c.value for c in rule.categories),
        tags_csv=",".join(rule.tags),
    )


def load_pack(name_or_path: str, *, enable_unconfirmed: Iterable[str] = ()) -> LoadedPack:
    """Load a built-in pack by name or a pack file by path.

    Raises:
        RulePackError: the file is missing, not YAML, or fails the schema; the message names the
            pack, the rule (when one is at fault) and the reason.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN_PACKS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise RulePackError(
                f"rule pack {name_or_path!r} is not built in; valid names: {', '.join(builtin_pack_names())}"
            )
    raw = read_document(path, "rule pack", RulePackError)
    try:
        pack = RulePack.model_validate(raw)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        rule_hint = ""
        if len(loc) >= 2 and loc[0] in ("signals", "precision", "zones") and isinstance(loc[1], int):
            items = (raw or {}).get(loc[0]) or []
            if loc[1] < len(items) and isinstance(items[loc[1]], dict):
                rule_hint = f" (rule {items[loc[1]].get('id', '?')!r})"
        raise RulePackError(f"rule pack {path}: {where}{rule_hint}: {err['msg']}") from exc
    enabled = frozenset(enable_unconfirmed)
    zone_files = [
        (z.id, (path.parent / z.file) if not Path(z.file).is_absolute() else Path(z.file))
        for z in pack.zones
        if z.active or z.id in enabled
    ]
    zones = ZoneIndex.from_files(zone_files)
    return LoadedPack(pack=pack, path=path, zones=zones, enabled_overrides=enabled)


class RuleBook:
    """The packs in force, one per jurisdiction."""

    def __init__(self, packs: Iterable[LoadedPack]) -> None:
        self._by_jurisdiction: dict[str, LoadedPack] = {}
        for pack in packs:
            if pack.jurisdiction in self._by_jurisdiction:
                other = self._by_jurisdiction[pack.jurisdiction].pack.pack
                raise RulePackError(
                    f"rule packs {other!r} and {pack.pack.pack!r} both claim jurisdiction {pack.jurisdiction}"
                )
            self._by_jurisdiction[pack.jurisdiction] = pack

    @classmethod
    def load(cls, names: Iterable[str], *, enable_unconfirmed: Iterable[str] = ()) -> RuleBook:
        enabled = list(enable_unconfirmed)
        return cls(load_pack(name, enable_unconfirmed=enabled) for name in names)

    def for_jurisdiction(self, jurisdiction: str) -> LoadedPack:
        """Raises RulePackError when no pack covers ``jurisdiction``."""
        try:
            return self._by_jurisdiction[jurisdiction]
        except KeyError:
            raise RulePackError(
                f"no rule pack in force covers jurisdiction {jurisdiction!r}; "
                f"covered: {', '.join(sorted(self._by_jurisdiction))}"
            ) from None

    @property
    def packs(self) -> list[LoadedPack]:
        return list(self._by_jurisdiction.values())
