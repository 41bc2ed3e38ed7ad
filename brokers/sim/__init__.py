"""The simulated market and broker: spreadwatch without a broker account."""
