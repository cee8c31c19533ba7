"""The report: the whole analysis into one folder with a self-contained HTML page."""
