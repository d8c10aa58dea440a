"""Cython twins of hot paths (the BPv7 codec, the store's record builder); see twins.py."""
