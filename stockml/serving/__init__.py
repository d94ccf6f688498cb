"""Stage 7, serving: inputs and target dates of a forecast, data quality and drift, the daily report."""
