"""`search`: a local corpus indexed with SQLite FTS5 (BM25 ranking), the tools ``search(query)``
and ``open(doc_id)``, and a procedural, seeded multi-hop question set over a generated corpus.

The generated corpus is fictional (so no model knows it): people, each working for a company,
and companies, each headquartered in a city, in separate documents, with filler documents
around them. "In which city is the company that <person> works for headquartered?" needs two
lookups: the person's document names the company, the company's document names the city.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from typing import Any

from payoff.envs.base import Tool, ToolEnv

_SYLLABLES = "ka lo mi ra ve tu sen dor fa li no bar quin zel tho mar is el an ur".split()


class SearchIndex:
    """An FTS5 index over ``{doc_id: (title, text)}`` in a private in-memory SQLite database."""

    def __init__(self, documents: dict[str, tuple[str, str]]) -> None:
        self.connection = sqlite3.connect(":memory:", check_same_thread=False)
        self.connection.execute("CREATE VIRTUAL TABLE docs USING fts5(doc_id UNINDEXED, title, text)")
        self.connection.executemany("INSERT INTO docs VALUES (?, ?, ?)", [(k, t, x) for k, (t, x) in documents.items()])
        self.documents = documents

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """The `k` best documents by BM25 (lower bm25() is better in SQLite)."""
        terms = " OR ".join('"' + word.replace('"', "") + '"' for word in query.split() if word.strip('"'))
        if not terms:
            return []
        rows = self.connection.execute(
            "SELECT doc_id, title, snippet(docs, 2, '[', ']', '...', 12), bm25(docs) FROM docs WHERE docs MATCH ? "
            "ORDER BY bm25(docs) LIMIT ?", (terms, k)).fetchall()
        return [{"doc_id": d, "title": t, "snippet": s, "score": -b} for d, t, s, b in rows]

    def open(self, doc_id: str) -> str:
        if doc_id not in self.documents:
            raise KeyError(f"no document {doc_id!r}")
        title, text = self.documents[doc_id]
        return f"# {title}\n{text}"

    def close(self) -> None:
        self.connection.close()


def _name(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts)).capitalize()


def multi_hop_corpus(seed: int = 0, people: int = 20, companies: int = 8, cities: int = 6,
                     filler: int = 20) -> tuple[dict[str, tuple[str, str]], list[dict[str, Any]]]:
    """(documents, rows): a seeded fictional corpus and one two-hop question per person."""
    rng = random.Random(seed)
    names: set[str] = set()

    def unique(parts: int) -> str:
        while (name := _name(rng, parts)) in names:
            pass
        names.add(name)
        return name

    city_names = [unique(3) for _ in range(cities)]
    company_city = {unique(2) + " Works": rng.choice(city_names) for _ in range(companies)}
    person_company = {f"{unique(2)} {unique(3)}": rng.choice(list(company_city)) for _ in range(people)}
    documents: dict[str, tuple[str, str]] = {}
    for i, (company, city) in enumerate(company_city.items()):
        documents[f"org-{i}"] = (company, f"{company} is a maker of {rng.choice(['lamps', 'boats', 'clocks', 'looms'])}. "
                                          f"Its headquarters are in {city}.")
    rows = []
    for i, (person, company) in enumerate(person_company.items()):
        documents[f"person-{i}"] = (person, f"{person} is an engineer. {person} works for {company}.")
        rows.append({"prompt": f"In which city is the company that {person} works for headquartered? "
                               "Answer with the city's name only.",
                     "reference": company_city[company], "meta": {"hops": [f"person-{i}", f"org-{list(company_city).index(company)}"]}})
    for i in range(filler):
        city = rng.choice(city_names)
        documents[f"note-{i}"] = (f"Travel note {i}", f"{city} has a {rng.choice(['market', 'harbour', 'museum'])} "
                                                      f"visited by many engineers.")
    return documents, rows


@dataclass
class SearchEnv(ToolEnv):
    """Tools ``search(query)`` and ``open(doc_id)`` over `documents` (default: the generated
    multi-hop corpus for `seed`). Reward: the row's (``exact_match`` on the final answer)."""

    system: str = "Use search and open to find the answer in the corpus. Reply with the answer only."
    documents: dict[str, tuple[str, str]] | None = None
    seed: int = 0
    k: int = 5
    index: SearchIndex | None = None

    def reset(self, row: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        self.close()
        documents = self.documents if self.documents is not None else multi_hop_corpus(self.seed)[0]
        self.index = SearchIndex(documents)
        self.tools = [
            Tool("search", "Search the corpus (BM25); returns doc ids, titles and snippets.",
                 {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"], "additionalProperties": False},
                 lambda query: self.index.search(query, self.k)),  # type: ignore[union-attr]
            Tool("open", "Read one document by its doc_id.",
                 {"type": "object", "properties": {"doc_id": {"type": "string"}}, "required": ["doc_id"], "additionalProperties": False},
                 lambda doc_id: self.index.open(doc_id)),  # type: ignore[union-attr]
        ]
        return super().reset(row)

    def close(self) -> None:
        if self.index is not None:
            self.index.close()
            self.index = None
