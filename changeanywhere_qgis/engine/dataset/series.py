"""A dataset sample that is a series of dates: dates 3..N's random events on the date before, each pair's change,
and the record's series entries.

Date 2 is the sample's pair exactly as a two-date dataset makes it (its streams, its s); each later date k draws its
events, s and noise from its own streams (``events.date_rngs``), so the same seed gives the same series on any worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..events import ChangeResult, change_mask, date_rngs, random_events
from ..io import series_pairs
from .job import CORRELATION_RANGE, DatasetSettings

DATE_STREAMS = ("events", "correlation", "sampler")


@dataclass
class LaterDate:
    """Date 3 and on of a series sample: its events on the date before, their mask, its s and its noise."""

    date: int
    result: ChangeResult
    mask: np.ndarray
    s: float
    rng: np.random.Generator


def _mask(pre: np.ndarray, post: np.ndarray, valid: np.ndarray, nodata: int) -> np.ndarray:
    mask = change_mask(pre, post, nodata=nodata)
    mask[~valid] = 255
    return mask


def later_dates(second_map: np.ndarray, valid: np.ndarray, seed: int, scheme, table, st: DatasetSettings) -> list[LaterDate]:
    """Dates 3..N, each one's random events applied to the date before (``second_map``: date 2's)."""
    out, labels = [], second_map
    for date in range(3, st.dates + 1):
        rngs = date_rngs(seed, date, DATE_STREAMS)
        result = random_events(labels, scheme, rngs["events"], nodata=scheme.nodata_code, table=table,
                               transition_probability=st.transition_probability, max_changed_fraction=st.max_changed_fraction)
        s = float(rngs["correlation"].uniform(*CORRELATION_RANGE))
        out.append(LaterDate(date, result, _mask(labels, result.post, valid, scheme.nodata_code), s, rngs["sampler"]))
        labels = result.post
    return out


def pair_masks(maps: list[np.ndarray], valid: np.ndarray, nodata: int) -> dict[tuple[int, int], np.ndarray]:
    """The change mask of every pair a series is written as (dates counted from 1)."""
    return {(a, b): _mask(maps[a - 1], maps[b - 1], valid, nodata) for a, b in series_pairs(len(maps))}


def _fraction(mask: np.ndarray) -> float:
    valid = np.count_nonzero(mask != 255)
    return float(np.count_nonzero(mask == 1) / valid) if valid else 0.0


def series_entries(second: ChangeResult, s: float, later: list[LaterDate], masks: dict) -> dict:
    """The record's keys of a series: every date's events, change since the date before and s; the pairs written."""
    dates = [(2, second, s)] + [(d.date, d.result, d.s) for d in later]
    last = len(dates) + 1
    return {
        "dates": last,
        "events": [{**e.to_dict(), "date": date} for date, result, _ in dates for e in result.events],
        "changed_fraction": _fraction(masks[(1, last)]),  # from T1 to TN
        "series": [{"date": date, "events": [e.to_dict() for e in result.events], "s": ds,
                    "changed_fraction": _fraction(masks[(date - 1, date)])} for date, result, ds in dates],
    }
