"""``gen-eval score``: grade a folder of students' submissions against one reference.

Each submission (layout and safety rules: :mod:`gen_eval.grading.submissions`) is evaluated into
its own run, the reference's features coming from the cache after the first. One bad submission
never stops the batch: its error is recorded and the next one starts. Output folder::

    OUT/
      leaderboard.csv / .html / .json   rank, submission, student, family, every metric with its
                                        95% interval, the collapse verdict, claims checked, errors
      runs/<submission>/                one run directory each (gen_eval.runs.run)
      reports/<submission>.html         one report each (an error page for failed submissions),
      reports/plotly-<version>.min.js   sharing one copy of plotly.js (they still open offline)
      state/<submission>.json           what a finished run was computed from, for resuming

Rerunning resumes: a submission is skipped when its run loads with verified checksums, its
manifest is the one recorded when it finished, and the fingerprint of its samples and of the
options (reference content, extractor, sample count, resamples, seed, resize) is unchanged.
Everything else, failed submissions included, is evaluated again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError, StorageError
from gen_eval.grading import submissions as sub
from gen_eval.grading.claims import check_claims
from gen_eval.grading.contents import check_count, time_limit
from gen_eval.grading.pages import error_page, leaderboard_csv, leaderboard_html
from gen_eval.grading.results import ScoreResult, SubmissionRow
from gen_eval.grading.submissions import Entry, Limits
from gen_eval.schemas import to_json
from gen_eval.sources.folder import FIRST_FRAME

STATE_FORMAT = "gen-eval-score-state-v1"


def score(
    submissions_dir: str | Path,
    reference: str | Path,
    *,
    features: str = "auto",
    out: str | Path | None = None,
    num_samples: int | None = None,
    num_resamples: int = 100,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    resize: int | None = None,
    resize_method: str = "bicubic",
    resize_mode: str | None = None,
    rank_by: str = "fid",
    min_samples: int = 10,
    device: str = "auto",
    limits: Limits | None = None,
    show_progress: bool = False,
) -> ScoreResult:
    """Evaluate every submission in ``submissions_dir`` and write the leaderboard.

    Parameters
    ----------
    submissions_dir : str or Path
        One entry per submission (see :mod:`gen_eval.grading.submissions`).
    reference : str or Path
        The reference set (a dataset such as ``digits:test``, a folder, an array).
    features : str
        Extractor name or ``"auto"`` (chosen once from the reference, so every row uses the same one).
    out : str or Path, optional
        Output folder (default ``score-<name of submissions_dir>``).
    num_samples : int, optional
        Score the first N samples of each submission; one with fewer fails.
    num_resamples : int
        Bootstrap resamples for the 95% intervals.
    seed : int
        Seed of every random choice.
    cache_dir : str or Path, optional
        Feature cache (default: ``$GEN_EVAL_CACHE`` or ``~/.cache/gen-eval``).
    resize : int, optional
        Resize images of folder submissions to ``resize`` x ``resize`` with ``resize_method``.
    resize_method : str
        How images of another size than the extractor reads (else than the reference) are
        resized, or ``"refuse"``; as in :func:`gen_eval.evaluation.evaluate`, and stated in each
        row's warnings and run manifest.
    resize_mode : str, optional
        The extractor's resize convention (``--resize-mode``; None: its default), as in
        :func:`gen_eval.evaluation.evaluate`.
    rank_by : str
        Metric the rank follows, in its own direction.
    min_samples : int
        Fewer samples than this fail the submission.
    device : {"auto", "cpu", "cuda"}
        Where the features are computed.
    limits : Limits, optional
        What one submission may make the grader read, unpack or spend: sizes, at most
        ``max_samples`` samples (50,000) and ``time_limit`` seconds (3,600) each.
    show_progress : bool
        One progress bar for the batch.

    Returns
    -------
    ScoreResult
    """
    from gen_eval.features import (
        check_resize_mode_name,
        choose_extractor,
        extractor_class,
        resize_mode_options,
    )
    from gen_eval.progress import progress_task
    from gen_eval.sources import open_source

    started = time.perf_counter()
    check_resize_mode_name(resize_mode)
    limits = limits or Limits()
    _check_limits(limits, num_samples)
    root = Path(submissions_dir)
    out_dir = Path(out) if out is not None else Path(f"score-{root.resolve().name}")
    if out_dir.resolve() == root.resolve():
        raise GenEvalError(f"--out {out_dir}: is the submissions folder itself; choose another folder")
    entries, ignored = sub.discover(root, exclude=(out_dir,))
    if not entries:
        raise GenEvalError(
            f"{root}: no submissions found (sub-folders, .zip, .tar, .tar.gz, .tgz, .npz or .npy); "
            "see gen-eval score --help for the layout"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenEvalError(
            f"--out {out_dir}: cannot create it ({exc.strerror}); choose another folder"
        ) from exc
    ref = open_source(reference, seed=seed, resize=resize, resize_method=resize_method)  # hashed once
    name = choose_extractor(ref, ref) if features == "auto" else features
    resize_mode_options(name, resize_mode)  # a wrong --resize-mode fails once, not per submission
    available, detail = extractor_class(name).availability()
    if not available:  # say so once rather than once per submission
        raise GenEvalError(f"--features {name}: {detail}")
    options = {"reference": ref.spec, "reference_fingerprint": ref.fingerprint, "features": name}
    options |= {"num_samples": num_samples, "num_resamples": num_resamples, "seed": seed, "resize": resize}
    options |= {"resize_method": resize_method}
    if resize_mode is not None:  # only when given, so earlier score folders keep their resume keys
        options["resize_mode"] = resize_mode
    job = _Job(out_dir, ref, options, min_samples, device, limits, cache_dir or True)
    rows: list[SubmissionRow] = []
    with progress_task(f"scoring {len(entries)} submissions", len(entries), show_progress) as bar:
        for entry in entries:
            try:
                rows.append(_score_one(entry, job))
            except StorageError as exc:  # the next submission would hit the same full or read-only disk
                raise StorageError(
                    f"{exc}; scoring stopped after {len(rows)} of {len(entries)} submissions: rerun once "
                    "the disk is fixed, finished submissions are kept"
                ) from exc
            bar.advance(1)
    result = ScoreResult(
        str(root), ref.spec, name, out_dir, rank_by, _ranked(rows, rank_by), ignored, options
    )
    result.seconds = round(time.perf_counter() - started, 3)
    result.warnings += _cache_warning(cache_dir)
    write_leaderboard(result)
    return result


@dataclass
class _Job:
    out: Path
    reference: Any  # the Source, opened once for the batch
    options: dict[str, Any]  # everything a run depends on besides the samples
    min_samples: int
    device: str
    limits: Limits
    cache_dir: str | Path | bool


def _check_limits(limits: Limits, num_samples: int | None) -> None:
    if limits.max_samples < 1:
        raise GenEvalError(f"--max-samples must be at least 1, got {limits.max_samples}")
    if limits.time_limit is not None and limits.time_limit < 0:
        raise GenEvalError(f"--time-limit must be >= 0 seconds (0: no limit), got {limits.time_limit:g}")
    if num_samples is not None and num_samples > limits.max_samples:
        raise GenEvalError(
            f"--num-samples {num_samples:,} is over --max-samples {limits.max_samples:,}; raise --max-samples"
        )


def _cache_warning(cache_dir: str | Path | None) -> list[str]:
    """One line for the whole batch when the feature cache cannot be written (each run still completes)."""
    from gen_eval.features.cache import default_cache_dir

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=root, prefix=".write-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return [
            f"feature cache {root}: not writable ({exc.strerror or exc}); every feature was computed afresh "
            "(pass --cache-dir with a writable folder to reuse the reference's)"
        ]
    return []


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place (old or new, never half)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"{path}: cannot be written ({exc.strerror or exc}); nothing was changed") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _finished(run_dir: Path, state_path: Path, key: str) -> Any:
    """The run of an earlier score when it is complete and was computed from exactly these inputs."""
    from gen_eval.runs.run import load_run

    try:
        state = json.loads(state_path.read_text())
        if state.get("format") != STATE_FORMAT or state.get("fingerprint") != key:
            return None
        run = load_run(run_dir)  # every file's checksum verified
        return run if state.get("manifest_sha256") == _sha256(run_dir / "manifest.json") else None
    except (OSError, ValueError, GenEvalError, KeyError, TypeError, AttributeError):
        return None


def _evaluate(submission: Any, job: _Job, run_dir: Path, state_path: Path, key: str) -> Any:
    """Evaluate one prepared submission into ``run_dir`` and record what it was computed from."""
    from gen_eval.evaluation import evaluate
    from gen_eval.runs.run import load_run

    wanted = job.options["num_samples"]
    resize, method = job.options["resize"], job.options["resize_method"]
    source = sub.open_samples(submission, num_samples=wanted, resize=resize, method=method, limits=job.limits)
    sub.check_samples(source, job.reference, num_samples=wanted, min_samples=job.min_samples)
    sub.check_size(source, job.reference, job.options["features"], method)
    evaluate(
        source,
        job.reference,
        features=job.options["features"],
        num_samples=wanted,  # recorded in the manifest; the source holds that many already
        num_resamples=job.options["num_resamples"],
        seed=job.options["seed"],
        resize=resize,
        resize_method=method,
        resize_mode=job.options.get("resize_mode"),
        batch_size=sub.batch_size_for(source),
        device=job.device,
        out=run_dir,
        overwrite=True,
        cache_dir=job.cache_dir,
        show_progress=False,  # the batch has its own bar
    )
    from gen_eval import distributed

    distributed.barrier()  # under torchrun rank 0 wrote the run; the others read it (shared folder)
    run = load_run(run_dir)
    state = {
        "format": STATE_FORMAT,
        "fingerprint": key,
        "manifest_sha256": _sha256(run_dir / "manifest.json"),
    }
    _write_atomic(state_path, to_json(state) + "\n")
    return run


def _score_one(entry: Entry, job: _Job) -> SubmissionRow:
    started = time.perf_counter()
    row = SubmissionRow(entry.name, entry.key, entry.kind)
    run_dir, state_path = job.out / "runs" / entry.key, job.out / "state" / f"{entry.key}.json"
    row.report = f"reports/{entry.key}.html"
    report = job.out / row.report
    claimed: dict[str, float] = {}
    try:
        with time_limit(job.limits.time_limit, entry.path.name), sub.prepare(entry, job.limits) as submission:
            meta = submission.metadata
            row.student, row.family, claimed = meta.student, meta.family, meta.claimed
            row.warnings += meta.warnings + submission.warnings
            # Counted from headers and names before a byte of the samples is hashed or decoded.
            count = sub.count_samples(submission)
            check_count(
                count,
                submission.label,
                max_samples=job.limits.max_samples,
                num_samples=job.options["num_samples"],
            )
            options = json.dumps(job.options, sort_keys=True)
            key = hashlib.sha256(f"{options}\0{sub.fingerprint(submission)}".encode()).hexdigest()
            run = _finished(run_dir, state_path, key)
            row.status = "scored" if run is None else "resumed"
            if run is None:
                report.unlink(missing_ok=True)  # never leave the page of older content behind
                run = _evaluate(submission, job, run_dir, state_path, key)
    except StorageError:
        raise  # the grader's disk, not the submission: score stops the batch
    except Exception as exc:  # one bad submission never stops the batch (KeyboardInterrupt does)
        row.status, row.error = "error", " ".join(str(exc).split()) or type(exc).__name__
        shutil.rmtree(run_dir, ignore_errors=True)  # a run of older content must not stand for this one
        try:
            state_path.unlink(missing_ok=True)
        except OSError as unlink_error:
            raise StorageError(f"{state_path}: cannot be removed ({unlink_error.strerror})") from unlink_error
        _write_atomic(report, error_page(row))
        row.seconds = round(time.perf_counter() - started, 3)
        return row
    row.run_dir = f"runs/{entry.key}"
    row.metrics = {name: result.to_dict() for name, result in run.metrics.items()}
    row.num_samples = run.manifest["generated"]["count"]
    row.warnings += run.manifest.get("warnings", [])  # resized images, fewer samples than asked
    conversions = run.manifest["generated"].get("conversions", [])
    row.warnings += [note for note in conversions if FIRST_FRAME in note]  # animated WebP/PNG
    if run.collapse:
        row.collapse = {"status": run.collapse["status"], "verdict": run.collapse["verdict"]}
    row.claims = check_claims(claimed, row.metrics)
    if not report.is_file():
        try:
            from gen_eval.report.html import write_plotly_js
            from gen_eval.report.run_report import write_report

            # One copy of plotly.js beside the reports rather than 4.6 MB inlined in each.
            write_report(run_dir, report, plotly_src=write_plotly_js(report.parent))
        except Exception as exc:  # the scores stand without their page
            row.warnings.append(f"report not written ({type(exc).__name__}: {sub.clean_text(exc, 200)})")
            row.report = None
    row.seconds = round(time.perf_counter() - started, 3)
    return row


def _ranked(rows: list[SubmissionRow], rank_by: str) -> list[SubmissionRow]:
    """Rows with ``rank_by`` measured first, best first (ties by name); then the rest, failures last."""
    measured = [row for row in rows if row.value(rank_by) is not None]
    sign = 1 if all(row.metrics[rank_by]["direction"] == "lower" for row in measured) else -1
    measured.sort(key=lambda row: (sign * (row.value(rank_by) or 0.0), row.name))
    for rank, row in enumerate(measured, start=1):
        row.rank = rank
    rest = [row for row in rows if row.value(rank_by) is None]
    return measured + sorted(rest, key=lambda row: (row.status == "error", row.name))


def write_leaderboard(result: ScoreResult) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``leaderboard.json`` and ``leaderboard.html`` into ``result.out_dir``.

    Parameters
    ----------
    result : ScoreResult
        What :func:`score` found.

    Returns
    -------
    dict
        ``{"csv": path, "json": path, "html": path}``.
    """
    paths = {kind: result.out_dir / f"leaderboard.{kind}" for kind in ("csv", "json", "html")}
    _write_atomic(paths["csv"], leaderboard_csv(result))
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = {"format": "gen-eval-score-v1", "created": created, **result.to_dict()}
    _write_atomic(paths["json"], to_json(document) + "\n")
    _write_atomic(paths["html"], leaderboard_html(result))
    return paths
