"""The one owner of a close order's life, from a decision to its last event.

- :mod:`~service.orders.closing`: the closing combo order, and the close-only check
  at the gateway boundary;
- :mod:`~service.orders.intents`: decisions queued for the owner, taken in batches;
- :mod:`~service.orders.policy`: which decisions may go (regular hours, positions
  left alone after repeated refusals, one replacement at a time);
- :mod:`~service.orders.working`: the orders working at the broker, repriced on the
  schedule;
- :mod:`~service.orders.execute`: executing a batch: live (intents, orders placed,
  recorded as sent) or dry run (the decision recorded, nothing sent);
- :mod:`~service.orders.events`: the broker's order events into the store, retried
  while the database is away;
- :mod:`~service.orders.reconcile`: the store's live orders and the account's holdings
  against the broker's, on start;
- :mod:`~service.orders.desk`: :class:`~service.orders.desk.OrderDesk`, which drives
  them: batches to the executor and their outcomes, events to the store and then to
  the exit states.

Nothing here imports the application (:mod:`service.app`): what the desk needs of the
position book and of the read model is in :mod:`~service.orders.needs`.
"""
