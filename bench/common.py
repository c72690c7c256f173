"""Shared by the bench scripts: the database, the results file."""

import json
import platform
import time
from pathlib import Path

import psycopg

from gridwatch.db import database_url

RESULTS = Path(__file__).parent / "results"


def connect() -> psycopg.Connection:
    return psycopg.connect(database_url())


def record(name: str, **figures) -> None:
    """Append one JSON line to bench/results/NAME.jsonl."""
    RESULTS.mkdir(exist_ok=True)
    line = {"bench": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
            "cpus": __import__("os").cpu_count(), **figures}
    with open(RESULTS / f"{name}.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\n")
