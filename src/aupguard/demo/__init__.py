"""`aupguard demo`: the whole system on embedded defaults and generated sample data."""
