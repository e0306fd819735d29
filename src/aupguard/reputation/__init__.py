"""reputation stage."""
