"""The harness version, recorded in every result record and on the board."""

__version__ = "0.1.0"
