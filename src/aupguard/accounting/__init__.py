"""accounting stage."""
