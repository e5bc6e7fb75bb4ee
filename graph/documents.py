"""Documents parsed and validated once, and remembered within a budget of characters.

A parsed document is made of objects in proportion to its text (a 40,000-character document of
5,000 tokens is some 5,500 of them, its tokens included), and every object a cache keeps is
walked by each full garbage collection, which holds the event loop while it runs. Counted in
entries, a cache of 256 documents could hold 1.4 million objects sent by one caller, and every
full collection then took close to a second. So caches of document text are counted in
characters too (``TextCache``), and only documents that passed validation are kept: refused
ones are parsed and refused again, in time linear in their size, if they come back.

Nor does a document leave a reference cycle behind (``parse``): graphql-core's lexer links its
tokens both ways, so every document parsed, or refused while parsing, was a cycle of thousands
of objects that only the cycle collector could free. Sent one after another, documents of 5,000
tokens filled its younger generations with them, and each of their collections held the event
loop for half a second (/healthz waited 600 ms at p99). Unlinked, a document is freed by
reference counting as soon as nothing uses it.

Long documents are parsed in a worker thread (``PARSED_IN_THREAD``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from graphql import DocumentNode, GraphQLError, GraphQLSchema, Lexer, Source, Token
from graphql.language.parser import Parser, nested_too_deeply_error
from graphql.validation import ASTValidationRule
from strawberry.extensions import SchemaExtension

# Each cache of document text keeps at most this many characters of it…
DOCUMENT_CACHE_CHARS = 250_000
# …and a document longer than this share of it is never kept (a real client's documents are a
# few kilobytes; a long one would evict dozens of them).
LONGEST_CACHED = DOCUMENT_CACHE_CHARS // 10
DOCUMENT_CACHE_ENTRIES = 256
# A document longer than this is parsed in a worker thread. graphql-core parses some 130,000
# tokens a second here, so the 5,000 tokens a document may hold would keep the event loop from
# every other request for 40 ms; in a thread, the interpreter hands the loop its turn every
# few milliseconds (sys.getswitchinterval) while the parse goes on.
PARSED_IN_THREAD = 4000

T = TypeVar("T")


class TextCache(Generic[T]):
    """Values by document text, the least recently used dropped first, within ``max_chars``
    of text and ``max_entries`` entries; texts longer than ``longest`` are not kept."""

    def __init__(
        self,
        max_chars: int = DOCUMENT_CACHE_CHARS,
        max_entries: int = DOCUMENT_CACHE_ENTRIES,
        longest: int = LONGEST_CACHED,
    ) -> None:
        self.max_chars = max_chars
        self.max_entries = max_entries
        self.longest = longest
        self.chars = 0
        self._entries: OrderedDict[Hashable, tuple[int, T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> T | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, key: Hashable, chars: int, value: T) -> None:
        """Keep ``value`` for ``key`` (a text of ``chars`` characters), if it is short enough."""
        self.discard(key)
        if chars > self.longest:
            return
        self._entries[key] = (chars, value)
        self.chars += chars
        while self.chars > self.max_chars or len(self._entries) > self.max_entries:
            dropped, _ = self._entries.popitem(last=False)[1]
            self.chars -= dropped

    def discard(self, key: Hashable) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.chars -= found[0]


Rules = tuple[type[ASTValidationRule], ...]
Validate = Callable[[GraphQLSchema, DocumentNode, Rules], list[GraphQLError]]


def parse(text: str, options: Mapping[str, Any]) -> DocumentNode:
    """graphql-core's ``parse`` (with its ``options``), its tokens then linked one way only;
    a syntax error is raised without the parser's frames (they hold the tokens)."""
    lexer = Lexer(Source(text))
    try:
        return _document(Parser(lexer.source, lexer=lexer, **options))
    except GraphQLError as error:
        refused = error.with_traceback(None)
    finally:
        _unlink(lexer.token)
        del lexer
    raise refused


def _document(parser: Parser) -> DocumentNode:
    try:
        return parser.parse_document()
    except RecursionError:
        pass
    raise nested_too_deeply_error(parser)  # out of the handler, as graphql-core's parse does


def _unlink(token: Token) -> None:
    """Drops each token's link to the one before it, from the last token read back to the
    first: the tokens stay reachable from the first one (a document's locations hold it)."""
    while token.next is not None:
        token = token.next
    previous: Token | None = token
    while previous is not None:
        token, previous = previous, previous.prev
        token.prev = None


class _Parsed:
    __slots__ = ("document", "valid_for")

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.valid_for: set[Rules] = set()


class Documents:
    """One schema's parsed documents by their text and parse options, each with the rule sets
    it passed; ``validate`` is the schema's whole validation (graph.limits.validated)."""

    def __init__(self, validate: Validate, cache: TextCache[_Parsed] | None = None) -> None:
        self._validate = validate
        self._cache = cache if cache is not None else TextCache()

    async def parse(self, text: str, options: Mapping[str, Any]) -> DocumentNode:
        key = (text, *sorted(options.items()))
        found = self._cache.get(key)
        if found is None:
            if len(text) > PARSED_IN_THREAD:
                document = await asyncio.to_thread(parse, text, options)
            else:
                document = parse(text, options)  # a syntax error is raised, not kept
            found = _Parsed(document)
            self._cache.put(key, len(text), found)
        return found.document

    def validate(
        self,
        schema: GraphQLSchema,
        text: str,
        options: Mapping[str, Any],
        document: DocumentNode,
        rules: Rules,
    ) -> list[GraphQLError]:
        key = (text, *sorted(options.items()))
        found = self._cache.get(key)
        if found is not None and found.document is document and rules in found.valid_for:
            return []
        errors = self._validate(schema, document, rules)
        if errors:
            self._cache.discard(key)  # refused documents are not remembered
        elif found is not None and found.document is document:
            found.valid_for.add(rules)
        return errors


class CachedDocuments(SchemaExtension):
    """Parses and validates each request's document through ``documents``."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        assert context.query is not None  # a request without one is refused before parsing
        context.graphql_document = await self.documents.parse(context.query, context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.query is not None
        assert context.graphql_document is not None
        context.pre_execution_errors = self.documents.validate(
            context.schema._schema,
            context.query,
            context.parse_options,
            context.graphql_document,
            tuple(context.validation_rules),
        )
        yield
