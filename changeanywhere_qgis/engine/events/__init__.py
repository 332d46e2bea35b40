"""What changes: events drawn as polygons or simulated at random, transition tables, the change mask and its polygons."""

# First: the polygons' CRSs go through pyproj (geopandas), which must find PROJ's data before its first use.
from .proj_data import ensure_proj_data

ensure_proj_data()

from .change import EVENT_KINDS, ChangeEvent, ChangeResult, change_mask
from .polygons import events_from_polygons
from .random_objects import random_events
from .series import MAX_DATES, check_dates, date_rngs, polygons_by_date
from .transitions import DEFAULT_TABLE_PATH, TransitionTable, builtin_tables, default_table, load_table
from .vectorise import area_m2, change_polygons, change_polygons_by_window, write_change_polygons

__all__ = ["area_m2", "MAX_DATES", "check_dates", "date_rngs", "polygons_by_date", "DEFAULT_TABLE_PATH", "ensure_proj_data", "EVENT_KINDS", "ChangeEvent", "ChangeResult", "TransitionTable", "builtin_tables", "change_mask",
           "change_polygons", "change_polygons_by_window", "default_table", "events_from_polygons", "load_table", "random_events", "write_change_polygons"]
