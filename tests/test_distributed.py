"""torchrun with gloo on CPU: 2 processes give the single-process run; a dead rank fails the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

COMMAND = ["evaluate", "ref:dcgan", "--reference", "digits:test", "--num-samples", "300"]
COMMAND += ["--num-resamples", "10", "--batch-size", "64", "--no-cache", "--quiet"]


def _torchrun(
    args: list[str], env: dict[str, str] | None = None, processes: int = 2
) -> subprocess.CompletedProcess:
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(processes),
        "--standalone",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "GEN_EVAL_DIST_TIMEOUT_S": "120", **(env or {})}
    return subprocess.run(
        [*launcher, "-m", "gen_eval", *args], capture_output=True, text=True, env=environment, timeout=400
    )


@pytest.mark.timeout(400)
def test_two_gloo_processes_write_the_single_process_run(tmp_path: Path) -> None:
    one = subprocess.run(
        [sys.executable, "-m", "gen_eval", *COMMAND, "--out", str(tmp_path / "one")],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=400,
    )
    assert one.returncode == 0, one.stderr
    two = _torchrun([*COMMAND, "--out", str(tmp_path / "two")])
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("run written to") == 1  # rank 1 stays quiet
    a = json.loads((tmp_path / "one" / "metrics.json").read_text())
    b = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert a == b  # every value, interval and collapse finding
    import gen_eval

    features_one = gen_eval.load_run(tmp_path / "one").features()
    features_two = gen_eval.load_run(tmp_path / "two").features()
    assert all(torch.equal(features_one[k], features_two[k]) for k in features_one)


def _moments_worker(rank: int, world: int, init_file: str, features: torch.Tensor, out: str) -> None:
    import torch.distributed as dist

    from gen_eval import distributed
    from gen_eval.metrics.stats import Moments

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    distributed._state["initialised"] = True
    batches = features.split(37)
    own = [(i, Moments.from_features(b)) for i, b in distributed.own_batches(batches)]
    merged = Moments.empty(features.shape[1])
    for part in distributed.gather_in_order(own):
        merged = merged.merge(part)
    if rank == 0:
        torch.save({"mean": merged.mean, "cov": merged.cov, "count": merged.count}, out)
    distributed.shutdown()


def test_moments_merged_across_ranks_equal_one_pass_to_1e_10(tmp_path: Path) -> None:
    from gen_eval.metrics.stats import Moments

    g = torch.Generator().manual_seed(0)
    features = torch.randn(500, 16, generator=g, dtype=torch.float64) * 3 + 100  # a large mean
    out = tmp_path / "merged.pt"
    torch.multiprocessing.spawn(
        _moments_worker, args=(2, str(tmp_path / "init"), features, str(out)), nprocs=2, join=True
    )
    merged = torch.load(out, weights_only=True)
    whole = Moments.from_features(features)
    assert merged["count"] == 500
    assert torch.allclose(merged["mean"], whole.mean, rtol=0, atol=1e-10)
    assert torch.allclose(merged["cov"], whole.cov, rtol=0, atol=1e-10)


@pytest.mark.timeout(400)
def test_a_dead_rank_fails_the_job_and_writes_no_run(tmp_path: Path) -> None:
    result = _torchrun([*COMMAND, "--out", str(tmp_path / "run")], env={"GEN_EVAL_TEST_FAIL_RANK": "1"})
    assert result.returncode != 0
    assert "rank      : 1" in result.stderr and "Root Cause" in result.stderr
    assert not (tmp_path / "run").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]  # no staging left either


@pytest.mark.timeout(400)
def test_score_under_torchrun_matches_one_process(tmp_path: Path) -> None:
    import numpy as np

    from gen_eval.bench.hostile import digits

    subs = tmp_path / "subs"
    subs.mkdir()
    np.save(subs / "ann.npy", digits(0, 120))
    np.save(subs / "bad.npy", digits(0, 3))
    args = ["score", str(subs), "--reference", "digits:test", "--num-resamples", "10"]
    two = _torchrun([*args, "--out", str(tmp_path / "two")])
    # bad.npy fails, so score exits 3 (EXIT_FAILED_SUBMISSIONS); torchrun reports that as a failed
    # child (its own status is 1) after every rank has finished writing.
    assert two.returncode != 0 and "exitcode: 3" in two.stderr, two.stderr[-2000:]
    one = subprocess.run(
        [sys.executable, "-m", "gen_eval", *args, "--out", str(tmp_path / "one")],
        capture_output=True,
        timeout=400,
    )
    assert one.returncode == 3, one.stderr[-2000:]
    for name in ("metrics.json",):
        assert (tmp_path / "one" / "runs" / "ann" / name).read_text() == (
            tmp_path / "two" / "runs" / "ann" / name
        ).read_text()
    rows = json.loads((tmp_path / "two" / "leaderboard.json").read_text())["rows"]
    assert [r["error"] is None for r in rows] == [True, False]
