"""The demo's issue-23 sections (gen_eval/demo/sections.py declarations): paired tasks, the plane."""

from __future__ import annotations

import pytest

from gen_eval.demo import conditional, paired, translation
from gen_eval.demo.sections import score_section, section_rows, split_for_section
from reference_models import MODELS


def test_sections_claim_their_models_and_the_digits_leaderboard_does_not():
    names = ["dcgan", "bicubic_sr4", "mean_inpaint", "cvae", "cyclegan_digits2mnist", "trigram_names"]
    rest, sr4 = split_for_section(names, paired.SECTIONS["sr4"])
    assert sr4 == ["bicubic_sr4"] and "bicubic_sr4" not in rest
    assert split_for_section(names, paired.SECTIONS["inpaint"])[1] == ["mean_inpaint"]
    assert split_for_section(names, conditional.SECTION)[1] == ["cvae"]
    assert split_for_section(names, translation.SECTION)[1] == ["cyclegan_digits2mnist"]
    # Every registered paired or translation model belongs to exactly one section.
    sections = [conditional.SECTION, *paired.SECTIONS.values(), translation.SECTION]
    for name, entry in MODELS.items():
        if "task" in entry.config or entry.family in ("paired", "translation"):
            assert sum(s.belongs(entry) for s in sections) == 1, name


@pytest.mark.parametrize("task", ["sr4"])
def test_paired_section_scores_the_baseline_and_the_unet_and_draws_the_plane(task, tmp_path):
    from gen_eval.report.plane import plane_png

    section = paired.SECTIONS[task]
    names = [n for n in ("bicubic_sr4", "unet_sr4") if MODELS[n].checkpoint.is_file()]
    scores = score_section(
        section, names, out_dir=tmp_path, num_samples=200, num_resamples=0, show_progress=False
    )
    by_name = {s.name: s for s in scores}
    # The bicubic baseline is back-projected onto the task's own degradation: consistency is exact.
    assert by_name["bicubic_sr4"].value("consistency") == pytest.approx(0.0, abs=1e-9)
    if "unet_sr4" in by_name:  # the L1 U-Net beats bicubic on distortion
        assert by_name["unet_sr4"].value("psnr") > by_name["bicubic_sr4"].value("psnr") + 2
    columns, rows = section_rows(section, scores)
    assert columns[:4] == ["model", "family", "PSNR dB", "SSIM"] and len(rows) == len(names)
    points = paired.plane_points(scores)
    assert {p["name"] for p in points} == set(names) and all(p["task"] == task for p in points)
    picture = plane_png(points, tmp_path / "plane.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob(".*partial"))
