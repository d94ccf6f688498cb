"""Data sources (demo, local, tushare), tushare-format normalisation and the market-data container."""
