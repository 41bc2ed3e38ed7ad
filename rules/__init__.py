"""The exit rules of spreadwatch: pure domain code.

Nothing here performs I/O, reads the clock or imports the service, the brokers,
asyncio, SQLAlchemy or a logger. ``now`` always arrives as an argument.
"""
