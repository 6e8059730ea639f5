"""LPIPS weights and distance, run files added atomically, and `gen-eval latent` end to end."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from gen_eval.cli import app
from gen_eval.errors import GenEvalError
from gen_eval.features import lpips as lpips_module
from gen_eval.runs.run import add_run_files, load_run


@pytest.fixture
def lpips_files(tmp_path):
    """Random but informative VGG-16 weights and lin weights, saved like the real files."""
    from torchvision.models import vgg16

    torch.manual_seed(0)
    vgg = vgg16(weights=None)
    for module in vgg.features:
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
            torch.nn.init.normal_(module.bias, std=0.1)
    vgg_path, lin_path = tmp_path / "vgg16-397923af.pth", tmp_path / "vgg.pth"
    torch.save(vgg.state_dict(), vgg_path)
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(lpips_module._CHANNELS)}
    torch.save(lin, lin_path)
    return vgg_path, lin_path


def test_lpips_equals_the_lpips_package_on_the_same_weights(lpips_files):
    lpips = pytest.importorskip("lpips")
    vgg_path, lin_path = lpips_files
    ours = lpips_module.LPIPS.from_files(vgg_path, lin_path)
    theirs = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, model_path=str(lin_path), verbose=False)
    backbone = torch.load(vgg_path, weights_only=True)
    for block in (
        theirs.net.slice1,
        theirs.net.slice2,
        theirs.net.slice3,
        theirs.net.slice4,
        theirs.net.slice5,
    ):
        block.load_state_dict({k: backbone[f"features.{k}"] for k in block.state_dict()})
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.rand(4, 3, 64, 64, generator=g), torch.rand(4, 3, 64, 64, generator=g)
    expected = theirs(x0, x1, normalize=True).flatten()
    got = ours(x0, x1)
    assert got.std() > 1e-3 * got.mean()  # the weights tell images apart
    assert torch.allclose(got, expected, rtol=1e-4)
    assert torch.allclose(ours(x0, x0), torch.zeros(4), atol=1e-6)
    assert ours(x0[:, :1], x1[:, :1]).shape == (4,)  # grey images of 8x8 are expanded and upsampled
    assert ours(x0[:, :1, :8, :8], x1[:, :1, :8, :8]).shape == (4,)


def test_lpips_weights_resolve_from_flag_env_and_hub(lpips_files, tmp_path, monkeypatch):
    vgg_path, lin_path = lpips_files
    monkeypatch.setattr(lpips_module, "_installed_lpips_lin", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(lpips_module.VGG_WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(lpips_module.LIN_WEIGHTS_ENV, raising=False)
    with pytest.raises(GenEvalError, match=r"vgg16-397923af\.pth.*GEN_EVAL_VGG16_WEIGHTS"):
        lpips_module.resolve_lpips_weights()
    assert lpips_module.resolve_lpips_weights(vgg_path, lin_path) == (vgg_path, lin_path)
    monkeypatch.setenv(lpips_module.VGG_WEIGHTS_ENV, str(vgg_path))
    with pytest.raises(GenEvalError, match=r"lpips-vgg-v0\.1\.pth"):
        lpips_module.resolve_lpips_weights()
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / lpips_module.LIN_WEIGHTS_FILENAME).write_bytes(lin_path.read_bytes())
    assert lpips_module.resolve_lpips_weights() == (vgg_path, hub / lpips_module.LIN_WEIGHTS_FILENAME)


def test_ppl_uses_lpips_when_found_and_says_so_otherwise(lpips_files, monkeypatch, tmp_path):
    from gen_eval.latent.ppl import ppl_distance

    monkeypatch.setattr(lpips_module, "_installed_lpips_lin", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "none"))
    monkeypatch.delenv(lpips_module.VGG_WEIGHTS_ENV, raising=False)
    name, _, notes = ppl_distance("digits")
    assert name == "ppl_digits_features" and "not with published PPL" in notes[0]
    name, distance, notes = ppl_distance("digits", *map(str, lpips_files))
    assert name == "ppl_lpips_vgg" and notes == []
    assert distance(torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)).shape == (2,)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("latent") / "vae"
    args = ["latent", "ref:vae", "--out", str(out), "--num-pairs", "8", "--ppl-samples", "200", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output)


def test_cli_writes_checksummed_latent_results_into_a_run(vae_run):
    out, printed = vae_run
    run = load_run(out)  # verifies every checksum
    files = run.manifest["files"]
    for name in (
        "latent.json",
        "latent/interpolation.png",
        "latent/traversal.png",
        "latent/ppl.json",
        "latent/embedding.json",
    ):
        assert name in files
    stored = json.loads((out / "latent.json").read_text())
    assert stored["analyses"] == printed["analyses"]
    assert printed["analyses"]["ppl"]["name"] == "ppl_digits_features"
    assert printed["analyses"]["traversal"]["ranking"] == "kl"
    assert printed["analyses"]["smoothness"]["decoder"] == "decode_float"
    assert printed["analyses"]["arithmetic"] == {
        **printed["analyses"]["arithmetic"],
        "source": 3,
        "target": 8,
    }


def test_report_shows_the_latent_section(vae_run):
    from gen_eval.report.run_report import run_report_html

    html = run_report_html(load_run(vae_run[0]))
    assert ("Latent space" in html and "Perceptual" not in html) or "ppl_digits_features" in html
    assert "traversal" in html and "cannot be shown" not in html


def test_add_run_files_replaces_atomically_and_keeps_the_rest(vae_run, tmp_path):
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(vae_run[0], run_dir)
    (run_dir / "report.html").write_text("<html></html>")
    add_run_files(run_dir, {"latent/only.json": b"{}"}, replace_prefix="latent")
    run = load_run(run_dir)
    latent_files = [name for name in run.manifest["files"] if name.startswith("latent")]
    assert latent_files == ["latent/only.json"]
    assert not (run_dir / "latent" / "traversal.png").exists() and (run_dir / "report.html").is_file()
    with pytest.raises(GenEvalError, match="inside the run"):
        add_run_files(run_dir, {"../escape.txt": b"x"})
    assert not any(p.name.startswith(".copy.") for p in tmp_path.iterdir())  # no staging left behind


def test_cli_refuses_a_model_without_decode(tmp_path):
    result = CliRunner().invoke(app, ["latent", "ref:gmm"])
    assert result.exit_code == 2
    assert "needs decode(z)" in result.output and "Traceback" not in result.output


def test_shapes_disentanglement_glue_gives_scores_and_an_importance_matrix():
    from gen_eval.latent.factors import shapes_disentanglement
    from reference_models import load_model

    small = {
        "beta_vae": {"num_train": 64, "num_eval": 32, "batch_size": 16},
        "factor_vae": {"num_train": 64, "num_eval": 32, "num_variance_estimate": 500, "batch_size": 16},
        "dci": {"num_train": 300, "num_test": 150, "n_estimators": 5, "n_jobs": 1},
    }
    summary, figures = shapes_disentanglement(load_model("beta_vae_shapes"), num_train=600, options=small)
    assert set(summary["scores"]) == {
        "BetaVAE",
        "FactorVAE",
        "MIG",
        "DCI disentanglement",
        "SAP",
        "modularity",
    }
    assert all(0 <= v <= 1 for v in summary["scores"].values())
    importance = summary["importance_matrix"]
    assert len(importance) == 10 and len(importance[0]) == 5 and summary["factors"][0] == "shape"
    assert set(figures) == {"disentanglement", "dci_importance"}
    with pytest.raises(GenEvalError, match="shapes"):
        shapes_disentanglement(load_model("vae"))
