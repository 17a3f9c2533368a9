"""Data I/O: the CL-Detection 2023 release format and a synthetic generator that writes it."""
