"""JSON Schemas (draft 2020-12) of every JSON output: ``--json`` of each command and the files of a run.

One schema per output, shipped as package data; ``docs/json.md`` describes the conventions they
encode (numbers are JSON numbers, a qualified number is a ``{"value", "kind"}`` object).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

# Schema name -> what it describes (docs/json.md lists the same).
SCHEMAS: dict[str, str] = {
    "models": "gen-eval models --json",
    "datasets": "gen-eval datasets --json",
    "features": "gen-eval features --json",
    "metrics": "gen-eval metrics --json",
    "evaluation": "gen-eval evaluate --json",
    "run-metrics": "metrics.json in a run directory",
    "run-manifest": "manifest.json in a run directory",
    "collapse": "gen-eval collapse --json",
    "latent": "gen-eval latent --json, and latent.json in a run directory",
    "likelihood": "gen-eval likelihood --json",
    "stats": "gen-eval stats --json",
    "compare": "gen-eval compare --json FILE (or -)",
    "human": "gen-eval human --json (a study's results per run)",
    "human-create": "gen-eval human create --json",
    "score-leaderboard": "leaderboard.json of gen-eval score",
    "score-state": "state/NAME.json of gen-eval score (what a resumed run may reuse)",
    "models-leaderboard": "leaderboard.json of gen-eval demo",
    "demo-files": ".gen-eval-demo.json of gen-eval demo (the files it wrote, so a rerun keeps yours)",
    "figure": "collapse/*.json and latent/*.json in a run directory: plotly figures",
}


COMMON = "common"  # shared definitions the others refer to ("common.schema.json#/$defs/...")


def finite(document: Any) -> Any:
    """``document`` with every NaN or infinite float replaced by None (JSON's null).

    Python's json writes NaN and Infinity, which are not JSON: a strict reader (JavaScript,
    jq, most other languages) refuses the whole file. A number that could not be computed is
    null, as a metric that was not measured is.
    """
    if isinstance(document, float):
        return document if math.isfinite(document) else None
    if isinstance(document, dict):
        return {key: finite(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [finite(value) for value in document]
    return document


def to_json(document: Any, *, indent: int | None = 2, **options: Any) -> str:
    """Standard JSON text of ``document`` (NaN and infinities as null): what every output uses.

    Parameters
    ----------
    document : JSON-like
        Dicts, lists, strings, numbers, booleans, None.
    indent : int, optional
        As for :func:`json.dumps`.
    **options
        Passed to :func:`json.dumps` (``sort_keys``, ``default``).

    Returns
    -------
    str
    """
    return json.dumps(finite(document), indent=indent, allow_nan=False, **options)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (a key of :data:`SCHEMAS`, or ``"common"``) as a dict."""
    if name not in SCHEMAS and name != COMMON:
        raise KeyError(f"no schema {name!r}; known: {', '.join(SCHEMAS)}")
    return json.loads((HERE / f"{name}.schema.json").read_text(encoding="utf-8"))


def validator(name: str) -> Any:
    """A ``jsonschema`` validator for the schema ``name``, its references to the others resolved.

    Needs the ``jsonschema`` package (the ``test`` extra); the schemas themselves are plain files
    any draft 2020-12 validator can load together.
    """
    import jsonschema
    from referencing import Registry, Resource

    resources = [
        (schema["$id"], Resource.from_contents(schema)) for schema in map(load_schema, [COMMON, *SCHEMAS])
    ]
    registry: Registry = Registry().with_resources(resources)
    return jsonschema.Draft202012Validator(load_schema(name), registry=registry)


def schema_for_file(path: str | Path) -> str | None:
    """The schema of a JSON file gen-eval wrote, from its name and place (None if not ours).

    ``leaderboard.json`` is told apart by its content: score writes an object, demo a list.
    """
    path = Path(path)
    if path.parent.name in ("collapse", "latent"):
        return "figure"
    if path.parent.name == "state":
        return "score-state"
    if path.name == ".gen-eval-demo.json":
        return "demo-files"
    if path.name == "leaderboard.json":
        document = json.loads(path.read_text(encoding="utf-8"))
        return "models-leaderboard" if isinstance(document, list) else "score-leaderboard"
    return {"metrics.json": "run-metrics", "manifest.json": "run-manifest", "latent.json": "latent"}.get(
        path.name
    )
