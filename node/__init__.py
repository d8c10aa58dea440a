"""waystation: a delay-tolerant store-and-forward BPv7 bundle node."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("waystation")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
