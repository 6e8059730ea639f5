"""The text kind's default features: hashed counts of character n-grams (no weights, no training).

scikit-learn's ``HashingVectorizer`` does the work (``analyzer="char_wb"``: n-grams of 1 to 3
characters inside word boundaries, so the first and last letters are marked), hashed into
256 non-negative buckets and L2-normalised; one more column holds log(1 + length), because
normalised counts alone forget how long a string is. Deterministic and the same on every
machine, so features are comparable across runs and cached like any other extractor's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gen_eval.features.base import FeatureExtractor

if TYPE_CHECKING:
    import torch

BUCKETS = 256  # FD bootstraps cost D^3 per resample: 256 keeps a run on names short
NGRAMS = (1, 3)


class CharNgramExtractor(FeatureExtractor):
    """Strings -> (N, 257) float32: hashed character 1-3-gram counts (L2-normalised) and log length."""

    name = "char-ngrams"
    input_kind = "text"
    description = "hashed character 1-3-gram counts of each string (scikit-learn), plus its log length"
    preprocessing = (
        f"HashingVectorizer(analyzer='char_wb', ngram_range={NGRAMS}, n_features={BUCKETS}, "
        "alternate_sign=False, norm='l2', lowercase=False) and log(1 + length)"
    )

    def __init__(self, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vectorizer = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=NGRAMS,
            n_features=BUCKETS,
            alternate_sign=False,
            norm="l2",
            lowercase=False,
        )

    @property
    def weights_fingerprint(self) -> str:
        import sklearn

        # The hash function (murmurhash3) is fixed in scikit-learn; the version is recorded anyway.
        return f"char-ngrams-v1-{BUCKETS}-sklearn{sklearn.__version__.split('.')[0]}"

    def extract(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        import numpy as np
        import torch

        from gen_eval.kinds.text import decode_rows

        strings = decode_rows(batch)
        counts = self._vectorizer.transform(strings).toarray().astype(np.float32)
        lengths = np.log1p(np.array([len(s) for s in strings], np.float32))[:, None]
        features = np.concatenate([counts, lengths], axis=1)
        return {"features": torch.from_numpy(features).to(self.device)}
