"""``spreadwatch replay``: the exit rules over recorded leg quotes, filled at the mark.

- :mod:`~service.replay.rows`: the ticks file's rows and fields;
- :mod:`~service.replay.stamps`: their timestamps;
- :mod:`~service.replay.engine`: the positions' watches over those rows, and the
  exits and summary they give.
"""

from service.replay.engine import Replay, exit_record, write_summary
from service.replay.rows import HEADER, Summary, read_ticks

__all__ = ["HEADER", "Replay", "Summary", "exit_record", "read_ticks", "write_summary"]
