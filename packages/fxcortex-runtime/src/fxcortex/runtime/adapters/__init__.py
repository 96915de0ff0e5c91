"""Adapters: the stores of each profile behind the ports of `fxcortex.core.ports`."""
