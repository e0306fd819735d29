"""aupguard: acceptable-use enforcement for ISPs and hosting providers."""

__version__ = "0.1.0"
