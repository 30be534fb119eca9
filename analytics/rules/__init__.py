"""Vectorised rules: arrays in, arrays out, no I/O.  One module per rule."""
