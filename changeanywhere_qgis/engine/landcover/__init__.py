"""Land-cover classes: the model's scheme (codes, names, colours) and remaps from other schemes into it."""

from .remaps import builtin_remaps, load_remap
from .scheme import ClassScheme, LandCoverClass

__all__ = ["ClassScheme", "LandCoverClass", "builtin_remaps", "load_remap"]
