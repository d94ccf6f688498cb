"""Stage 2, store: table schemas, the validation gate, the parquet lake and the ingest steps.

Nothing reaches the lake without passing :mod:`stockml.store.validation`; :mod:`stockml.store.lake` is the
only module that reads or writes the lake's files.
"""
