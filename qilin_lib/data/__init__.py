"""Data stage: real-source loaders -> uniform records, KG -> text, dedup, ChiMed builders, tiny KB."""
