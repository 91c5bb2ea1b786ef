"""biotag: fast biomedical text mining on CPU."""
__version__ = "0.1.0"
