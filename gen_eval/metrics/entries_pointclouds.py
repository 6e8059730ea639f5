"""The point-cloud metrics' registry entries (issue 24): they read the clouds, which the kind provides."""

from __future__ import annotations

from gen_eval.metrics.entry import MetricEntry
from gen_eval.option_types import Option

_PC_NORMALISE = Option(
    str,
    "none",
    "per-cloud normalisation before point-cloud distances (none: as given, PointFlow's evaluation)",
    "gen_eval.metrics.pointclouds_distances:NORMALISATIONS",
)
# Point clouds (issue 24): read from the sources; the kind provides "pointclouds".
POINTCLOUD_METRICS: dict[str, MetricEntry] = {
    "pointflow_cd": MetricEntry(
        "gen_eval.metrics.pointclouds:pointflow_cd",
        "pointclouds",
        True,
        "PointFlow protocol with Chamfer distance: MMD-CD, COV-CD, 1-NNA-CD",
        {
            "pc_normalise": _PC_NORMALISE,
            "pc_chamfer": Option(
                str,
                "auto",
                "Chamfer path: auto (gemm), gemm (torch on the device) or kdtree (SciPy, CPU, float64)",
                "gen_eval.metrics.pointclouds_distances:CHAMFER_METHODS",
            ),
        },
        ("pointcloud",),
    ),
    "pointflow_emd": MetricEntry(
        "gen_eval.metrics.pointclouds:pointflow_emd",
        "pointclouds",
        False,
        "PointFlow protocol with exact EMD on farthest-point reductions: MMD-EMD, COV-EMD, 1-NNA-EMD (slow)",
        {
            "pc_normalise": _PC_NORMALISE,
            "pc_emd_points": Option(
                int, 256, "points per cloud for EMD (larger clouds: farthest-point reduction)"
            ),
            "pc_emd": Option(
                str,
                "auto",
                "EMD path: auto (sinkhorn on CUDA, exact on the CPU), exact (SciPy) or sinkhorn (POT batched)",
                "gen_eval.metrics.pointclouds_emd_batch:EMD_PATHS",
            ),
        },
        ("pointcloud",),
    ),
    "voxel_jsd": MetricEntry(
        "gen_eval.metrics.pointclouds_jsd:voxel_jsd",
        "pointclouds",
        True,
        "JSD of voxel occupancy over each set (28^3 grid, latent_3d_points)",
        {
            "pc_normalise": _PC_NORMALISE,
            "jsd_resolution": Option(int, 28, "grid cells per side"),
            "jsd_radius": Option(
                float,
                None,
                "radius mapped onto the grid's ball (default: the reference's largest point norm)",
            ),
        },
        ("pointcloud",),
    ),
    "cd_memorisation": MetricEntry(
        "gen_eval.metrics.pointclouds_memorisation:cd_memorisation",
        "pointclouds",
        False,
        "share of generated clouds nearer (CD) to a training cloud than the held-out floor",
        {
            "pc_normalise": _PC_NORMALISE,
            "pc_train": Option(str, None, "training set spec (default: the reference dataset's train split)"),
            "pc_memorisation_points": Option(int, 256, "points per cloud (a seeded random subset)"),
            "pc_memorisation_quantile": Option(
                float, 0.05, "quantile of the held-out distances used as the floor"
            ),
        },
        ("pointcloud",),
    ),
}
