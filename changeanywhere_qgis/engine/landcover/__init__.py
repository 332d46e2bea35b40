"""Land-cover classes: the model's scheme (codes, names, colours) and remaps from other schemes into it."""

from .remaps import builtin_remap, builtin_remaps, codes_from_colours, load_remap, mask_colours, read_remap_file
from .scheme import ClassScheme, LandCoverClass

__all__ = ["ClassScheme", "LandCoverClass", "builtin_remap", "builtin_remaps", "codes_from_colours", "load_remap", "mask_colours",
           "read_remap_file"]
