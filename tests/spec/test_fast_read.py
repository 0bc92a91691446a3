"""libyaml's reading of a spec agrees with the pure reader's on everything it accepts.

Each document is parsed twice, once as `parse` does (libyaml first) and once with the fast path
turned off, and the two results must be equal: the data, every value's and key's position, or the
same located error. The corpus is the example specs, every spec in the tests, the hostile
documents, and generated and mutated YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

import flowspec.spec.fast_read as fast_read
from flowspec.errors import SpecInvalid
from flowspec.spec.load import Document, parse
from tests.reliability.hostile import hostile_specs

ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted([*ROOT.glob("specs/*.yaml"), *ROOT.glob("tests/**/*.yaml"),
                 *ROOT.glob("tests/**/*.json"), *ROOT.glob("examples/**/*.yaml")])

pytestmark = pytest.mark.skipif(not fast_read.available(),
                                reason="ruamel.yaml's C parser (ruamel.yaml.clibz) is missing")


def outcome(text: str, source: str = "<spec>") -> tuple[Any, ...]:
    try:
        doc = parse(text, source)
    except SpecInvalid as exc:
        return ("refused", [(d.code, d.message, d.line, d.column, d.pointer)
                            for d in exc.diagnostics])
    return ("read", doc.data, doc.values, doc.keys)


def pure_outcome(text: str, source: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    with monkeypatch.context() as patch:
        patch.setattr(fast_read, "read_plain", lambda *_args: None)
        return outcome(text, source)


def takes_fast_path(text: str) -> bool:
    return fast_read.read_plain(text, "<spec>", Document(data=None, text=text)) is not None


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_files_read_the_same(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text()
    assert outcome(text, path.name) == pure_outcome(text, path.name, monkeypatch)


@pytest.mark.parametrize("name,text", [(h[0], h[1]) for h in hostile_specs()],
                         ids=[h[0] for h in hostile_specs()])
def test_hostile_documents_are_refused_the_same(name: str, text: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert outcome(text, name) == pure_outcome(text, name, monkeypatch)


def test_example_specs_take_the_fast_path() -> None:
    specs = [p for p in ROOT.glob("specs/*.yaml") if not p.name.endswith(".test.yaml")]
    assert specs
    for path in specs:
        assert takes_fast_path(path.read_text()), path.name


def test_text_libyaml_refuses_is_read_by_the_pure_reader() -> None:
    # libyaml reads a plain scalar ending in `?` inside `{...}` as a key with no `,`; the pure
    # reader takes it as text, which is what authors mean.
    text = "expect: {contains: Are you still there?}\n"
    assert not takes_fast_path(text)
    assert parse(text).data == {"expect": {"contains": "Are you still there?"}}


@pytest.mark.parametrize("text", [
    "a: &x {b: 1}\nc: *x\n",                # anchors and aliases
    "a: !!str 1\n",                          # a tag
    "base: {b: 1}\nc:\n  <<: {d: 2}\n",      # a merge key
    "a: 1\na: 2\n",                          # a key given twice
    "? [a, b]\n: 1\n",                       # a key that is not text
    "1: one\n",                              # a number as a key
    '"\\ud83d\\ude00": 1\n',                  # a key read as surrogates
    "when: 2024-01-01\n",                    # a timestamp
    "%YAML 1.1\n---\na: yes\n",              # a directive
    "a: 1\n---\nb: 2\n",                     # two documents
    "a: [1, 2\n",                            # a syntax error
    "a: \"\\ud83d\\ude00\"\nb: bell \x07\n",  # a character the pure reader refuses
])
def test_what_leaves_the_plain_subset_goes_to_the_pure_reader(
        text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not takes_fast_path(text)
    assert outcome(text) == pure_outcome(text, "<spec>", monkeypatch)


def test_without_the_c_parser_the_pure_reader_reads_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "specs" / "voice-assistant.yaml").read_text()
    expected = outcome(text)
    monkeypatch.setattr(fast_read, "_tools", lambda: None)
    assert not takes_fast_path(text)
    assert outcome(text) == expected


def test_scalars_read_as_yaml_1_2_does() -> None:
    text = ("i: 12\nh: 0x1F\no: 0o17\nu: 1_000\nf: 1.5\ne: 1e3\ninf: .inf\nt: true\nT: True\n"
            "n: ~\nempty:\ny: yes\nq: '12'\nblock: |\n  two\n  lines\n")
    assert takes_fast_path(text)
    data = parse(text).data
    assert data == {"i": 12, "h": 31, "o": 15, "u": 1000, "f": 1.5, "e": 1000.0,
                    "inf": float("inf"), "t": True, "T": True, "n": None, "empty": None,
                    "y": "yes", "q": "12", "block": "two\nlines\n"}
    assert [type(data[k]) for k in ("i", "f", "t")] == [int, float, bool]


# -- generated and mutated documents ------------------------------------------------------------

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                     st.floats(allow_nan=False), st.text(max_size=12))
_KEYS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                min_size=1, max_size=8)
_DATA = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=20)


def _dumped(data: Any, flow: bool) -> str:
    from io import StringIO

    yaml = YAML(typ="rt")
    yaml.default_flow_style = flow
    out = StringIO()
    yaml.dump({"doc": data}, out)
    return out.getvalue()


@given(data=_DATA, flow=st.booleans())
def test_generated_documents_read_the_same(data: Any, flow: bool) -> None:
    text = _dumped(data, flow)
    with pytest.MonkeyPatch.context() as patch:
        assert outcome(text) == pure_outcome(text, "<spec>", patch)


@given(data=_DATA, flow=st.booleans(), cut=st.integers(0, 10_000), open_end=st.booleans(),
       insert=st.sampled_from(["", ":", "-", "[", "{", "]", "}", "'", '"', "#", "&a", "*a", "!",
                               "\n", "  ", "\t", ",", "? ", "|", ">", "%", " #", " # x\n",
                               "\n-", "\n  "]))
def test_mutated_documents_read_the_same(data: Any, flow: bool, cut: int, open_end: bool,
                                         insert: str) -> None:
    text = _dumped(data, flow)
    at = cut % (len(text) + 1)
    text = text[:at] + insert + text[at + 1:]
    if open_end:  # no last line break, as JSON from an API often has none
        text = text.rstrip("\n")
    with pytest.MonkeyPatch.context() as patch:
        assert outcome(text) == pure_outcome(text, "<spec>", patch)
