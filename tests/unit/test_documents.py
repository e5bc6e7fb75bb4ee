"""Parsed documents: freed by reference counting, cached within a budget of characters, and
only when they passed validation."""

from __future__ import annotations

import gc

import pytest
from graphql import GraphQLError, Token

from graph.documents import Documents, TextCache, parse
from graph.limits import QueryLimits, validation
from graph.schema import build_schema

SCHEMA = build_schema()._schema
WIDE = "{ " + " ".join(f"a{n}: __typename" for n in range(1500)) + " }"  # 3,000+ tokens


def _tokens(objects: list[object]) -> int:
    return sum(isinstance(o, Token) for o in objects)


def test_a_parsed_document_leaves_no_cycle_of_tokens():
    document = parse(WIDE, {})
    assert document.loc is not None
    assert document.loc.start_token.next is not None  # still read from the first token on
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        del document
        gc.collect()
        assert _tokens(gc.garbage) == 0  # freed by reference counting, not left to the collector
    finally:
        gc.garbage.clear()
        gc.set_debug(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{ " + "a " * 6000 + "}", "more than 5000 tokens"),
        ("{ f(a: " + "[" * 3000 + "]" * 3000 + ") }", "nested too deeply"),
        ("{ a b c " * 200 + "(", "Expected"),
    ],
)
def test_a_refused_document_leaves_no_cycle_of_tokens(text: str, message: str):
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        with pytest.raises(GraphQLError, match=message) as refused:
            parse(text, {"max_tokens": 5000})
        assert refused.value.__traceback__ is not None
        del refused
        gc.collect()
        assert _tokens(gc.garbage) == 0
    finally:
        gc.garbage.clear()
        gc.set_debug(0)


def test_a_text_cache_keeps_the_latest_within_its_characters():
    cache: TextCache[int] = TextCache(max_chars=100, max_entries=5, longest=40)
    for n in range(4):
        cache.put(f"t{n}", 30, n)
    assert cache.chars <= 100
    assert [cache.get(f"t{n}") for n in range(4)] == [None, 1, 2, 3]
    cache.get("t1")  # now the latest used
    cache.put("t4", 30, 4)
    assert [cache.get(f"t{n}") for n in range(5)] == [None, 1, None, 3, 4]
    cache.put("long", 41, 9)  # longer than any kept
    assert cache.get("long") is None
    assert cache.chars == 90
    for n in range(10):
        cache.put(f"s{n}", 1, n)
    assert len(cache) == 5


async def test_only_documents_that_passed_validation_are_kept():
    calls = 0
    validate = validation(QueryLimits())

    def counted(schema, document, rules):
        nonlocal calls
        calls += 1
        return validate(schema, document, rules)

    documents = Documents(counted, TextCache(max_chars=10_000))
    for _ in range(3):
        text = "{ __typename }"
        parsed = await documents.parse(text, {})
        assert documents.validate(SCHEMA, text, {}, parsed, ()) == []
    assert calls == 1  # parsed and validated once
    assert await documents.parse("{ __typename }", {}) is parsed

    refused = await documents.parse(WIDE, {})  # too many aliases, parsed in a thread
    assert documents.validate(SCHEMA, WIDE, {}, refused, ())[0].extensions == {
        "code": "QUERY_TOO_COMPLEX"
    }
    assert await documents.parse(WIDE, {}) is not refused  # not kept: parsed again
