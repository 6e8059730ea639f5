"""The samples a study shows, copied once when it is created, and the pictures made from them.

Each run's generated set and its reference are opened again from the specs its manifest records
(``gen_eval.sources.open_source``, with the run's seed, count and value rule), and
``samples_per_run`` of each are copied into ``RUNS_DIR/human/STUDY/samples.npz`` (uint8 NCHW,
read back with ``allow_pickle=False``). The study then never depends on the sources staying where
they were, and every participant sees exactly the same pixels. Attention checks are made here
too, deterministically: pure noise and a flat grey, obviously not samples of anything.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gen_eval.errors import GenEvalError

if TYPE_CHECKING:
    import numpy as np

    from gen_eval.human.model import Study, StudySettings
    from gen_eval.sources import Source

SAMPLES = "samples.npz"
SNAPSHOT = "snapshot.json"  # not manifest.json: the dashboard takes folders holding one for runs
SHOWN_KINDS = ("image", "text")  # what a person can judge on a page: pictures and strings
VIEW_SIZE = 256  # pictures are enlarged (nearest neighbour, whole factors) to at least this many pixels


def _reopen(runs_dir: Path, name: str, role: str, trust_code: bool) -> Source:
    """The run's generated set (``role="generated"``) or reference, opened as the run opened it."""
    from gen_eval.runs.run import load_run
    from gen_eval.sources import open_source

    path = runs_dir / name
    run = load_run(path)
    info, options = run.manifest.get(role) or {}, run.manifest.get("options", {})
    spec = info.get("spec")
    what = "generated samples" if role == "generated" else "reference"
    if not spec:
        raise GenEvalError(f"{path}: its manifest names no {what}; re-run evaluate to make a study of it")
    if info.get("kind") == "statistics":
        raise GenEvalError(
            f"{path}: its reference {spec} is statistics without samples; a study needs real images "
            "(evaluate the run against a dataset, folder or array)"
        )
    code = spec.startswith("ref:") or spec.endswith(".py") or ".py:" in spec
    count_key = "num_samples" if role == "generated" else "num_reference"
    try:
        source = open_source(
            spec,
            num_samples=options.get(count_key) or (info.get("count") if code else None),
            seed=options.get("seed", 0),
            trust_code=trust_code,
            value_range=options.get("value_range", "auto"),
        )
    except GenEvalError as exc:
        fix = " (or pass --trust-code to sample it again)" if "trust" in str(exc) else ""
        raise GenEvalError(f"{path}: its {what} {spec} cannot be opened again ({exc}){fix}") from exc
    if source.data_kind not in SHOWN_KINDS:
        raise GenEvalError(
            f"{path}: its {what} are {source.data_kind} samples; a human study shows images or text "
            "(pick runs of image or text data)"
        )
    return source


def _sample(source: Source, count: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """``count`` items of ``source`` at seeded distinct indices (all of them when it holds fewer)."""
    import numpy as np

    indices = sorted(rng.choice(len(source), size=min(count, len(source)), replace=False).tolist())
    # Code sources sample again in take(): 256 is evaluate's default batch, so seeded draws repeat.
    dtype = np.uint8 if source.data_kind == "image" else np.int32  # text: code points, 0-padded
    return np.ascontiguousarray(source.take(indices, batch_size=256), dtype=dtype), indices


def _alike(fake: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The generated images at the real ones' size and channels, so only their content differs;
    strings padded to one width (padding is not shown)."""
    import numpy as np

    from gen_eval.sources.resize import resize_images

    if fake.ndim == 2:  # text rows of code points
        width = max(fake.shape[1], real.shape[1])
        pad = [np.pad(rows, ((0, 0), (0, width - rows.shape[1]))) for rows in (fake, real)]
        return pad[0], pad[1], None
    note = None
    if fake.shape[1] != real.shape[1]:
        fake = np.repeat(fake, 3, axis=1) if fake.shape[1] == 1 else fake
    if fake.shape[2:] != real.shape[2:]:
        note = (
            f"generated {fake.shape[2]}x{fake.shape[3]} resized to {real.shape[2]}x{real.shape[3]} (bicubic)"
        )
        fake = resize_images(fake, tuple(real.shape[2:]), "bicubic")  # type: ignore[arg-type]
    return fake, real, note


def attention_images(count: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """``count`` obviously broken images of ``shape`` (C, H, W): uniform noise and flat grey in turn."""
    import numpy as np

    rng = np.random.default_rng([seed, 7])
    out = np.empty((count, *shape), dtype=np.uint8)
    for i in range(count):
        out[i] = rng.integers(0, 256, size=shape, dtype=np.uint8) if i % 2 == 0 else 128
    return out


def attention_strings(count: int, width: int, seed: int) -> np.ndarray:
    """``count`` obviously broken strings as code points: random symbols and one letter repeated, in turn."""
    import numpy as np

    from gen_eval.kinds.text import encode_strings

    rng = np.random.default_rng([seed, 7])
    length = max(8, min(width, 40))
    junk = "#%&*+=?@^~|<>{}[]"
    texts = [
        "".join(rng.choice(list(junk), size=length)) if i % 2 == 0 else "z" * length for i in range(count)
    ]
    return encode_strings(texts, length=max(width, length))


def write_snapshot(
    folder: Path,
    runs_dir: Path,
    runs: list[str],
    settings: StudySettings,
    trust_code: bool = False,
    show_progress: bool = True,
) -> tuple[int, ...]:
    """Copy each run's samples and its reference's into ``folder`` (written whole or not at all).

    Parameters
    ----------
    folder : Path
        The study's folder; must not exist yet.
    runs_dir : Path
        Where the runs live.
    runs : list of str
        Run names relative to ``runs_dir``.
    settings : StudySettings
        ``samples_per_run``, ``attention_checks`` and ``seed`` are read.
    trust_code : bool
        Allow sampling a run's generator file again.
    show_progress : bool
        A bar over the runs on stderr.

    Returns
    -------
    tuple of int
        Per run, how many generated (and as many real) samples were copied.
    """
    import numpy as np

    from gen_eval.progress import progress_task

    arrays: dict[str, np.ndarray] = {}
    record: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}  # the study's one kind, set by its first run
    rng = np.random.default_rng(settings.seed)
    with progress_task("study · copying samples (runs)", len(runs), show_progress) as bar:
        for k, name in enumerate(runs):
            generated, reference = (
                _reopen(runs_dir, name, role, trust_code) for role in ("generated", "reference")
            )
            count = min(settings.samples_per_run, len(generated), len(reference))
            if count == 0:
                raise GenEvalError(
                    f"{runs_dir / name}: its generated or reference set is empty; pick another run"
                )
            fake, fake_at = _sample(generated, count, rng)
            real, real_at = _sample(reference, count, rng)
            kinds.setdefault("study", generated.data_kind)
            if {generated.data_kind, reference.data_kind} != {kinds["study"]}:
                raise GenEvalError(
                    f"{runs_dir / name}: its samples are {generated.data_kind} and its reference "
                    f"{reference.data_kind}, in a study of {kinds['study']}; a study judges one kind"
                )
            fake, real, note = _alike(fake, real)
            arrays[f"r{k}_fake"], arrays[f"r{k}_real"] = fake, real
            record.append(
                {
                    "run": name,
                    "generated": generated.spec,
                    "reference": reference.spec,
                    "count": count,
                    "generated_indices": fake_at,
                    "reference_indices": real_at,
                    "note": note,
                }
            )
            bar.advance(1)
    shape = arrays["r0_real"].shape[1:]
    if kinds["study"] == "text":
        arrays["check"] = attention_strings(settings.attention_checks, shape[0], settings.seed)
    else:
        arrays["check"] = attention_images(settings.attention_checks, shape, settings.seed)
    staging = folder.with_name(f".staging-{folder.name}-{os.getpid()}")
    try:
        staging.mkdir(parents=True)
        with open(staging / SAMPLES, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        document = {"kind": kinds["study"], "runs": record}
        (staging / SNAPSHOT).write_text(json.dumps(document, indent=2), encoding="utf-8")
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tuple(entry["count"] for entry in record)


@lru_cache(maxsize=8)
def _arrays(path: str, mtime_ns: int) -> dict[str, np.ndarray]:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def sample_array(study: Study, sample_id: str) -> np.ndarray:
    """The uint8 (C, H, W) sample named ``sample_id`` (``r0-fake-3``, ``r1-real-0``, ``check-1``)."""
    path = study.folder / SAMPLES
    if not path.is_file():
        raise GenEvalError(f"{path}: the study's samples are missing; create the study again")
    arrays = _arrays(str(path), path.stat().st_mtime_ns)
    parts = sample_id.split("-")
    key = "check" if parts[0] == "check" and len(parts) == 2 else "_".join(parts[:2])
    try:
        return arrays[key][int(parts[-1])]
    except (KeyError, ValueError, IndexError):
        raise GenEvalError(f"{sample_id!r}: no such sample in study {study.study_id}") from None


def sample_picture(study: Study, sample_id: str) -> bytes:
    """The sample as PNG bytes, enlarged by a whole factor (nearest neighbour) to >= 256 pixels.

    Nearest neighbour shows the pixels as they are: a smoother enlargement would add detail (or
    blur) that neither the model nor the real data has.
    """
    from PIL import Image

    image = sample_array(study, sample_id)
    if image.ndim != 3:
        raise GenEvalError(f"study {study.code} shows text, not pictures: use sample_text for {sample_id!r}")
    factor = max(1, -(-VIEW_SIZE // max(image.shape[1:])))
    picture = Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def sample_text(study: Study, sample_id: str) -> str | None:
    """The sample as a string in a study of text runs; None in a study of images."""
    array = sample_array(study, sample_id)  # an unknown id is still an error
    if array.ndim != 1:
        return None
    from gen_eval.kinds.text import decode_rows

    return decode_rows(array[None])[0]
