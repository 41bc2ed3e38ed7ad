"""The ``spreadwatch`` command line: entry points only (``main``), each command a module.

The commands parse and check their flags, then ask :mod:`service.bootstrap` for
the parts they drive; none of them builds a broker or a store itself.
"""
