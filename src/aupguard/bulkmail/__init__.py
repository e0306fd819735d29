"""bulkmail stage."""
