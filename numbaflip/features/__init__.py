"""Label-free feature maps: where most of a certified radius comes from.

numbaflip's certificates hold for features that never saw the training labels (math.md §1).
This subpackage provides such a map for images:

- :class:`ContrastiveEncoder` — a small CNN trained with a SimCLR-style contrastive loss on
  augmented views of the images alone (its ``fit`` takes no labels).  Needs the optional extra
  ``pip install 'numbaflip[features]'`` (PyTorch, CPU is enough); importing this module does
  not.

For tabular data or text embeddings, take a label-free map from scikit-learn — ``PCA``,
``FastICA``, ``RBFSampler`` — fitted with ``fit(X)`` only (docs/features.md); it does not need to
be written again here.
"""
from ._images import check_images
from .contrastive import ContrastiveEncoder

__all__ = ["ContrastiveEncoder", "check_images"]
