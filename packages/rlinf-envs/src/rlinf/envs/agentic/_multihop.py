"""The offline multi-hop question-answering task: a generated corpus of pseudo-word facts
("bexo was born in tirak." / "tirak is in luvia."), two-hop questions ("In which country
was bexo born?") that need two searches to answer, gold tool-use traces for an SFT warm-up,
and the answer scorer.

Entities are random pseudo-words, so nothing about the answer can be read off the question
or recalled from pre-training: the only way to the country is to search for the person,
read the city, and search for the city.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ._calls import TaggedCallFormat
from ._search import SearchTool

__all__ = [
    "AgentRow",
    "AnswerResult",
    "AnswerScorer",
    "MultiHopConfig",
    "MultiHopData",
    "generate_multihop",
    "normalize_answer",
]

_CONSONANTS = "bdfgklmnprtvz"
_VOWELS = "aeiou"
AnswerStatus = Literal["correct", "wrong", "no_answer"]


@dataclass(frozen=True)
class MultiHopConfig:
    """How the corpus and the questions are generated.

    Attributes:
        seed: the same seed gives the same corpus, questions and split.
        num_people: people in the corpus; each is the subject of one question.
        num_cities: cities people are born in (each in one country).
        num_countries: countries, i.e. possible answers (a blind guess is right with
            probability about ``1 / num_countries``).
        min_syllables: shortest entity name, in consonant-vowel syllables.
        max_syllables: longest entity name, in syllables.
        test_people: people whose questions form the held-out split; they never occur in a
            train row (nor in its trace).
        template: the question; ``{person}`` is replaced by the person's name.
        top_k: documents the search tool returns per query.
        max_chars: the search tool's cut of each returned document.
    """

    seed: int = 0
    num_people: int = 2000
    num_cities: int = 200
    num_countries: int = 20
    min_syllables: int = 2
    max_syllables: int = 3
    test_people: int = 400
    template: str = "In which country was {person} born?\n"
    top_k: int = 1
    max_chars: int = 200

    def __post_init__(self) -> None:
        for name in ("num_people", "num_cities", "num_countries", "min_syllables", "top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"MultiHopConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_syllables < self.min_syllables:
            raise ValueError(
                f"MultiHopConfig.max_syllables ({self.max_syllables}) must be >= "
                f"min_syllables ({self.min_syllables})"
            )
        if not 1 <= self.test_people < self.num_people:
            raise ValueError(
                f"MultiHopConfig.test_people must be in [1, num_people={self.num_people}), "
                f"got {self.test_people}"
            )
        if self.template.count("{person}") != 1:
            raise ValueError("MultiHopConfig.template must contain {person} exactly once")
        total = self.num_people + self.num_cities + self.num_countries
        if total > _name_space(self) // 4:
            # Rejection sampling of unique names would crawl, and names would crowd.
            raise ValueError(
                f"MultiHopConfig: {total} entities need more distinct names; raise "
                f"max_syllables (now {self.max_syllables})"
            )
        if self.max_chars < 1:
            raise ValueError(f"MultiHopConfig.max_chars must be >= 1, got {self.max_chars}")


@dataclass(frozen=True)
class AgentRow:
    """One question of an agent task.

    Attributes:
        prompt: the text the model continues.
        answer: the gold answer (what the scorer compares with).
        trace: the gold tool-use transcript after the prompt as ``(text, trained?)``
            segments: the model's turns (trained) and the tool observations exactly as the
            rollout appends them (not trained); empty when the task has none.
    """

    prompt: str
    answer: str
    trace: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class MultiHopData:
    """A generated task.

    Attributes:
        corpus: the documents the search tool indexes (one fact each).
        train: train questions with gold traces.
        test: held-out questions about people who never occur in ``train``.
        config: what generated it (the search tool must be built with its ``top_k`` and
            ``max_chars`` for the traces to match what the model sees).
    """

    corpus: list[str]
    train: list[AgentRow]
    test: list[AgentRow]
    config: MultiHopConfig

    def search_tool(self) -> SearchTool:
        """A search tool over :attr:`corpus`, configured as the traces were made."""
        return SearchTool(self.corpus, top_k=self.config.top_k, max_chars=self.config.max_chars)


def _name_space(config: MultiHopConfig) -> int:
    syllables = len(_CONSONANTS) * len(_VOWELS)
    return sum(syllables**n for n in range(config.min_syllables, config.max_syllables + 1))


def _names(rng: random.Random, count: int, config: MultiHopConfig) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        n = rng.randint(config.min_syllables, config.max_syllables)
        name = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(n))
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def generate_multihop(config: MultiHopConfig = MultiHopConfig()) -> MultiHopData:
    """Generate the corpus, the train / held-out questions and the gold traces.

    Every person is born in a uniformly drawn city and every city lies in a uniformly drawn
    country (each country gets at least one city when there are enough). Each trace is made
    by running the real :class:`SearchTool`: search the person, search the city the result
    names, answer the country. Raises ``RuntimeError`` if a search does not return the fact
    it needs (so every question is answerable by two searches).
    """
    rng = random.Random(config.seed)
    names = _names(rng, config.num_people + config.num_cities + config.num_countries, config)
    people = names[: config.num_people]
    cities = names[config.num_people : config.num_people + config.num_cities]
    countries = names[config.num_people + config.num_cities :]
    # The first cities cover every country once (when there are enough), the rest draw.
    country_of = {
        c: countries[i] if i < len(countries) else rng.choice(countries)
        for i, c in enumerate(cities)
    }
    city_of = {p: rng.choice(cities) for p in people}
    birth = [f"{p} was born in {city_of[p]}." for p in people]
    location = [f"{c} is in {country_of[c]}." for c in cities]
    corpus = birth + location
    rng.shuffle(corpus)

    tool = SearchTool(corpus, top_k=config.top_k, max_chars=config.max_chars)
    fmt = TaggedCallFormat(tools=("search",))
    rows = []
    for p in people:
        city, country = city_of[p], country_of[city_of[p]]
        first, second = tool.run(p), tool.run(city)
        for query, result, fact in ((p, first, birth), (city, second, location)):
            want = f"{p} was born in {city}." if fact is birth else f"{city} is in {country}."
            if not result.ok or want not in result.text:
                raise RuntimeError(
                    f"search for {query!r} did not return {want!r} (got {result.text!r}); "
                    "the corpus is not answerable by two searches"
                )
        trace = (
            (f"<search>{p}</search>", True),
            (fmt.wrap(first), False),
            (f"<search>{city}</search>", True),
            (fmt.wrap(second), False),
            (f"<answer>{country}</answer>", True),
        )
        rows.append(AgentRow(config.template.format(person=p), country, trace))
    # People are already in random order: the last test_people are held out.
    cut = config.num_people - config.test_people
    return MultiHopData(corpus, rows[:cut], rows[cut:], config)


# ---------------------------------------------------------------------------- scoring

_RESULT_BLOCK = re.compile(r"<result>.*?(?:</result>|\Z)", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def normalize_answer(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: ``" Luvia. "`` -> ``"luvia"``."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(text.split())


@dataclass(frozen=True)
class AnswerResult:
    """The score of one response.

    Attributes:
        score: 1.0 when correct; ``format_reward`` for a wrong but tagged answer; else 0.
        status: ``correct``, ``wrong`` or ``no_answer`` (no ``<answer>`` block).
        answer: the extracted answer text (None when there is none).
    """

    score: float
    status: AnswerStatus
    answer: str | None


class AnswerScorer:
    """Scores agent transcripts against gold answers (``RewardWorker``'s ``Scorer``).

    The answer is the last ``<answer>...</answer>`` outside ``<result>`` blocks (tool
    output cannot answer for the model); it is correct when it equals the gold answer after
    :func:`normalize_answer`.

    Args:
        format_reward: score of a wrong answer that is properly tagged (0: outcome only).
    """

    def __init__(self, format_reward: float = 0.0) -> None:
        if not 0.0 <= format_reward < 1.0:
            raise ValueError(f"format_reward must be in [0, 1), got {format_reward}")
        self.format_reward = format_reward

    @staticmethod
    def extract(response: str) -> str | None:
        """The model's last tagged answer, ignoring anything inside ``<result>`` blocks."""
        found = _ANSWER.findall(_RESULT_BLOCK.sub(" ", response))
        return found[-1] if found else None

    def score(self, responses: Sequence[str], answers: Sequence[str]) -> list[AnswerResult]:
        """One :class:`AnswerResult` per response."""
        if len(responses) != len(answers):
            raise ValueError(f"got {len(responses)} responses but {len(answers)} answers")
        out = []
        for response, gold in zip(responses, answers, strict=True):
            got = self.extract(response)
            if got is None:
                out.append(AnswerResult(0.0, "no_answer", None))
            elif normalize_answer(got) == normalize_answer(gold):
                out.append(AnswerResult(1.0, "correct", got))
            else:
                out.append(AnswerResult(self.format_reward, "wrong", got))
        return out
