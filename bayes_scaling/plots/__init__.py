"""Figures: each function accepts ``ax=`` (where it draws one panel) and returns the figure."""
