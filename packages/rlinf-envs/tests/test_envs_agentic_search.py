"""BM25 retrieval against scores computed by hand, and the search tool."""

from __future__ import annotations

import math
import pickle
import sys

import pytest

pytest.importorskip("bm25s")

from rlinf.envs.agentic import BM25Index, SearchTool, Tool, ToolSet
from rlinf.envs.agentic._search import tokenize

DOCS = [
    "The Eiffel Tower is in Paris.",
    "Paris is the capital of France; Paris is large.",
    "Berlin is the capital of Germany.",
    "Rivers: the Seine flows through Paris to the sea, past towers and bridges.",
]


def _bm25(query: str, docs: list[str], k1: float, b: float) -> list[float]:
    """Okapi BM25 (Lucene idf) straight from the formula."""
    toks = [tokenize(d) for d in docs]
    n = len(docs)
    avgdl = sum(len(t) for t in toks) / n
    scores = []
    for t in toks:
        s = 0.0
        for term in set(tokenize(query)):
            df = sum(term in other for other in toks)
            tf = t.count(term)
            if tf == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            s += idf * tf / (tf + k1 * (1 - b + b * len(t) / avgdl))
        scores.append(s)
    return scores


def test_tokenize():
    assert tokenize("Paris, FRANCE's capital!") == ["paris", "france", "s", "capital"]


@pytest.mark.parametrize(("k1", "b"), [(1.5, 0.75), (0.9, 0.4)])
def test_bm25_matches_formula(k1, b):
    index = BM25Index(DOCS, k1=k1, b=b)
    query = "capital of paris"
    expected = _bm25(query, DOCS, k1, b)
    hits = index.search(query, k=4)
    assert [i for i, _ in hits] == sorted(range(4), key=lambda i: -expected[i])
    for i, score in hits:
        assert score == pytest.approx(expected[i], rel=1e-5)
    # One term by hand: "berlin" is in doc 2 only (df=1, tf=1, |d|=6, avgdl=34/4).
    idf = math.log(1 + (4 - 1 + 0.5) / 1.5)
    by_hand = idf / (1 + k1 * (1 - b + b * 6 / (34 / 4)))
    [(doc, score)] = index.search("Berlin", k=3)
    assert doc == 2 and score == pytest.approx(by_hand, rel=1e-5)


def test_bm25_top_k_and_no_match():
    index = BM25Index(DOCS)
    assert [i for i, _ in index.search("capital", k=1)] == [2]  # shorter doc wins
    assert len(index.search("paris the", k=2)) == 2
    assert index.search("tokyo", k=3) == []
    assert index.search("  ,. ", k=3) == []
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search("paris", k=0)
    with pytest.raises(ValueError, match="at least one document"):
        BM25Index([])
    with pytest.raises(TypeError, match="sequence of strings"):
        BM25Index("one doc")


def test_search_tool():
    tool = SearchTool(DOCS, top_k=2, max_chars=12)
    assert isinstance(tool, Tool) and tool.name == "search"
    result = tool.run("capital of France")
    assert result.ok and result.text == "Paris is the\nBerlin is th"
    assert tool.run("tokyo").text == "no results"
    empty = tool.run("   ")
    assert empty.status == "error" and "empty query" in empty.text
    # Picklable (tools travel to workers inside factories and may be rebuilt there).
    assert pickle.loads(pickle.dumps(tool)).run("Berlin").text == "Berlin is th"
    assert ToolSet([SearchTool(DOCS)]).names == ("search",)
    with pytest.raises(ValueError, match="top_k and max_chars"):
        SearchTool(DOCS, top_k=0)


def test_missing_bm25s_names_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm25s", None)
    with pytest.raises(ImportError, match=r"rlinf-envs\[search\]"):
        BM25Index(DOCS)
