"""BM25 search over a local corpus (bm25s), and the ``search`` tool built on it."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from ._tools import ToolResult

__all__ = ["BM25Index", "SearchTool", "tokenize"]

_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lowercased words (``\\w+`` runs); no stemming, no stopwords."""
    return _WORD.findall(text.lower())


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError as e:
        raise ImportError("BM25 search needs bm25s: pip install 'rlinf-envs[search]'") from e
    return bm25s


class BM25Index:
    """Okapi BM25 over ``docs`` (bm25s, Lucene variant).

    ``score(q, d) = sum over distinct query terms t in d of
    idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))`` with
    ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))`` (always positive, so every document
    sharing a term with the query scores above zero).

    Args:
        docs: the corpus; document ids are positions in it.
        k1: term-frequency saturation.
        b: document-length normalization.
    """

    def __init__(self, docs: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        if isinstance(docs, str) or not all(isinstance(d, str) for d in docs):
            raise TypeError("docs must be a sequence of strings")
        if len(docs) == 0:
            raise ValueError("BM25Index needs at least one document")
        if k1 <= 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25 needs k1 > 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        bm25s = _bm25s()
        self.num_docs = len(docs)
        self.k1 = k1
        self.b = b
        # Pre-tokenized input keeps bm25s' own tokenizer (and its stemmer/stopwords) out.
        self._index = bm25s.BM25(k1=k1, b=b, method="lucene")
        self._index.index([tokenize(d) for d in docs], show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Up to ``k`` ``(doc_id, score)`` pairs, best first (ties: lower id first); only
        documents sharing a term with ``query`` (empty list when none does)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        terms = list(dict.fromkeys(tokenize(query)))  # each distinct term once
        ids = self._index.get_tokens_ids(terms)
        if not ids:
            return []
        scores = self._index.get_scores_from_ids(ids)
        hits = [(i, float(s)) for i, s in enumerate(scores) if s > 0]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]


class SearchTool:
    """The ``search`` tool: the ``top_k`` best documents for the query, joined by ``"\\n"``,
    each cut to ``max_chars`` characters. Safe to call from several threads (searching
    only reads the index).

    Args:
        docs: the corpus.
        top_k: documents returned per call.
        max_chars: characters kept of each document.
    """

    name = "search"
    description = "search(query): the best-matching documents of the corpus (BM25)"

    def __init__(self, docs: Sequence[str], top_k: int = 1, max_chars: int = 200) -> None:
        if top_k < 1 or max_chars < 1:
            raise ValueError(f"top_k and max_chars must be >= 1, got {top_k}, {max_chars}")
        self.docs = list(docs)
        self.top_k = top_k
        self.max_chars = max_chars
        self.index = BM25Index(self.docs)

    def run(self, arguments: str) -> ToolResult:
        """Search for ``arguments`` (the query text)."""
        start = time.perf_counter()
        if not arguments.strip():
            return ToolResult("error: empty query", "error", time.perf_counter() - start)
        hits = self.index.search(arguments, self.top_k)
        text = "\n".join(self.docs[i][: self.max_chars] for i, _ in hits) or "no results"
        return ToolResult(text, "ok", time.perf_counter() - start)
