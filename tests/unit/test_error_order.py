"""A result's field errors are listed in the document's order, whether it is a query's or
mutation's one result or one event of a subscription's stream."""

from __future__ import annotations

from graphql import ExecutionResult, GraphQLError, Source, SourceLocation, parse

from graph.schema import _masked

DOCUMENT = """subscription {
  loanEvents {
    first: application { id }
    second: loan { id }
  }
}"""


def errors_out_of_order() -> list[GraphQLError]:
    """Two field errors as graphql-core may list them: the second field's first, as it failed
    first (the first waited on the database)."""
    source = Source(DOCUMENT)
    document = parse(source)
    selections = document.definitions[0].selection_set.selections[0].selection_set.selections  # type: ignore[attr-defined]
    first, second = selections
    return [
        GraphQLError("second", nodes=[second], source=source, path=["loanEvents", "second"]),
        GraphQLError("first", nodes=[first], source=source, path=["loanEvents", "first"]),
    ]


async def test_an_events_field_errors_are_listed_in_the_documents_order():
    async def events():
        yield ExecutionResult(data={"loanEvents": None}, errors=errors_out_of_order())

    # when an event's result with two field errors goes out of the schema's stream
    results = [result async for result in _masked(events(), "request-1")]

    # then its errors follow their fields in the document, as an executed result's do
    (result,) = results
    assert [error.path for error in result.errors] == [
        ["loanEvents", "first"],
        ["loanEvents", "second"],
    ]
    assert result.errors[0].locations == [SourceLocation(3, 5)]
