"""stockml: point-in-time daily forecasting of Chinese A-shares (the library; never imports Prefect)."""
