"""Interactive Brokers: the TWS API wire format, a fake gateway, the adapter (ib_async)."""
