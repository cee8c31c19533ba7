"""Sphinx configuration of the bayes_scaling documentation (the toolchain PyMC and ArviZ use)."""

from __future__ import annotations

import os

import bayes_scaling

project = "bayes_scaling"
author = "bayes_scaling developers"
copyright = "2026, bayes_scaling developers"
release = bayes_scaling.__version__
version = release

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
]

# Pages are MyST Markdown; pages with code cells are executed on every build, so the outputs
# shown are the outputs of the code shown.  A cell that raises fails the build.
source_suffix = {".md": "myst-nb", ".rst": "restructuredtext"}
nb_execution_mode = os.environ.get("BAYES_SCALING_DOCS_EXECUTE", "force")
# The pages' kernels inherit this process's environment: a non-interactive MPLBACKEND (CI exports
# Agg) would make them draw their figures into nothing, so they get IPython's inline backend.
os.environ.pop("MPLBACKEND", None)
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints", "design/README.md"]
templates_path = []
html_theme = "pydata_sphinx_theme"
html_title = "bayes_scaling"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
suppress_warnings = ["mystnb.unknown_mime_type"]
