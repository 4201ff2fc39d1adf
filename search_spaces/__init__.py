"""Search spaces: JSON-serialisable ``ArchSpec``s sampled by Optuna and rebuilt into models.

    space = create_search_space("cnn", max_stages=3)
    spec = space.sample(trial, in_channels=1, num_classes=10, image_size=28, prefix="cnn.")
    space.validate(spec)            # InvalidArchError for impossible combinations
    model = build_model(spec)       # from the spec alone, e.g. ArchSpec.from_json(attr)

Families: ``cnn`` (search_spaces/cnn.py) and ``vit`` (search_spaces/vit.py), imported (with
torch) on first use.
"""

from __future__ import annotations

from search_spaces._replay import ReplayTrial
from search_spaces.spec import (
    MAX_IMAGE_SIZE,
    ArchSpec,
    SearchSpace,
    build_model,
    create_search_space,
    list_search_spaces,
    register_search_space,
)

__all__ = [
    "MAX_IMAGE_SIZE",
    "ArchSpec",
    "ReplayTrial",
    "SearchSpace",
    "build_model",
    "create_search_space",
    "list_search_spaces",
    "register_search_space",
]
