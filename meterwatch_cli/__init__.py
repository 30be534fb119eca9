"""The command line: the top layer, above every other package."""
