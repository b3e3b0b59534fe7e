"""A deterministic corpus of small field notes, generated on first use instead of committed.

Why generated: a few hundred documents keep the repository small and need no download; the
same seed gives byte-identical files on every machine, so a resumed run indexes the same text.
"""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["TOPICS", "ensure_corpus", "read_document"]

TOPICS: dict[str, list[str]] = {
    "beekeeping": ["hive", "queen", "honey", "comb", "pollen", "swarm", "smoker", "nectar"],
    "lighthouses": ["lamp", "keeper", "fog", "lens", "reef", "beacon", "tide", "gallery"],
    "sourdough": ["starter", "flour", "crust", "proof", "levain", "oven", "crumb", "salt"],
    "glaciers": ["ice", "moraine", "crevasse", "melt", "valley", "snowfield", "calving", "till"],
    "railways": ["locomotive", "timetable", "signal", "platform", "sleeper", "junction", "freight", "gauge"],
    "astronomy": ["telescope", "nebula", "orbit", "comet", "eclipse", "parallax", "galaxy", "meteor"],
    "orchards": ["graft", "blossom", "pruning", "cider", "rootstock", "harvest", "frost", "apple"],
    "weaving": ["loom", "warp", "weft", "shuttle", "tapestry", "dye", "wool", "pattern"],
}
_OPENERS = [
    "In the old notebook the {a} is mentioned before anything else.",
    "Every season begins with the {a} and ends with the {b}.",
    "Nobody who has worked with a {a} forgets the first {b}.",
    "The {a} matters more than most visitors expect.",
]
_SENTENCES = [
    "A careful observer notes how the {a} changes once the {b} is checked.",
    "Records from the valley describe the {a} in patient, exact detail.",
    "When the weather turns, the {a} and the {b} both need attention.",
    "Apprentices learn the {a} long before they are trusted with the {b}.",
    "The best guides agree that a good {a} depends on a steady {b}.",
    "Some say the {a} was simpler a century ago; the ledgers disagree.",
    "The {a} is measured twice a day and written down in ink.",
    "Small mistakes with the {b} show up weeks later in the {a}.",
]


def _document(rng: random.Random, number: int) -> str:
    topic = rng.choice(sorted(TOPICS))
    words = TOPICS[topic]
    title = f"Field note {number}: {topic} and the {rng.choice(words)}"
    paragraphs: list[str] = []
    for index in range(rng.randint(2, 3)):
        templates = [rng.choice(_OPENERS)] if index == 0 else []
        templates += rng.sample(_SENTENCES, rng.randint(2, 4))
        paragraphs.append(" ".join(t.format(a=rng.choice(words), b=rng.choice(words)) for t in templates))
    return title + "\n\n" + "\n\n".join(paragraphs) + "\n"


def ensure_corpus(directory: Path, count: int, seed: int = 7) -> list[str]:
    """Write `count` documents into `directory` (if not there yet); return their ids in order."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    ids: list[str] = []
    for number in range(1, count + 1):
        text = _document(rng, number)  # always drawn, so document N is the same whatever `count` is
        doc_id = f"doc-{number:04d}"
        path = directory / f"{doc_id}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        ids.append(doc_id)
    return ids


def read_document(directory: Path, doc_id: str) -> str:
    return (directory / f"{doc_id}.txt").read_text(encoding="utf-8")
