"""The documents people write (rule packs, bases, export requests, register entries) read the same through
libyaml's parser and the pure-Python one, and both refuse what neither may build: aliases, impossible dates,
nesting past the parser's depth, text that is not Unicode."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from onshore import documents
from onshore.documents import load_yaml
from onshore.errors import InputError
from onshore.registers.cli import _fields
from onshore.rules.loader import BUILTIN_PACKS_DIR

PACKS = sorted(BUILTIN_PACKS_DIR.glob("*.yaml"))


@pytest.fixture(params=["libyaml", "python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(documents, "_CLoader", None)
    else:
        assert documents._CLoader is not None, "PyYAML was built without libyaml; the fast path is never taken"
    return str(request.param)


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.stem)
def test_both_parsers_read_a_built_in_pack_alike(pack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = pack.read_text(encoding="utf-8")
    fast = load_yaml(text)
    monkeypatch.setattr(documents, "_CLoader", None)
    assert load_yaml(text) == fast
    assert fast == yaml.safe_load(text)


ALIAS = "base: &b {region: cn}\nother: *b\n"


def test_an_alias_is_refused_with_its_line(parser: str) -> None:
    with pytest.raises(yaml.YAMLError, match=r"aliases \(\*name\) are not accepted") as caught:
        load_yaml(ALIAS)
    assert "line 2" in str(caught.value)


def test_an_alias_bomb_is_refused_at_once(parser: str) -> None:
    lines = ['a0: &a0 ["x"]'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(yaml.YAMLError, match="aliases"):
        load_yaml("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("day: 0000-00-00\n", "quote it to keep it as text"),
        ("[" * 100_000, "nest"),
        ("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 3000)), "nest"),
        ("note: \ud800\n", "surrogate|character"),
        ("note: \x00\n", "character"),
        ("a: [1, 2\n", "expected"),
    ],
    ids=["year 0", "flow nesting", "block nesting", "lone surrogate", "NUL", "unclosed list"],
)
def test_what_cannot_be_built_is_a_yaml_error(parser: str, text: str, message: str) -> None:
    with pytest.raises(yaml.YAMLError, match=message):
        load_yaml(text)


def test_a_register_entry_file_with_an_alias_or_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    with_alias = tmp_path / "entry.yaml"
    with_alias.write_text("title: &t a seal found broken\nhandling: *t\n", encoding="utf-8")
    with pytest.raises(InputError, match="aliases"):
        _fields(with_alias, None)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("title: sceau bris\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        _fields(latin1, None)
    plain = tmp_path / "plain.yaml"
    plain.write_text("title: a seal found broken\npeople_affected: 3\n", encoding="utf-8")
    assert _fields(plain, ["people_affected=4"]) == {"title": "a seal found broken", "people_affected": 4}


def test_a_document_read_again_is_parsed_once_and_each_reader_gets_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "basis.yaml"
    path.write_text("region: cn\nscope: [a, b]\n", encoding="utf-8")
    parses: list[str] = []
    real = documents.load_yaml
    monkeypatch.setattr(documents, "load_yaml", lambda text: parses.append(text) or real(text))
    first = documents.read_document(path, "basis", InputError)
    first["scope"].append("changed by its reader")
    second = documents.read_document(path, "basis", InputError)
    assert second == {"region": "cn", "scope": ["a", "b"]} and len(parses) == 1
    path.write_text("region: eu\n", encoding="utf-8")  # new text: parsed anew, never an old answer
    assert documents.read_document(path, "basis", InputError) == {"region": "eu"} and len(parses) == 2
    path.write_text("a: &x 1\nb: *x\n", encoding="utf-8")
    with pytest.raises(InputError, match="aliases"):  # a refusal is never cached as an answer
        documents.read_document(path, "basis", InputError)
    with pytest.raises(InputError, match="aliases"):
        documents.read_document(path, "basis", InputError)
