"""Experiments: repeated runs, grids, the results store, tables and plots."""
