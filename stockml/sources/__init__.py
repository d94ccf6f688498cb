"""Stage 1, sources: where market data comes from (demo, local tushare-format files, the tushare API).

Every source implements :class:`stockml.sources.base.DataSource` and returns canonical frames
(:func:`stockml.sources.tushare_format.to_canonical` is the one place tushare's names and formats are
normalised). Only ``tushare_source`` touches the network; ``local`` reads files.
"""
