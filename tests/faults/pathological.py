"""Documents an attacker would send to make validation slow, generated from a seed.

Each family aims at one way a validator can take more than linear time: fragments spreading
fragments (expansion), one wide fragment spread many times, many operations, many fragments,
directives, aliases, fields of one name to merge, long strings, deep lists and deep selections.
Every document stays within the request-size limit; most are refused, some are valid.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

FIELDS = ("loanProducts { code }", "__typename", "loanProducts { code name }")


def nested_fragments(rng: random.Random) -> str:
    levels, width = rng.randint(8, 40), rng.randint(2, 4)
    spreads = [
        f"fragment F{i} on Query {{ {f'...F{i + 1} ' * width}loanProducts {{ code }} }}"
        for i in range(levels)
    ]
    spreads.append(f"fragment F{levels} on Query {{ loanProducts {{ code }} }}")
    return "query { ...F0 }\n" + "\n".join(spreads)


def wide_fragment(rng: random.Random) -> str:
    fields = " ".join(rng.choice(FIELDS) for _ in range(rng.randint(100, 600)))
    spreads = " ".join("...W" for _ in range(rng.randint(2, 400)))
    return f"query {{ {spreads} }}\nfragment W on Query {{ {fields} }}"


def many_operations(rng: random.Random) -> str:
    count = rng.randint(50, 1600)
    return "\n".join(f"query Q{i} {{ __typename }}" for i in range(count))


def many_fragments(rng: random.Random) -> str:
    count = rng.randint(50, 1000)
    body = " ".join(f"...G{i}" for i in range(count))
    return f"query {{ {body} }}\n" + "\n".join(
        f"fragment G{i} on Query {{ __typename }}" for i in range(count)
    )


def directives(rng: random.Random) -> str:
    count = rng.randint(100, 2500)
    return "query { loanProducts { code " + "@include(if: true) " * count + "} }"


def aliases(rng: random.Random) -> str:
    count = rng.randint(20, 2500)
    return "query { " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


def same_field(rng: random.Random) -> str:
    count = rng.randint(100, 2400)
    return "query { " + "loanProducts { code } " * count + "}"


def long_string(rng: random.Random) -> str:
    text = "x" * rng.randint(10_000, 900_000)
    return (
        f'query {{ applicants(first: 1, filter: {{ nameContains: "{text}" }}) {{ totalCount }} }}'
    )


def deep_list(rng: random.Random) -> str:
    depth = rng.randint(100, 2400)
    return "query { loanProducts(codes: " + "[" * depth + '"A"' + "]" * depth + ") { code } }"


def deep_selection(rng: random.Random) -> str:
    depth = rng.randint(16, 2400)
    return (
        "query { "
        + 'loan(id: "x") { application { ' * (depth // 2)
        + "id"
        + " } }" * (depth // 2)
        + " }"
    )


FAMILIES: tuple[Callable[[random.Random], str], ...] = (
    nested_fragments,
    wide_fragment,
    many_operations,
    many_fragments,
    directives,
    aliases,
    same_field,
    long_string,
    deep_list,
    deep_selection,
)


def documents(seed: int, count: int) -> Iterator[tuple[str, str]]:
    """``count`` (family, document) pairs, the families in turn."""
    rng = random.Random(seed)
    for n in range(count):
        family = FAMILIES[n % len(FAMILIES)]
        yield family.__name__, family(rng)
