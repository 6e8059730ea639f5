"""The six disentanglement metrics on planted codes over the shapes factor grid.

The planted encoders (``gen_eval.latent.disentangle.planted``) act on factor indices (no
rendering): ``perfect`` is the standardised ground-truth values (L=5), ``rotated`` the same under
a fixed random orthogonal matrix, ``duplicated`` is [z, z] (L=10) and ``noise`` is standard normal
codes independent of the factors (L=10). BetaVAE, FactorVAE, MIG, SAP and modularity run at
disentanglement_lib's default sizes (cheap with these encoders); DCI, whose gradient-boosted
trees take 1 to 7 minutes per call at the defaults on 2 shared cores, runs on 1,000 train + 500
test points with 10 boosting stages instead of 10,000 + 5,000 with 100 (the defaults are timed
by ``gen-eval bench disentanglement``). The whole file takes about 25 s on 2 shared cores.
Measured values (seed 0) are in the comments next to each assertion.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from gen_eval.datasets import shapes
from gen_eval.latent.disentangle import (
    METRICS,
    beta_vae_score,
    dci,
    evaluate_disentanglement,
    factor_vae_score,
    mig,
    mig_score,
    modularity_explicitness,
    sap,
    sap_score,
)
from gen_eval.latent.disentangle.common import (
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    sample_factors,
)
from gen_eval.latent.disentangle.dci import _weighted_specificity
from gen_eval.latent.disentangle.modularity import _modularity
from gen_eval.latent.disentangle.planted import perfect, planted_encoder

SIZES = shapes.FACTOR_SIZES


@cache
def fixed_data(case: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    factors = sample_factors(n, SIZES, np.random.default_rng(seed))
    return planted_encoder(case, 1000 + seed)(factors), factors


@cache
def scores(case: str) -> dict[str, dict]:
    fn = planted_encoder(case)
    codes, factors = fixed_data(case, 10_000, 0)
    mod_x, mod_y = fixed_data(case, 10_000, 1)
    mod_xt, mod_yt = fixed_data(case, 5_000, 2)
    dci_x, dci_y = fixed_data(case, 1_000, 3)
    dci_xt, dci_yt = fixed_data(case, 500, 4)
    return {
        "beta_vae": beta_vae_score(fn, SIZES, 0),
        "factor_vae": factor_vae_score(fn, SIZES, 0),
        "mig": mig(codes, factors),
        "sap": sap(codes, factors),
        "modularity": modularity_explicitness(mod_x, mod_y, mod_xt, mod_yt),
        "dci": dci(dci_x, dci_y, dci_xt, dci_yt, n_estimators=10),
    }


def test_perfect_code_scores_near_the_maximum():
    s = scores("perfect")
    assert s["beta_vae"]["eval_accuracy"] >= 0.95  # 1.000
    assert s["factor_vae"]["eval_accuracy"] >= 0.95  # 1.000
    assert s["dci"]["disentanglement"] >= 0.95  # 1.000
    assert s["dci"]["completeness"] >= 0.95  # 1.000
    # Not 1: 20 bins merge shapes' 32 positions and 40 orientations (about 0.85 and 0.81 of their
    # entropy survive binning); shape and scale keep all of theirs.
    assert 0.85 <= s["mig"]["mig"] <= 0.93  # 0.896
    assert s["sap"]["sap"] >= 0.95  # 1.000 (continuous mode)
    assert s["modularity"]["modularity"] >= 0.95  # 0.999
    assert s["modularity"]["explicitness_test"] >= 0.9  # 0.98


def test_random_rotation_fools_beta_vae_but_not_mig_or_dci():
    s = scores("rotated")
    assert s["mig"]["mig"] < 0.1  # 0.04
    assert s["dci"]["disentanglement"] < 0.2  # 0.12
    assert s["beta_vae"]["eval_accuracy"] >= 0.85  # 0.91: a linear classifier undoes the rotation
    assert s["sap"]["sap"] < 0.3  # 0.15
    assert s["modularity"]["modularity"] < 0.9  # 0.78: MI-based, so a mix of factors costs it
    # Explicitness is a linear read-out, so a rotation leaves it unchanged.
    assert s["modularity"]["explicitness_test"] >= 0.9  # 0.98


def test_duplicated_code_has_no_gap_but_full_dci_disentanglement():
    s = scores("duplicated")
    assert s["mig"]["mig"] < 0.02  # 0.000: the top two MIs are equal
    assert s["sap"]["sap"] < 0.02  # 0.000, for the same reason
    assert s["dci"]["disentanglement"] >= 0.95  # 1.000: each code still serves one factor
    # Completeness pays for the redundancy: importance split over two codes of ten.
    assert s["dci"]["completeness"] == pytest.approx(1 - np.log(2) / np.log(10), abs=0.05)  # 0.70
    assert s["factor_vae"]["num_active_dims"] == 10


def test_noise_codes_score_at_chance_and_modularity_is_biased_up():
    s = scores("noise")
    assert s["beta_vae"]["eval_accuracy"] == pytest.approx(0.2, abs=0.04)  # 0.20, chance 1/5
    assert s["factor_vae"]["eval_accuracy"] == pytest.approx(0.2, abs=0.04)  # 0.20
    assert s["mig"]["mig"] < 0.02  # 0.001
    assert s["dci"]["disentanglement"] < 0.1  # 0.01
    assert s["sap"]["sap"] < 0.02  # 0.001
    assert s["modularity"]["explicitness_test"] == pytest.approx(0.5, abs=0.05)  # 0.50
    # MI bias grows with the number of factor values, so noise looks specialised in orientation.
    assert 0.55 <= s["modularity"]["modularity"] <= 0.8  # 0.67


def test_sap_discrete_mode_underrates_a_perfect_code():
    codes, factors = fixed_data("perfect", 15_000, 5)  # 10,000 train + 5,000 test, the defaults
    discrete = sap(codes, factors, continuous=False)
    assert discrete["mode"] == "discrete"
    assert discrete["sap"] < 0.4  # 0.25: a linear classifier on one scalar finds few of 32 classes
    assert sap(codes, factors)["sap"] > 0.95


def test_factor_vae_prunes_dead_dimensions():
    # A constant dimension's variance ratio is 0/0 (NaN), which argmin would pick for every vote:
    # measured 0.21 with prune_threshold=0, 1.000 with the default 0.05.
    def with_dead_dim(f):
        z = perfect(f)
        return np.hstack([np.zeros((len(f), 1)), z])

    out = factor_vae_score(with_dead_dim, SIZES, 0, num_train=500, num_eval=500, num_variance_estimate=2000)
    assert out["num_active_dims"] == 5
    assert out["eval_accuracy"] == 1.0
    dead = factor_vae_score(lambda f: np.zeros((len(f), 3)), SIZES, 0, num_train=10, num_eval=10)
    assert dead == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0, "chance": 0.2}


def test_building_blocks_on_hand_made_inputs():
    x = np.linspace(0, 1, 200)[:, None]
    binned = histogram_discretize(x, 20)
    assert binned.min() == 1 and binned.max() == 20 and np.all(np.bincount(binned[:, 0])[1:] == 10)
    y = np.repeat(np.arange(4), 50)[:, None]
    assert discrete_entropy(y)[0] == pytest.approx(np.log(4))
    assert discrete_mutual_info(y, y)[0, 0] == pytest.approx(np.log(4))
    assert _weighted_specificity(np.eye(3)) == pytest.approx(1.0)
    assert _weighted_specificity(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-12)
    # Code 0 informs on one factor (1), code 1 equally on three (1 - 2/2 = 0), code 2 on nothing (0).
    mi = np.array([[0.0, 2.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(_modularity(mi), [1.0, 0.0, 0.0])


def test_evaluate_disentanglement_runs_all_six_reproducibly():
    small = {"dci": {"n_estimators": 5}}
    res = evaluate_disentanglement(perfect, SIZES, num_train=1_000, random_state=0, options=small)
    assert list(res) == list(METRICS) == ["beta_vae", "factor_vae", "mig", "dci", "sap", "modularity"]
    assert set(res["dci"]) >= {
        "disentanglement",
        "completeness",
        "informativeness_train",
        "informativeness_test",
    }
    assert set(res["modularity"]) >= {"modularity", "explicitness_train", "explicitness_test"}
    assert res["beta_vae"]["eval_accuracy"] == 1.0 and res["dci"]["disentanglement"] >= 0.95
    # A metric run alone gets the same seed, hence the same numbers, as in the full run.
    alone = evaluate_disentanglement(perfect, SIZES, num_train=1_000, random_state=0, metrics=["mig"])
    assert alone["mig"] == res["mig"]
    again = mig_score(perfect, SIZES, np.random.default_rng(7), num_train=1_000)
    assert again == mig_score(perfect, SIZES, np.random.default_rng(7), num_train=1_000)
    # Fitting factors in parallel draws the same per-factor seeds, so it gives the same numbers.
    codes, factors = fixed_data("rotated", 600, 6)
    assert dci(codes, factors, n_estimators=3, n_jobs=2) == dci(codes, factors, n_estimators=3)
    with pytest.raises(ValueError, match="unknown disentanglement metric"):
        evaluate_disentanglement(perfect, SIZES, metrics=["irs"])


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="representation_fn must map"):
        sap_score(lambda f: np.zeros(len(f)), SIZES, 0, num_train=10)
    codes, factors = fixed_data("perfect", 100, 0)
    with pytest.raises(ValueError, match="integer factor indices"):
        mig(codes, factors.astype(float))
    with pytest.raises(ValueError, match="both codes_test and factors_test"):
        dci(codes, factors, codes_test=codes)
