"""Convergence-layer adapters: sans-I/O protocol cores plus thin asyncio adapters."""
