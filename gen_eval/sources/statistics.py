"""Reference statistics files: a reference's feature mean and covariance, without its samples.

Formats read and written (``--format``):

- ``pytorch-fid`` (also clean-fid's): an ``.npz`` with ``mu`` (D,) and ``sigma`` (D, D) only;
- ``adm``: the guided-diffusion evaluator's reference batch, ``arr_0`` (its images, NHWC uint8:
  read past, written only when asked), ``mu``, ``sigma`` and the spatial features' ``mu_s``,
  ``sigma_s`` (what sFID reads; written from Inception's spatial features);
- ``edm2``: a ``.pkl`` of ``{"num_images": N, "fid": {"mu", "sigma"}, "fd_dinov2": {...}}``, read
  through the allow-list unpickler (:mod:`gen_eval.sources.safe_pickle`), never ``pickle.load``;
- ``gen-eval``: the pytorch-fid keys plus ``count``, ``gen_eval`` (JSON provenance: extractor,
  weights hash, the set it came from) and, from Inception with spatial features, ADM's ``mu_s`` and
  ``sigma_s``. pytorch-fid's and clean-fid's loaders read only ``mu`` and
  ``sigma``, so they read it too.

Every ``.npz`` is opened with ``allow_pickle=False``. Which extractor made the statistics is part
of the file in the gen-eval and edm2 formats; for the others the user states it
(``--reference-features``), and the manifest says so (:mod:`gen_eval.sources.statistics_source`).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen_eval.errors import GenEvalError

__all__ = [
    "FORMATS",
    "ReferenceStatistics",
    "check_format",
    "looks_like_statistics",
    "read_statistics",
    "write_statistics",
]

FORMATS = ("gen-eval", "pytorch-fid", "adm", "edm2")
# EDM2 files key each detector's statistics by the metric that reads them.
_EDM2_KEYS = {"inception": "fid", "dinov2-vit-l14": "fd_dinov2"}


@dataclass
class ReferenceStatistics:
    """The mean and covariance of a reference's features, and what is known of where they came from.

    Attributes
    ----------
    mu, sigma : numpy.ndarray
        Mean (D,) and covariance (D, D), float64.
    count : int or None
        Samples they were computed from (None when the format does not record it).
    extractor : str or None
        Extractor name (``gen-eval features``); None when the file does not say.
    weights_sha256 : str or None
        Hash of the extractor's weights, when recorded.
    format : str
        One of :data:`FORMATS`.
    extra : dict
        Other arrays of the format (ADM's ``mu_s``, ``sigma_s``).
    provenance : dict
        What the gen-eval format recorded (source spec, data kind, sample shape, preprocessing).
    """

    mu: np.ndarray
    sigma: np.ndarray
    count: int | None = None
    extractor: str | None = None
    weights_sha256: str | None = None
    format: str = "gen-eval"
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


def looks_like_statistics(path: Path) -> bool:
    """Whether ``path`` is a statistics file: a ``.pkl``, or an ``.npz`` holding ``mu`` or ``sigma``."""
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        return path.is_file()
    if suffix != ".npz" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False  # the array reader says what is wrong with it
    # Either key makes it a statistics file, so a file missing the other gets the reader's own error.
    return bool({"mu.npy", "sigma.npy"} & names)


def read_statistics(path: str | Path) -> ReferenceStatistics:
    """Read a statistics file in any of :data:`FORMATS` (told apart by suffix and keys).

    Parameters
    ----------
    path : str or Path
        An ``.npz`` (pytorch-fid, clean-fid, ADM, gen-eval) or an EDM2 ``.pkl``.

    Returns
    -------
    ReferenceStatistics

    Raises
    ------
    GenEvalError
        One line naming the file: unreadable, a pickle asking for code, missing or malformed arrays.
    """
    path = Path(path)
    if path.suffix.lower() == ".pkl":
        return _read_edm2(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = {name: arrays[name] for name in arrays.files if name != "arr_0"}  # arr_0: ADM's images
            has_images = "arr_0" in arrays.files
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise GenEvalError(f"{path}: not a readable .npz of statistics ({exc})") from None
    mu, sigma = _checked(path, found.get("mu"), found.get("sigma"))
    extra = {}
    if "mu_s" in found or "sigma_s" in found:
        extra = dict(
            zip(
                ("mu_s", "sigma_s"),
                _checked(path, found.get("mu_s"), found.get("sigma_s"), "_s"),
                strict=True,
            )
        )
    if "gen_eval" in found:
        meta = _meta(path, found["gen_eval"])
        return ReferenceStatistics(
            mu,
            sigma,
            int(found["count"]) if "count" in found else meta.get("count"),
            meta.get("extractor"),
            meta.get("weights_sha256"),
            "gen-eval",
            extra,
            provenance=meta,
        )
    if extra or has_images:
        return ReferenceStatistics(mu, sigma, None, None, None, "adm", extra)
    return ReferenceStatistics(mu, sigma, None, None, None, "pytorch-fid")


def _checked(path: Path, mu: Any, sigma: Any, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``mu`` and ``sigma`` (or ``mu_s``, ``sigma_s``) as float64, or a one-line error saying what is wrong."""
    names = f"'mu{suffix}' and 'sigma{suffix}'"
    if mu is None or sigma is None:
        raise GenEvalError(f"{path}: statistics need arrays {names} together; this file lacks one")
    mu, sigma = np.asarray(mu), np.asarray(sigma)
    if (
        mu.ndim != 1
        or sigma.shape != (len(mu), len(mu))
        or mu.dtype.kind not in "iuf"
        or sigma.dtype.kind not in "iuf"
    ):
        raise GenEvalError(
            f"{path}: 'mu{suffix}' must be a numeric (D,) vector and 'sigma{suffix}' (D, D); got {mu.shape} "
            f"{mu.dtype} and {sigma.shape} {sigma.dtype}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise GenEvalError(
            f"{path}: 'mu{suffix}' or 'sigma{suffix}' holds NaN or infinite values; recompute the statistics"
        )
    return mu.astype(np.float64), sigma.astype(np.float64)


def _meta(path: Path, value: np.ndarray) -> dict[str, Any]:
    try:
        meta = json.loads(str(value))
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise GenEvalError(
            f"{path}: its 'gen_eval' entry is not the JSON object gen-eval writes; rewrite the file"
        )
    return meta


def _read_edm2(path: Path) -> ReferenceStatistics:
    from gen_eval.sources.safe_pickle import load_plain_pickle

    loaded = load_plain_pickle(path)
    if not isinstance(loaded, dict):
        raise GenEvalError(
            f"{path}: an EDM2 statistics pickle is a dict; this one holds a {type(loaded).__name__}"
        )
    meta = loaded.get("gen_eval") if isinstance(loaded.get("gen_eval"), dict) else {}
    if "mu" in loaded:  # a flat {"mu", "sigma"} dict
        entry, extractor = loaded, meta.get("extractor")
    else:
        by_key = {key: name for name, key in _EDM2_KEYS.items()}
        wanted = meta.get("key") or next((key for key in loaded if isinstance(loaded[key], dict)), None)
        entry = loaded.get(wanted) if wanted else None
        if not isinstance(entry, dict):
            raise GenEvalError(
                f"{path}: no statistics in it (expected a dict such as {{'fid': {{'mu', 'sigma'}}}})"
            )
        extractor = meta.get("extractor") or by_key.get(str(wanted))
    mu, sigma = _checked(path, entry.get("mu"), entry.get("sigma"))
    count = meta.get("count", entry.get("num_images", loaded.get("num_images")))
    return ReferenceStatistics(
        mu,
        sigma,
        int(count) if count is not None else None,
        extractor,
        meta.get("weights_sha256"),
        "edm2",
        provenance=dict(meta),
    )


def write_statistics(
    stats: ReferenceStatistics, path: str | Path, format: str, images: np.ndarray | None = None
) -> Path:
    """Write ``stats`` to ``path`` in ``format``, atomically (a crash leaves no partial file).

    Parameters
    ----------
    stats : ReferenceStatistics
        What to write.
    path : str or Path
        The file (``.npz`` for pytorch-fid and gen-eval, ``.pkl`` for edm2).
    format : str
        One of :data:`FORMATS`; ``adm`` needs the spatial statistics (``stats.extra``'s ``mu_s``
        and ``sigma_s``), which Inception gives with its spatial features.
    images : numpy.ndarray, optional
        ADM's ``arr_0``: the reference images, uint8 (N, H, W, 3); only with ``adm``.

    Returns
    -------
    Path
    """
    path = check_format(format, path)
    spatial = {
        name: np.asarray(stats.extra[name], np.float64) for name in ("mu_s", "sigma_s") if name in stats.extra
    }
    if format == "adm" and len(spatial) < 2:
        raise GenEvalError(
            f"{path}: --format adm holds Inception's spatial statistics (mu_s, sigma_s for sFID), and these "
            "statistics have none; compute them with --features inception"
        )
    if images is not None and format != "adm":
        raise GenEvalError(f"{path}: only --format adm stores the images (arr_0); drop --adm-images")
    mu, sigma = np.asarray(stats.mu, np.float64), np.asarray(stats.sigma, np.float64)
    meta = {
        **stats.provenance,
        "extractor": stats.extractor,
        "weights_sha256": stats.weights_sha256,
        "count": stats.count,
    }

    def dump(stream: Any) -> None:
        if format == "edm2":
            import pickle

            key = _EDM2_KEYS.get(stats.extractor or "", stats.extractor or "fid")
            # Protocol 4 keeps the file readable by the Pythons EDM2 supports.
            document = {
                "num_images": stats.count,
                key: {"mu": mu, "sigma": sigma},
                "gen_eval": {**meta, "key": key},
            }
            pickle.dump(document, stream, protocol=4)
        elif format == "pytorch-fid":
            np.savez(stream, mu=mu, sigma=sigma)
        elif format == "adm":
            # The evaluator reads arr_0 only to compute statistics it finds missing; without it the
            # file holds just what FID and sFID read.
            np.savez(
                stream, **({"arr_0": images} if images is not None else {}), mu=mu, sigma=sigma, **spatial
            )
        else:
            np.savez(
                stream,
                mu=mu,
                sigma=sigma,
                count=np.int64(stats.count or 0),
                gen_eval=np.str_(json.dumps(meta)),
                **spatial,
            )

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            dump(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def check_format(format: str, path: str | Path) -> Path:
    """Refuse a format or file name that cannot be written, before any sample is read.

    Parameters
    ----------
    format : str
        One of :data:`FORMATS`.
    path : str or Path
        The file to write (``.npz``; ``.pkl`` for edm2) in an existing folder.

    Returns
    -------
    Path
    """
    path = Path(path)
    if format not in FORMATS:
        raise GenEvalError(f"--format {format!r}: choose from {', '.join(FORMATS)}")
    expected = ".pkl" if format == "edm2" else ".npz"
    if path.suffix.lower() != expected:
        raise GenEvalError(
            f"{path}: --format {format} writes a {expected} file; name it {path.with_suffix(expected).name}"
        )
    if not path.parent.is_dir():
        raise GenEvalError(f"{path}: folder {path.parent} does not exist; create it first")
    return path
