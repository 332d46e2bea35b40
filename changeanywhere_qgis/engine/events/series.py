"""A series of dates: how many there may be, each later date's own random streams, drawn polygons split by a date field.

Date 1 is the pre-event map; each later date k (2..N) applies its own events to date k-1's map. Date 2 uses the
random streams a two-date sample has always used (so a series of 2 dates is today's sample, byte for byte); every
later date draws from new, independent streams of the same seed, so adding a date never changes the earlier ones.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .polygons import _read_vector  # this room's reader: the same files, layers and messages as the class field's

MAX_DATES = 12  # a year of monthly dates; each date costs a full sampling run
DATE_STREAM_OFFSET = 1000  # date k's streams are seeded [seed, 1000 + k, i]: never [seed, i], the two-date streams


def check_dates(dates) -> int:
    """The number of dates, a whole number from 2 to MAX_DATES."""
    if isinstance(dates, bool) or not isinstance(dates, (int, np.integer)) or not 2 <= dates <= MAX_DATES:
        raise InputError(f"The number of dates must be a whole number from 2 (a change pair) to {MAX_DATES}, got {dates!r}.")
    return int(dates)


def date_rngs(seed: int, date: int, names: tuple[str, ...]) -> dict[str, np.random.Generator]:
    """Independent random streams of a later date (3 and on) of the sample seeded ``seed``, one per name."""
    if date < 3:
        raise ValueError("dates 1 and 2 use the sample's own streams")
    return {name: np.random.default_rng([int(seed), DATE_STREAM_OFFSET + int(date), i]) for i, name in enumerate(names)}


def _date_of(value, where: str, dates: int) -> int:
    if isinstance(value, np.generic):  # a plain number in the message: numpy 2 writes np.int32(1) for repr(np.int32(1))
        value = value.item()
    valid = f"a whole number from 2 to {dates} (the date at which the polygon's change appears; date 1 is the pre-event map)"
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        raise InputError(f"{where} has no date (the date field is empty). Fill it with {valid}.")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text) if text else None
        except ValueError:
            value = None
        if value is None:
            raise InputError(f"{where} has the date {text!r}, which is not a number. Give {valid}.")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not float(value).is_integer() or not 2 <= value <= dates:
        raise InputError(f"{where} has the date {value!r}, outside the series. Give {valid}.")
    return int(value)


def polygons_by_date(vector, date_field: str, dates: int, layer=None) -> dict[int, object]:
    """The change polygons split by their date field: {date: GeoDataFrame of that date's polygons} for dates 2..N.

    A date no polygon names maps to None (nothing changes at that date). Every feature's date is checked first:
    an empty, non-number, fractional or out-of-range date is refused, naming the feature and the valid range.
    """
    gdf, name = _read_vector(vector, layer)
    fields = [c for c in gdf.columns if c != gdf.geometry.name]
    matches = [f for f in fields if f == date_field] or [f for f in fields if str(f).lower() == str(date_field).lower()]
    if len(matches) != 1:
        raise InputError(f"The change polygons in {name} have no date field {date_field!r}; their fields are: "
                         f"{', '.join(map(str, fields)) or 'none'}. Choose the field that holds each polygon's date "
                         f"(2 to {dates}), or add such a field.")
    column = gdf[matches[0]]
    per_feature = [_date_of(v, f"Feature {fid} of {name}", dates) for fid, v in zip(gdf.index, column.values)]
    by_date = np.asarray(per_feature)
    return {k: (gdf[by_date == k] if (by_date == k).any() else None) for k in range(2, dates + 1)}
