"""Stage 1, sources: where market data comes from (demo, local tushare-format files, the tushare API,
akshare, yfinance).

Every source implements :class:`stockml.sources.base.DataSource` and returns canonical frames
(:func:`stockml.sources.tushare_format.to_canonical` is the one place tushare's names and formats are
normalised; :mod:`.akshare_format` and :mod:`.yfinance_source` map those libraries' frames onto the same
columns). Only ``tushare_source``, ``akshare_source`` and ``yfinance_source`` touch the network, each
through a client it is given or imports lazily; ``local`` reads files.
"""
