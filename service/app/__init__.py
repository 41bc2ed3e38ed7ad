"""The application: the open positions, their evaluation, and the loop that runs it all.

- :mod:`~service.app.book`: the position book (the watches and stored positions,
  their legs' quotes, what they imply the account holds);
- :mod:`~service.app.monitor`: quotes in, the rules, close decisions out;
- :mod:`~service.app.readmodel`: what happened, for health, metrics and alerts;
- :mod:`~service.app.runner`: start-up, and the TaskGroup (or the step) that runs
  evaluation, the order desk and housekeeping beside the feed;
- :mod:`~service.app.assembly`: the parts built and wired together.

The order desk (:mod:`service.orders`) owns everything of an order's life.
"""
