"""Sphinx configuration of the restorekit docs site.

Build with ``make docs`` from the repository root. Every reference page (config keys,
registries, model zoo, configs, command line) is generated from the code at build time by the
local extension in ``_ext/restorekit_docs`` into ``generated/``, so it cannot drift.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # document the checkout even where an older restorekit is installed

# The docs describe restorekit itself: plugins that happen to be installed where the docs are
# built must not change the registry listings or the model zoo.
os.environ["RESTOREKIT_DISABLE_PLUGINS"] = "1"

import restorekit  # noqa: E402  (a real import failure of the core must fail the build)

project = "restorekit"
author = "the restorekit authors"
copyright = "the restorekit authors, MIT licence"
release = restorekit.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "restorekit_docs",
]
try:  # a copy button on code blocks when the package is there; the build does not need it
    import sphinx_copybutton  # noqa: F401

    extensions.append("sphinx_copybutton")
    copybutton_prompt_text = r">>> |\.\.\. |\$ "
    copybutton_prompt_is_regexp = True
except ImportError:
    pass

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# generated/ holds fragments that pages pull in with {include}; they are not pages themselves.
exclude_patterns = ["_build", "generated", "_data", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# --------------------------------------------------------------------------- MyST
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3

# --------------------------------------------------------------------------- autodoc
autodoc_typehints = "description"
autodoc_typehints_description_target = "all"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_class_signature = "mixed"
# torch's Module.forward docstring is not restorekit's: an undocumented forward stays out.
autodoc_inherit_docstrings = False
# Only optional extras may be mocked; the core (torch, kornia, cv2, ...) must really import.
autodoc_mock_imports = ["onnx", "onnxruntime", "onnxscript", "timm"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# Broken references inside restorekit fail the build. Without intersphinx (the build is
# offline), names of other packages and of the standard library cannot resolve: those, and
# only those, are ignored.
nitpicky = True
_EXTERNAL = (
    r"torch(\..*)?|nn\..*|Tensor|np\..*|numpy(\..*)?|cv2(\..*)?|kornia(\..*)?|yaml(\..*)?|rich(\..*)?"
    r"|safetensors(\..*)?|onnx(\..*)?|onnxruntime(\..*)?|argparse\..*|pathlib\..*|Path|typing\..*|collections\..*"
    r"|contextlib\..*|importlib\..*|dataclasses\..*|logging\..*|enum\..*|os\..*|io\..*|abc\..*|concurrent\..*"
    r"|threading\..*|multiprocessing\..*|subprocess\..*|types\..*|datetime\..*|random\..*|inspect\..*|re\..*"
    r"|Any|Callable|Iterable|Iterator|Mapping|Sequence|Generator|Literal|TypeVar|ParamConvention|Spec|FolderKind|Progress|T"
    r"|int|float|str|bool|bytes|dict|list|tuple|set|frozenset|object|type|None|NoneType|Ellipsis"
    r"|Exception|ValueError|TypeError|KeyError|RuntimeError|OSError|FileNotFoundError|ImportError"
    r"|PermissionError|MemoryError|ArithmeticError|IndexError|AttributeError|NotImplementedError"
    r"|optional|default|callable|array|ndarray|module|Console"
)
_PRIVATE = r"(.*\.)?_[A-Za-z]\w*"  # private helpers appear in type hints but are not documented
nitpick_ignore_regex = [(r"py:.*", _EXTERNAL), (r"py:.*", _PRIVATE)]

# --------------------------------------------------------------------------- doctest
doctest_global_setup = f"""
import os
import pathlib
os.environ["RESTOREKIT_DISABLE_PLUGINS"] = "1"
import torch
torch.manual_seed(0)
ROOT = pathlib.Path({str(ROOT)!r})  # the repository, for examples that read configs/
"""
# Exception messages are compared too (Sphinx's default ignores them): a changed error text
# is a stale example.
import doctest  # noqa: E402

doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.DONT_ACCEPT_TRUE_FOR_1
# Only the examples written for the doctest builder run; ``>>>`` lines in reference pages
# that need a trained model or data stay illustrations.
doctest_test_doctest_blocks = "default"

# --------------------------------------------------------------------------- HTML
html_theme = "furo"
html_title = f"restorekit {release}"
html_static_path = ["_static"]
html_css_files = ["restorekit.css"]
html_math_renderer = "mathml"  # restorekit_docs: equations as MathML, no JavaScript or CDN
html_theme_options = {"navigation_with_keys": True}
html_show_sourcelink = False
suppress_warnings: list[str] = []
