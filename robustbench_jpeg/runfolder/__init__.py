"""The run folder: what its files hold and the typed records behind them (docs/run-format.md)."""
