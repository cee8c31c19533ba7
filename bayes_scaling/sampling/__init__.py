"""Sampling: settings, NUTS through nutpie or PyMC, the compiled-model cache, diagnostics."""
