"""Bad point-cloud submissions for the robustness corpus (issue 24): each must be one error line
naming the file, never a traceback or a half-scored row.

The corpus is scored against ``digits:test``; a point-cloud submission is read (and refused on its
own fault) before its kind is compared with the reference's, and a well-formed one is refused for
the kind mismatch, naming both kinds.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pathlib import Path


def _cloud(seed: int, points: int = 256) -> np.ndarray:
    """Points on a unit sphere (a plausible cloud)."""
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(points, 3))
    return (xyz / np.linalg.norm(xyz, axis=1, keepdims=True)).astype(np.float32)


def _ply_binary(cloud: np.ndarray, declared: int | None = None) -> bytes:
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(cloud) if declared is None else declared}\n"
        "property float x\nproperty float y\nproperty float z\nend_header\n"
    ).encode()
    return header + b"".join(struct.pack("<3f", *row) for row in cloud)


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)


def pointcloud_cases(root: Path) -> dict[str, str]:
    """Write the bad point-cloud submissions under ``root``: submission name -> expected error fragment."""
    good = [_ply_binary(_cloud(i)) for i in range(12)]
    nan_cloud = _cloud(99)
    nan_cloud[7, 1] = np.nan
    cases: dict[str, tuple[dict[str, bytes], str]] = {
        # The header promises 256 vertices; the body stops after 100.
        "pc_truncated_ply": (
            {f"{i:02d}.ply": data for i, data in enumerate(good[:11])}
            | {"11.ply": _ply_binary(_cloud(11))[: -156 * 12]},
            "11.ply: not a readable .ply file",
        ),
        "pc_ply_no_xyz": (
            {
                "00.ply": b"ply\nformat ascii 1.0\nelement face 1\nproperty list uchar int vertex_indices\n"
                b"end_header\n3 0 1 2\n"
            },
            "00.ply: a .ply point cloud needs a vertex element with x, y and z",
        ),
        "pc_ply_lies_about_count": (
            {"00.ply": _ply_binary(_cloud(0), declared=2**31 - 1)},
            "00.ply: not a readable .ply file",
        ),
        "pc_xyz_words": (
            {"00.xyz": b"0 0 0\n1 one 1\n"},
            "00.xyz: an .xyz cloud needs three numbers per line",
        ),
        "pc_nan_points": (
            {f"{i:02d}.ply": data for i, data in enumerate(good[:11])} | {"11.ply": _ply_binary(nan_cloud)},
            "11.ply: NaN or inf coordinates",
        ),
        "pc_mixed_counts": (
            {f"{i:02d}.ply": data for i, data in enumerate(good[:11])}
            | {"11.ply": _ply_binary(_cloud(11, 300))},
            "clouds have different point counts",
        ),
    }
    expected = {}
    for name, (files, fragment) in cases.items():
        _write_folder(root / name, files)
        expected[name] = fragment
    # Arrays: (N, P, 2) has no z; a cloud with inf; a well-formed set against an image reference.
    flat = np.stack([_cloud(i)[:, :2] for i in range(12)])
    np.save(root / "pc_two_coordinates.npy", flat)
    expected["pc_two_coordinates"] = "pc_two_coordinates.npy: point clouds must be an (N, P, 3) array"
    inf = np.stack([_cloud(i) for i in range(12)])
    inf[3, 5, 2] = np.inf
    np.save(root / "pc_inf_cloud.npy", inf)
    expected["pc_inf_cloud"] = "cloud 3 has NaN or inf coordinates"
    np.save(root / "pc_against_images.npy", np.stack([_cloud(i) for i in range(12)]))
    expected["pc_against_images"] = "pc_against_images.npy holds pointclouds but the reference digits:test"
    return expected
