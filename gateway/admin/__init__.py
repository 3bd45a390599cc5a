"""The admin API and the operators' live view, served on the metrics/admin listener."""
