"""Cython twins of the hot codec paths; imported only by waystation.bundle.codec."""
