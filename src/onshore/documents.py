"""The YAML and JSON documents people write for onshore (rule packs, transfer bases, export requests), read
with bounds: at most ``MAX_DOCUMENT_BYTES``, and no YAML aliases.

An alias (``*name``) repeats an anchored node without repeating its text, so nine lines of anchors can stand for
hundreds of millions of nodes (a "billion laughs" document): PyYAML builds them as shared references in an
instant, but every check that walks the document then does exponential work (a basis file of 700 bytes held
`onshore bases add` for 90 s). None of onshore's documents needs an alias, so one is refused where it appears.
Text YAML reads as an impossible date (``0000-00-00``) and nesting deeper than the parser recurses are refused
too, rather than raised as tracebacks.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import yaml

from onshore.errors import OnshoreError

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # the built-in rule packs are under 200 KB


class _NoAliasLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses aliases (and so every alias bomb) with the line they stand on."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            _refuse_alias(self.peek_event())
        return super().compose_node(parent, index)


def _refuse_alias(event: Any) -> None:
    raise yaml.composer.ComposerError(
        None, None, "aliases (*name) are not accepted: write the value out", event.start_mark
    )


# libyaml's parser, where PyYAML was built with it (the PyPI wheels are): about six times faster than the
# pure-Python one on the built-in rule packs, which every process reads at start. Its parser keeps an explicit
# stack and refuses nesting over 1,000 levels with a YAMLError.
_CLoader: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def _load(text: str) -> Any:
    if _CLoader is None:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    for event in yaml.parse(text, Loader=_CLoader):  # the events alone, no nodes built: an alias costs nothing
        if isinstance(event, yaml.AliasEvent):
            _refuse_alias(event)
    return yaml.load(text, Loader=_CLoader)  # noqa: S506 - libyaml's SafeLoader, on text known to hold no alias


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` without aliases.

    Raises:
        yaml.YAMLError: not YAML (or JSON), the document holds an alias, a scalar resolves to a value that cannot
            be built (``0000-00-00`` is a date to YAML, of year 0), or it nests deeper than the parser goes.
    """
    try:
        return _load(text)
    except UnicodeEncodeError:  # libyaml reads UTF-8: a lone surrogate cannot be encoded to it
        raise yaml.YAMLError("the text holds a lone surrogate, which is not a Unicode character") from None
    except ValueError as exc:  # PyYAML builds dates and times with datetime, which refuses the impossible ones
        raise yaml.YAMLError(f"a value cannot be read ({exc}); quote it to keep it as text") from None
    except RecursionError:  # the pure-Python parser recurses once per level of nesting
        raise yaml.YAMLError("the document nests too deep") from None


def read_document(path: Path, what: str, error: type[OnshoreError]) -> Any:
    """The YAML or JSON document in ``path`` (``what`` names it in messages), decoded.

    Raises:
        error: the file cannot be read, is over ``MAX_DOCUMENT_BYTES``, is not UTF-8, or is not YAML or JSON
            (an alias included); the message names the file and the reason.
    """
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise error(f"{what} {path} is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} {path} ({exc.__class__.__name__})") from exc
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text") from None
    try:
        return _load_cached(text)
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML or JSON: {exc}") from None


_PARSED: OrderedDict[bytes, Any] = OrderedDict()  # SHA-256 of a document's text -> what it decodes to
_PARSED_ENTRIES = 16
_PARSED_MAX_CHARS = 1024 * 1024
_PARSED_LOCK = threading.Lock()


def _load_cached(text: str) -> Any:
    """`load_yaml` of ``text``, parsed once per process for the same text (a copy each time, so a caller may
    change what it gets): a process that builds several runtimes (the tests, the simulator) reads the same rule
    packs each time, and parsing them is nearly all the cost of loading one (~30 ms for cn-auto)."""
    if len(text) > _PARSED_MAX_CHARS:
        return load_yaml(text)
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    with _PARSED_LOCK:
        if key in _PARSED:
            _PARSED.move_to_end(key)
            return copy.deepcopy(_PARSED[key])
    parsed = load_yaml(text)
    with _PARSED_LOCK:
        _PARSED[key] = copy.deepcopy(parsed)
        while len(_PARSED) > _PARSED_ENTRIES:
            _PARSED.popitem(last=False)
    return parsed
