"""Search-space options (``[search.<space>]`` tables), checked before anything is created.

Two checks, both raising :class:`~nas.errors.ConfigError` with one line naming the key:

* :func:`check_option_values` when the config is read (cheap, no torch): every option is a
  value or a flat list of values (no nested table), finite, printable, and inside bounds that
  catch typos and hostile configs: integers at most :data:`MAX_OPTION_INT`, stage and depth
  counts at most :data:`MAX_COUNT`, lists at most :data:`MAX_CHOICES` long.
* :func:`configured_spaces` when a search starts, before its study, database or artifact
  folder exists: each space is built from its options (the family's own checks: empty
  lists, zero widths, ``min_stages > max_stages``...), an unknown option is named with the
  known ones; :func:`check_images` refuses images too small for any architecture.
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping, Sequence

    from search_spaces import SearchSpace

MAX_OPTION_INT = 4096  # widths, dims, patch sizes: 10**8 is a typo, not a setting
MAX_COUNT = 64  # stages, depths (blocks per stage, transformer layers)
MAX_CHOICES = 64  # entries in one choice list
MIN_IMAGE_SIZE = 4  # pixels a side: a 1x1 image leaves an architecture nothing to learn from
_COUNT_WORDS = ("stages", "depth")


def _limit(key: str) -> int:
    return MAX_COUNT if any(word in key for word in _COUNT_WORDS) else MAX_OPTION_INT


def check_option_values(space: str, table: Any) -> None:
    """The shape and bounds of one ``[search.<space>]`` table (family-independent)."""
    if not isinstance(table, dict):
        raise ConfigError(
            f"search.{space} must be a table of options ([search.{space}]), got {table!r}"
        )
    for key, value in table.items():
        where = f"search.{space}.{key}"
        if isinstance(value, dict):
            raise ConfigError(f"{where} is a table; search-space options are values or lists")
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_CHOICES:
            raise ConfigError(f"{where} has {len(values)} choices; at most {MAX_CHOICES}")
        for item in values:
            if isinstance(item, dict | list):
                raise ConfigError(f"{where} must be a value or a flat list of values")
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{where} must be finite, got {item!r}")
            if isinstance(item, str) and not item.isprintable():
                raise ConfigError(f"{where} must not contain control characters, got {item!r}")
            if isinstance(item, int | float) and not isinstance(item, bool):
                if item > _limit(key):
                    raise ConfigError(f"{where}: {item} is larger than the limit {_limit(key)}")


def _options_of(space: SearchSpace) -> list[str]:
    params = inspect.signature(type(space).__init__).parameters.values()
    return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def configured_spaces(
    names: Sequence[str], options_by_space: Mapping[str, Mapping[str, Any]]
) -> dict[str, SearchSpace]:
    """The spaces ``names`` of a ``[search]`` section (and every one given options, which are
    checked too), each built from its ``[search.<space>]`` options."""
    from search_spaces import create_search_space

    spaces: dict[str, SearchSpace] = {}
    for name in dict.fromkeys((*names, *options_by_space)):
        options = dict(options_by_space.get(name, {}))
        try:
            spaces[name] = create_search_space(name, **options)
        except ConfigError as exc:
            raise ConfigError(f"[search.{name}] {exc}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            known = _options_of(create_search_space(name))
            unknown = sorted(set(options) - set(known))
            if unknown:
                raise ConfigError(
                    f"unknown option search.{name}.{unknown[0]}; known options: {known}"
                ) from None
            raise ConfigError(f"[search.{name}] options are unusable: {exc}") from None
    return {name: spaces[name] for name in names}


def check_images(image_size: int, label: str = "data") -> None:
    """Refuse images smaller than :data:`MIN_IMAGE_SIZE` pixels a side, before a study."""
    if image_size < MIN_IMAGE_SIZE:
        raise DataError(
            f"{label}: images are {image_size}x{image_size} pixels; econas needs at least "
            f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (set data.resolution to upscale)"
        )
