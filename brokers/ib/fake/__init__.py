"""A fake IB Gateway, for trying spreadwatch's Interactive Brokers path with no IB
account and for testing it: the TWS API over TCP, driven by the simulated market.

It is a trial and test tool, not part of the service: ``spreadwatch fake-gateway``
(:mod:`service.cli.fake_gateway`) runs it for users, and the tests run the adapter
(:mod:`brokers.ib.broker`) and the daemon against it. Unmodified ``ib_async``
connects to it as to IB Gateway or TWS. It answers what spreadwatch asks of IB,
from the same :class:`brokers.sim.market.SimMarket` as ``spreadwatch run``:

- the handshake, answering the highest API version both sides speak (157 to
  176: ib_async 2.1 gets 176, IB's ibapi 9.81 157), every message written for
  it (:mod:`~brokers.ib.fake.versions`),
  ``startApi`` (next order id and the managed account, a paper ``DU`` id by
  default), and the requests ``IB.connectAsync`` makes: positions, open and
  completed orders, account updates, executions;
- ``reqContractDetails`` for stocks and options of the market's underlyings
  (conIds are stable for the gateway's life, across connections); anything
  else gets IB's error 200;
- ``reqMarketDataType`` and ``reqMktData``: bid and ask with sizes
  (tickPrice, then tickSize) and the bid, ask and model Greeks
  (tickOptionComputation: implied vol, delta, price, underlying; gamma, vega
  and theta as IB's "not computed" sentinel -2) on each market step, about
  every 250 ms of the clock; live, or delayed (tick types 66/67, 69/70,
  80/81/83) when only delayed data is on (IB's errors
  354 and 10167); ``cancelMktData``;
- the market data line limit: the ``line_limit + 1``-th line gets error 101;
- ``reqCurrentTime`` (its clock's time, in whole seconds as IB's: a daemon on IB
  runs on it), ``reqIds``; a client id already connected gets 326.

- ``placeOrder`` of limit orders, combos (BAG) by conId or single options:
  kept and filled by a :class:`brokers.sim.broker.SimBroker` against the
  market's quotes (when the limit covers the natural debit), with
  ``openOrder``, ``orderStatus``, ``execDetails`` for the BAG and for each
  leg, and ``commissionReport``; ``orderRef`` is free text, as at IB (reused,
  empty); a limit off the 0.01 increment gets IB's 110; a ``placeOrder`` of an
  order id already working modifies its limit; a what-if gets its margin;
  ``cancelOrder`` (IB's 202; 10147 for an order it does not know, 10148 for
  one done); ``reject`` makes the next orders fail (201);
- ``reqOpenOrders`` / ``reqAllOpenOrders``, ``reqExecutions`` and
  ``reqPositions`` answer from what the gateway keeps.

Its account, orders and executions live as long as the gateway, across
client connections, as with IB: a client that dies and comes back finds the
truth there. Events that happen while no client is connected are not sent
(IB's are not either); ``reqExecutions`` tells them.

Faults, for tests and for trying failure handling by hand: :meth:`FakeGateway.drop`
(every connection closed), :meth:`FakeGateway.say` (an error code to every client, e.g.
1100/1101/1102), ``bad_quotes`` (option bids and asks sent as -1 or NaN),
``delayed_only``, ``reject`` (every new order rejected with 201), ``read_only``
(IB Gateway's read-only API: 321 on every placeOrder and cancel),
``inactive_then_submitted`` (a new order Inactive for a while, then Submitted),
``line_limit``, and ``broker.fill_size`` (partial fills).

Its parts, mixins over one gateway (:mod:`brokers.ib.fake.base`):
:mod:`~brokers.ib.fake.server` (sockets, the handshake, sessions, dispatch, the
faults), :mod:`~brokers.ib.fake.versions` (the versions spoken, each message's
fields by version), :mod:`~brokers.ib.fake.instrument` (what a conId stands for),
:mod:`~brokers.ib.fake.contracts` (the instruments by conId, contract details),
:mod:`~brokers.ib.fake.market_data` (lines, quotes and ticks),
:mod:`~brokers.ib.fake.orders` (place, modify, cancel, executions, statuses,
open orders) and :mod:`~brokers.ib.fake.account` (the session's start,
positions, account updates, the current time, ids).
"""

from brokers.ib.fake.instrument import Instrument
from brokers.ib.fake.server import FakeGateway

__all__ = ["FakeGateway", "Instrument"]
