"""Interactive Brokers: the adapter (:mod:`brokers.ib.broker`, ``IbBroker`` on ib_async,
split by concern), IB's codes, the TWS API wire format, and a fake gateway
(:mod:`brokers.ib.fake`) to try and test it with."""
