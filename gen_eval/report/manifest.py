"""The report's manifest section and the command that reproduces a run."""

from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING, Any

from gen_eval.report.html import Page, escape
from gen_eval.runs.run import Run

if TYPE_CHECKING:
    pass


def _default_resize_mode(name: str) -> str | None:
    """The resize convention extractor ``name`` uses unless told otherwise (None: it has none)."""
    from gen_eval.features import extractor_class

    try:
        return (getattr(extractor_class(name), "resize_modes", ()) or (None,))[0]
    except Exception:  # an extractor this installation no longer has: state the recorded mode
        return None


def _value_html(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32,}", value):
        return f"<code>{escape(value)}</code>"
    if isinstance(value, dict):
        return "; ".join(f"{escape(k)} = {_value_html(v)}" for k, v in value.items()) or "–"
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, int | float) for v in value):
            return escape(" x ".join(str(v) for v in value))  # a shape
        if all(isinstance(v, str) and len(v) < 40 for v in value):
            return escape(", ".join(value)) or "–"  # names (metrics, features)
        return "<br>".join(_value_html(v) for v in value) or "–"  # sentences (conversions)
    if isinstance(value, float):
        return escape(f"{value:g}")
    return escape(value)


def _kv_table(items: dict[str, Any], heading: str = "") -> str:
    head = f"<thead><tr><th class='l' colspan='2'>{escape(heading)}</th></tr></thead>" if heading else ""
    rows = "".join(
        f"<tr><td>{escape(key)}</td><td>{_value_html(value)}</td></tr>" for key, value in items.items()
    )
    return f"<div class='kv wrap'><table>{head}<tbody>{rows}</tbody></table></div>"


def reproduce_command(manifest: dict[str, Any], collapse: bool = True, multiline: bool = False) -> str:
    """The ``gen-eval evaluate`` command line that recomputes a run from its manifest.

    Parameters
    ----------
    manifest : dict
        A run's ``manifest.json``.
    collapse : bool
        Whether the run holds a collapse verdict (else ``--no-collapse`` is added).
    multiline : bool
        One option per line, joined by backslash continuations (for reading; still pastes).

    Returns
    -------
    str
        A shell-quoted command. Paths are as they were given (run it from the same folder);
        Inception weights appear as a placeholder path naming the start of their SHA-256.
    """
    generated, reference = manifest.get("generated", {}), manifest.get("reference", {})
    options = manifest.get("options", {})
    extractor = manifest.get("extractor", {})
    parts = [["gen-eval", "evaluate", str(generated.get("spec", "?")), "-r", str(reference.get("spec", "?"))]]
    parts.append(["--features", str(extractor.get("name", "auto"))])
    if options.get("metrics"):
        parts.append(["--metrics", ",".join(options["metrics"])])
    for flag, key in (
        ("--num-samples", "num_samples"),
        ("--num-reference", "num_reference"),
        ("--seed", "seed"),
        ("--num-resamples", "num_resamples"),
        ("--batch-size", "batch_size"),
        ("--device", "device"),
        ("--resize", "resize"),
        ("--key", "key"),
    ):
        if options.get(key) is not None:
            parts.append([flag, str(options[key])])
    if options.get("value_range") not in (None, "auto"):
        parts.append(["--value-range", str(options["value_range"])])
    for key, value in (options.get("metric_options") or {}).items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        parts.append(["-o", f"{key}={value}"])
    if generated.get("kind") == "python":
        parts.append(["--trust-code"])
    if extractor.get("name") == "inception":
        digest = str(extractor.get("weights_sha256", ""))[:12]
        parts.append(["--inception-weights", f"/path/to/inception-{digest}.pth"])
        if options.get("channels_last") is False:
            parts.append(["--no-channels-last"])
    if options.get("resize_mode") not in (None, _default_resize_mode(str(extractor.get("name")))):
        parts.append(["--resize-mode", str(options["resize_mode"])])
    stated = manifest.get("reference_statistics") or {}
    if stated.get("provenance") == "stated by the user":
        weights = f"@{stated['weights_sha256']}" if stated.get("weights_sha256") else ""
        parts.append(["--reference-features", f"{stated.get('extractor')}{weights}"])
    if not collapse:
        parts.append(["--no-collapse"])
    elif (manifest.get("training_set") or {}).get("spec"):
        parts.append(["--train", str(manifest["training_set"]["spec"])])
    lines = [" ".join(shlex.quote(a) for a in part) for part in parts]
    return " \\\n  ".join(lines) if multiline else " ".join(lines)


def reference_statistics_note(manifest: dict[str, Any]) -> str | None:
    """One sentence saying the run's reference was a statistics file, or None when it held samples.

    The run report and the dashboard's run page show it above the metrics: against a mean and
    covariance only the Fréchet distances (and IS, which reads no reference) can be computed.
    """
    reference = manifest.get("reference") or {}
    if reference.get("kind") != "statistics":
        return None
    stated = manifest.get("reference_statistics") or {}
    count = reference.get("count") or 0
    of = f" of {count:,} samples" if count else " (sample count not recorded)"
    weights = f", weights {str(stated['weights_sha256'])[:12]}" if stated.get("weights_sha256") else ""
    return (
        f"Reference: statistics, not samples: {reference.get('spec', '?')} ({reference.get('format', '?')} "
        f"format), the mean and covariance{of} of {stated.get('extractor', '?')} features{weights} "
        f"({stated.get('provenance', 'provenance unknown')}). Only FID, FD∞ and sFID (with spatial statistics) "
        "can be computed against it, and IS, which reads no reference; KID, precision/recall, "
        "density/coverage and the collapse check need reference samples and were left out."
    )


def manifest_section(page: Page, run: Run) -> None:
    manifest = run.manifest
    page.add("<h2 id='manifest'>Manifest: how to reproduce these numbers</h2>")
    page.add("<h3>Command</h3>")
    command = reproduce_command(manifest, collapse=run.collapse is not None, multiline=True)
    page.add(f"<pre class='command'>{escape(command)}</pre>")
    page.paragraph(
        "Run it from the folder the original ran in (relative paths are as given). The same versions, "
        "source fingerprints, extractor weights and seed give the same numbers; on another device "
        "they agree to rounding.",
        "muted",
    )
    page.add("<h3>Sources</h3><div class='row'>")
    for role in ("generated", "reference", "training_set"):
        source = manifest.get(role)
        if not source:
            continue
        source = dict(source)
        fingerprint = source.pop("fingerprint", None)
        # Show the content hash right after the spec: it is what the cache and comparisons key on.
        ordered = {"spec": source.pop("spec", None), "content SHA-256": fingerprint, **source}
        page.add(f"<div>{_kv_table(ordered, role.replace('_', ' '))}</div>")
    page.add("</div>")
    extractor = manifest.get("extractor")
    if extractor:
        page.add("<h3>Feature extractor</h3>")
        page.add(_kv_table(extractor))
    page.add("<div class='row'>")
    if manifest.get("options"):
        page.add(f"<div><h3>Options</h3>{_kv_table(manifest['options'])}</div>")
    if manifest.get("versions"):
        page.add(f"<div><h3>Versions</h3>{_kv_table(manifest['versions'])}</div>")
    if manifest.get("timings_s"):
        timings = {
            key: f"{value:.3f} s" if value is not None else None
            for key, value in manifest["timings_s"].items()
        }
        page.add(f"<div><h3>Timings</h3>{_kv_table(timings)}</div>")
    page.add("</div>")
    if manifest.get("files"):
        page.add("<h3>Files (SHA-256, verified when the run is loaded)</h3>")
        page.add(_kv_table(manifest["files"]))
    page.add(
        "<details><summary>manifest.json (raw)</summary><pre>"
        + escape(json.dumps(manifest, indent=2))
        + "</pre></details>"
    )
