"""The pieces of benchmarks/generate.py (see its docstring for the market and the stream).

- market: underlyings, their price history, Black-Scholes-Merton prices and quotes;
- positions: making positions, writing positions.toml and reading it back;
- stream: the quoted contracts, each session's rows, and writing ticks.csv;
- check: the vectorised self-check of the rules on the rows;
- report: what generate.py prints.

The modules import the project's ``rules`` package: generate.py puts the
project's root on sys.path first, so that it runs from a checkout too.
"""
