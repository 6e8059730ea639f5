"""Unpaired translation metrics (issue 23): does a translator keep the digit, and can it go back?

Both read the generated source itself (a translation model's source,
:mod:`gen_eval.sources.translation`: outputs beside their inputs, and the model), not features.
FID/KID in the target domain are the ordinary feature metrics of the same run (outputs against
the target dataset's test split, with its own feature network).

``label_preservation``
    The share of inputs whose class, as the source domain's classifier reads the input, is the
    class the target domain's classifier reads in the output (CycleGAN's "FCN score" idea, Zhu et
    al. 2017, with digit classifiers). Classifiers: the bundled ``digits`` network on the 8x8
    inputs and the bundled ``mnist`` network on the 28x28 outputs (their weights in
    ``gen_eval/features/weights/``, loaded here with the shared :mod:`gen_eval.nets.small_cnn`
    architecture because metrics may not import the feature layer). Without the mnist weights a
    logistic regression fitted on ``mnist:train`` pixels reads the outputs instead, and a warning
    says so. Interval: Wilson's score interval for the share (scipy's ``binomtest``), covering
    the sampling of the inputs, the classifiers fixed. ``details`` hold what the value must be
    read against: each classifier's own accuracy on its domain's real test split (the ceiling:
    two imperfect classifiers rarely agree more often than both are right), the chance level (sum
    over classes of the two prediction shares' product), the outputs' accuracy against the
    inputs' true labels when the source has them, and the confusion matrix (input class x output
    class), where a translator that swaps two digits shows.
``cycle_consistency``
    Mean absolute difference, in uint8 grey levels (0-255), between each input ``x`` and
    ``translate_back(translate(x))``, averaged over pixels then inputs; 0 for an exactly
    invertible pair. Interval: percentile bootstrap over inputs (scipy's ``bootstrap``), covering
    the choice of inputs. ``details`` add the same error in the digits' own grey-level steps
    (255/16) and the other direction's cycle ``translate(translate_back(y))`` on the target
    domain's test split.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gen_eval.errors import GenEvalError
from gen_eval.metrics.result import Result

if TYPE_CHECKING:
    from gen_eval.metrics.base import MetricContext

# The bundled feature networks' weights; metrics sit beside features in the layers, so the file is
# found by path rather than through gen_eval.features.
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "features" / "weights"
DATASET_SPLIT = "test"


def _translation_parts(context: MetricContext) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray | None]:
    """The model, inputs, outputs and labels of the run's translation source (error if it is not one)."""
    source = context.generated_source
    model = getattr(source, "model", None)
    if source is None or not callable(getattr(model, "translate_back", None)) or not hasattr(source, "pairs"):
        raise GenEvalError(
            "the translation metrics need a translation model's source (ref:cyclegan_digits2mnist)"
        )
    pairs = source.pairs()
    return model, pairs.inputs, pairs.outputs, pairs.labels


@lru_cache(maxsize=4)
def _bundled_net(name: str) -> torch.nn.Module | None:
    """The bundled ``digits`` or ``mnist`` classifier, or None when its weights file is absent."""
    from safetensors.torch import load_file

    from gen_eval.nets.small_cnn import DIGITS_SPEC, MNIST_SPEC, SmallCNN

    spec = {"digits": DIGITS_SPEC, "mnist": MNIST_SPEC}[name]
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        return None
    net = SmallCNN(spec)
    net.load_state_dict(load_file(str(path)))  # safetensors: tensors only, no pickle
    return net.eval()


@lru_cache(maxsize=2)
def _logistic_regression(dataset: str) -> Any:
    """Fallback reader of ``dataset``'s images: scikit-learn's logistic regression on train pixels / 255."""
    from sklearn.linear_model import LogisticRegression

    from gen_eval.datasets import get_dataset

    info = get_dataset(dataset)
    images, labels = info.read("train", 0, info.size("train"))
    return LogisticRegression(max_iter=300).fit(images.reshape(len(images), -1) / 255.0, labels)


def classify(dataset: str, images: np.ndarray) -> tuple[np.ndarray, str]:
    """Predicted classes of uint8 (N, 1, H, W) ``images`` by ``dataset``'s classifier, and its name."""
    net = _bundled_net(dataset)
    if net is None:
        model = _logistic_regression(dataset)
        flat = images.reshape(len(images), -1) / 255.0
        return model.predict(flat).astype(np.int64), f"logistic regression on {dataset}:train pixels"
    from gen_eval.nets.small_cnn import net_input, predict

    x = net_input(torch.from_numpy(np.ascontiguousarray(images)), net.spec.size)
    return predict(net, x).numpy().astype(np.int64), f"bundled {dataset} network"


@lru_cache(maxsize=4)
def _ceiling(dataset: str) -> float:
    """Accuracy of ``dataset``'s classifier on its own real test split."""
    from gen_eval.datasets import get_dataset

    info = get_dataset(dataset)
    images, labels = info.read(DATASET_SPLIT, 0, info.size(DATASET_SPLIT))
    return float(np.mean(classify(dataset, images)[0] == labels))


def _wilson(hits: int, total: int, confidence: float) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(hits, total).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _datasets(model: Any) -> tuple[str, str]:
    from gen_eval.sources.translation import TRANSLATIONS

    task = getattr(model, "task", None)
    if task not in TRANSLATIONS:
        raise GenEvalError(f"translation task {task!r} unknown; known: {', '.join(TRANSLATIONS)}")
    return TRANSLATIONS[task]


def label_preservation(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Agreement of the source classifier on each input with the target classifier on its output.

    Parameters
    ----------
    generated, reference : dict
        The run's features (unused: the metric reads the source's images).
    context : MetricContext
        Its ``generated_source`` is a translation model's source.

    Returns
    -------
    dict
        ``{"label_preservation": Result}`` (see the module docstring for the details).
    """
    del generated, reference
    model, inputs, outputs, labels = _translation_parts(context)
    source_dataset, target_dataset = _datasets(model)
    read_in, source_reader = classify(source_dataset, inputs)
    read_out, target_reader = classify(target_dataset, outputs)
    total = len(read_in)
    hits = int(np.sum(read_in == read_out))
    classes = 10
    share_in = np.bincount(read_in, minlength=classes) / total
    share_out = np.bincount(read_out, minlength=classes) / total
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (read_in, read_out), 1)
    details: dict[str, Any] = {
        "source_classifier": source_reader,
        "target_classifier": target_reader,
        "source_classifier_accuracy": _ceiling(source_dataset),
        "target_classifier_accuracy": _ceiling(target_dataset),
        "chance": float(np.dot(share_in, share_out)),
        "confusion": confusion.tolist(),
    }
    if labels is not None and len(labels) == total:
        details["output_accuracy"] = float(np.mean(read_out == labels))
        details["input_accuracy"] = float(np.mean(read_in == labels))
    warnings = []
    if "logistic" in target_reader:
        warnings.append(
            f"no bundled {target_dataset} network weights: the outputs were read by a logistic regression "
            f"(accuracy {details['target_classifier_accuracy']:.1%} on {target_dataset}:{DATASET_SPLIT})"
        )
    interval = _wilson(hits, total, context.confidence) if context.num_resamples > 0 else None
    result = Result(
        "label_preservation",
        hits / total,
        "higher",
        total,
        0,
        interval=interval,
        interval_covers="the share over these inputs (Wilson score interval), the two classifiers fixed",
        warnings=warnings,
        details=details,
    )
    return {"label_preservation": result}


def cycle_errors(model: Any, images: np.ndarray, forward_first: bool = True) -> np.ndarray:
    """Per-image mean |cycle(x) - x| in grey levels (float64); ``forward_first``: back(translate(x))."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    if forward_first:
        there = model.translate(x)
        back = model.translate_back(there)
    else:
        there = model.translate_back(x)
        back = model.translate(there)
    if tuple(back.shape) != tuple(x.shape):
        raise GenEvalError(f"the cycle returned shape {tuple(back.shape)} for inputs {tuple(x.shape)}")
    diff = back.numpy().astype(np.float64) - images.astype(np.float64)
    return np.abs(diff).reshape(len(images), -1).mean(axis=1)


def cycle_consistency(generated: dict, reference: dict, context: MetricContext) -> dict[str, Result]:
    """Mean |translate_back(translate(x)) - x| over the inputs, in grey levels (0-255).

    Parameters
    ----------
    generated, reference : dict
        The run's features (unused).
    context : MetricContext
        Its ``generated_source`` is a translation model's source.

    Returns
    -------
    dict
        ``{"cycle_consistency": Result}``.
    """
    del generated, reference
    model, inputs, outputs, _ = _translation_parts(context)
    source_dataset, target_dataset = _datasets(model)
    # translate(x) is the source's own outputs; only the way back is computed here.
    spec = getattr(context.generated_source, "spec", "the translator")
    try:
        back = model.translate_back(torch.from_numpy(np.ascontiguousarray(outputs)))
    except GenEvalError:
        raise
    except Exception as exc:  # a submitted model's own failure: one line naming it
        raise GenEvalError(f"{spec}: translate_back() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(back, torch.Tensor) or tuple(back.shape) != tuple(inputs.shape):
        got = tuple(back.shape) if isinstance(back, torch.Tensor) else type(back).__name__
        raise GenEvalError(f"{spec}: translate_back() returned {got} for inputs {tuple(inputs.shape)}")
    errors = (
        np.abs(back.numpy().astype(np.float64) - inputs.astype(np.float64)).reshape(len(inputs), -1).mean(1)
    )
    value = float(errors.mean())
    interval = None
    if context.num_resamples > 0 and len(errors) > 1 and np.ptp(errors) > 0:
        from scipy.stats import bootstrap

        boot = bootstrap(
            (errors,),
            np.mean,
            n_resamples=context.num_resamples,
            confidence_level=context.confidence,
            method="percentile",
            random_state=np.random.default_rng(context.random_state),
        )
        interval = (float(boot.confidence_interval.low), float(boot.confidence_interval.high))
    elif context.num_resamples > 0:
        interval = (value, value)  # every input has the same error: no resample can differ
    from gen_eval.datasets import get_dataset

    info = get_dataset(target_dataset)
    size = info.size(DATASET_SPLIT)
    # Evenly spaced rows, not the first ones: a split may be stored class by class (mnist's is).
    rows = np.unique(np.linspace(0, size - 1, min(len(inputs), size)).round().astype(np.int64))
    targets = info.read(DATASET_SPLIT, 0, size)[0][rows]
    details = {
        "grey_levels": "uint8, 0-255",
        "other_direction": float(cycle_errors(model, targets, forward_first=False).mean()),
        "other_direction_data": f"{target_dataset}:{DATASET_SPLIT}, {len(rows):,} evenly spaced images",
    }
    if source_dataset == "digits":  # the digits' 17 levels are 255/16 apart
        details["in_digit_levels"] = value / (255.0 / 16.0)
    result = Result(
        "cycle_consistency",
        value,
        "lower",
        len(inputs),
        0,
        interval=interval,
        interval_covers="the mean over inputs (percentile bootstrap over inputs), the model fixed",
        details=details,
    )
    return {"cycle_consistency": result}
