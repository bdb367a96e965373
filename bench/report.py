"""A bench's results, written as JSON and as a Markdown table beside it in bench/results/ (not
committed), each headed by the command that produced them: the figures a note or the README
quotes, with what to run to get them again."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def command() -> str:
    """This run's command line, with the cache directory it used."""
    cache = os.environ.get("ETIQUETTE_CACHE_DIR")
    return " ".join([*([f"ETIQUETTE_CACHE_DIR={cache}"] if cache else []), sys.executable,
                     *sys.argv])


def _cell(value: object) -> str:
    if isinstance(value, float):
        value = round(value, 3)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    """One row per run, a column per figure (in the order the runs name them)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def figures(result: dict) -> str:
    """One run's figures, a row each."""
    return table([{"figure": key, "value": value} for key, value in result.items()])


def write(name: str, data: object, rows: list[dict] | None = None) -> Path:
    """`data` as JSON, and as Markdown: `rows` as one table, else a list of runs as one, else
    a dict's figures a row each. Returns the JSON's path (the .md beside it)."""
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"
    path = stem.with_suffix(".json")
    path.write_text(json.dumps(data, indent=2))
    if rows is not None:
        text = table(rows)
    elif isinstance(data, list):
        text = table(data)
    else:
        text = figures(data if isinstance(data, dict) else {"result": data})
    stem.with_suffix(".md").write_text(f"`{command()}`\n\n{text}\n")
    print(f"written to {path} (and .md)")
    return path
