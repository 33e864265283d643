"""Experiment configs: each module's `get_config(arg)` returns one ConfigDict."""
