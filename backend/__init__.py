"""The reference backend: ingest (verify, deduplicate, store), billing and supply reports.

It uses :mod:`uploader` to verify envelopes and :mod:`mibs` for the read model; it never
imports :mod:`agent` or :mod:`collectors`.
"""
