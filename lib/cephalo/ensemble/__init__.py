"""Ensembles: members (variants x TTA views) predicted out-of-fold and on a test stack,
fused by fixed or learned rules scored honestly on OOF, and written as submissions."""
