"""A bundled reference model as a source: ``ref:NAME`` (see ``gen-eval models``).

The shipped weights are data (safetensors) and the model code is part of this package, so no
``--trust-code`` is needed. Sampling is seeded, so the samples are known from the checkpoint's
hash, the model file's source hash, the seed and the count: their features are cached like a
dataset's.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path

from gen_eval.errors import GenEvalError
from gen_eval.sources.base import Source
from gen_eval.sources.python import GeneratorSource


@dataclass
class ReferenceModelSource(GeneratorSource):
    kind = "reference"
    name: str = ""


def open_reference_source(spec: str, count: int, seed: int) -> Source:
    """Load the model named after ``ref:`` and wrap it as a source of ``count`` samples.

    A paired model (``task`` + ``translate``) becomes a :class:`gen_eval.sources.task.PairedModelSource`
    answering the first ``count`` test inputs of its task.
    """
    from reference_models import checkpoint_hash, get_entry, load_model

    name = spec.partition(":")[2]
    try:
        get_entry(name)
        model = load_model(name)
    except (KeyError, FileNotFoundError) as exc:
        raise GenEvalError(f"{spec}: {exc.args[0]} (see gen-eval models)") from None
    # The model file's source is part of the key too: a change to sample() must not reuse old features.
    code = Path(inspect.getfile(type(model))).read_bytes()
    key = f"ref:{name}:{checkpoint_hash(name)}:{hashlib.sha256(code).hexdigest()}:{seed}:{count}"
    from gen_eval.sources.task import is_paired_model, open_paired_model
    from gen_eval.sources.translation import is_translation_model, open_translation_model

    if is_translation_model(model):  # unpaired (issue 23): inputs from another dataset, no targets
        return open_translation_model(spec, model, count, seed, key, name)
    if is_paired_model(model):  # image-to-image (issue 23): it answers its task's test inputs
        paired = open_paired_model(spec, model, count, seed, key, name)
        if model.faulty:
            paired.notes.append(f"deliberately faulty model: {model.faulty}")
        return paired
    digest = hashlib.sha256(key.encode()).hexdigest()
    source = ReferenceModelSource(
        spec=spec, model=model, count=count, seed=seed, content_hash=digest, name=name
    )
    if model.faulty:
        source.notes.append(f"deliberately faulty model: {model.faulty}")
    return source
