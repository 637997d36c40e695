"""The offline multi-hop QA task: deterministic generation, disjoint splits, every question
answerable by two real BM25 searches, gold traces built from the real search output, and
the answer scorer."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("bm25s")

from rlinf.envs.agentic import (
    AnswerScorer,
    MultiHopConfig,
    SearchTool,
    TaggedCallFormat,
    generate_multihop,
)
from rlinf.envs.agentic._multihop import normalize_answer

SMALL = MultiHopConfig(seed=3, num_people=120, num_cities=15, num_countries=5, test_people=30)
_PERSON = re.compile(r"In which country was (\w+) born\?")


@pytest.fixture(scope="module")
def data():
    return generate_multihop(SMALL)


def _person(row) -> str:
    m = _PERSON.match(row.prompt)
    assert m is not None, row.prompt
    return m.group(1)


def test_same_seed_same_task_other_seed_other_task(data):
    again = generate_multihop(SMALL)
    assert again.corpus == data.corpus and again.train == data.train and again.test == data.test
    other = generate_multihop(MultiHopConfig(**{**SMALL.__dict__, "seed": 4}))
    assert other.corpus != data.corpus


def test_sizes_and_corpus(data):
    assert len(data.train) == 90 and len(data.test) == 30
    assert len(data.corpus) == 120 + 15
    assert len(set(data.corpus)) == len(data.corpus)
    births = [d for d in data.corpus if " was born in " in d]
    assert len(births) == 120
    countries = {d.split(" is in ")[1].rstrip(".") for d in data.corpus if " is in " in d}
    assert len(countries) == 5  # every country has a city (15 cities >= 5 countries)
    for row in data.train + data.test:
        assert row.answer in countries
        assert row.answer not in row.prompt  # the question does not give the answer away


def test_splits_are_disjoint_and_test_people_never_in_traces(data):
    train_people = {_person(r) for r in data.train}
    test_people = {_person(r) for r in data.test}
    assert not train_people & test_people
    trace_text = " ".join(text for r in data.train for text, _ in r.trace)
    for person in test_people:
        assert not re.search(rf"\b{person}\b", trace_text), person


def test_every_question_needs_and_gets_two_real_searches(data):
    tool = SearchTool(data.corpus, top_k=1, max_chars=200)
    for row in data.train + data.test:
        person = _person(row)
        first = tool.run(person).text
        m = re.fullmatch(rf"{person} was born in (\w+)\.", first)
        assert m is not None, (person, first)
        second = tool.run(m.group(1)).text
        assert second == f"{m.group(1)} is in {row.answer}.", (person, second)


def test_trace_is_the_real_tool_transcript(data):
    tool, fmt = data.search_tool(), TaggedCallFormat(tools=("search",))
    row = data.train[0]
    person = _person(row)
    (t1, k1), (o1, k2), (t2, k3), (o2, k4), (ans, k5) = row.trace
    assert (k1, k2, k3, k4, k5) == (True, False, True, False, True)
    assert t1 == f"<search>{person}</search>"
    assert fmt.parse(t1).call.arguments == person
    assert o1 == fmt.wrap(tool.run(person))
    city = fmt.parse(t2).call.arguments
    assert o1 == f"<result>{person} was born in {city}.</result>"
    assert o2 == fmt.wrap(tool.run(city))
    assert fmt.parse(ans).answer == row.answer
    assert row.prompt == f"In which country was {person} born?\n"


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="test_people"):
        MultiHopConfig(num_people=10, test_people=10)
    with pytest.raises(ValueError, match="max_syllables"):
        MultiHopConfig(min_syllables=3, max_syllables=2)
    with pytest.raises(ValueError, match="template"):
        MultiHopConfig(template="no placeholder")
    with pytest.raises(ValueError, match="max_syllables"):
        MultiHopConfig(num_people=3000, max_syllables=2)  # 65**2 = 4225 names, too crowded
    with pytest.raises(ValueError, match="num_countries"):
        MultiHopConfig(num_countries=0)


@pytest.mark.parametrize(
    ("response", "score", "status"),
    [
        ("<search>bexo</search><result>x</result><answer>Luvia.</answer>", 1.0, "correct"),
        ("<answer> luvia </answer>", 1.0, "correct"),
        ("<answer>tirak</answer>", 0.0, "wrong"),
        # The last answer counts (a revised answer replaces a draft).
        ("<answer>tirak</answer> no: <answer>luvia</answer>", 1.0, "correct"),
        ("<answer>luvia</answer> no: <answer>tirak</answer>", 0.0, "wrong"),
        # An answer inside a tool observation is not the model's, closed or cut off.
        ("<search>q</search><result><answer>luvia</answer></result>", 0.0, "no_answer"),
        ("<answer>tirak</answer><result><answer>luvia</answer></result>", 0.0, "wrong"),
        ("<search>q</search><result>cut <answer>luvia</answer>", 0.0, "no_answer"),
        ("luvia", 0.0, "no_answer"),
        ("<answer>luvia", 0.0, "no_answer"),
        ("", 0.0, "no_answer"),
    ],
)
def test_scorer_cases(response, score, status):
    (result,) = AnswerScorer().score([response], ["luvia"])
    assert (result.score, result.status) == (score, status)


def test_format_reward_and_errors():
    scorer = AnswerScorer(format_reward=0.1)
    results = scorer.score(["<answer>x</answer>", "x", "<answer>y</answer>"], ["y", "y", "y"])
    assert [(r.score, r.status) for r in results] == [
        (0.1, "wrong"),
        (0.0, "no_answer"),
        (1.0, "correct"),
    ]
    assert results[0].answer == "x" and results[1].answer is None
    with pytest.raises(ValueError, match="format_reward"):
        AnswerScorer(format_reward=1.0)
    with pytest.raises(ValueError, match="2 responses but 1 answers"):
        scorer.score(["a", "b"], ["a"])
    assert normalize_answer("  New   York! ") == "new york"
