# Developer tasks. `make docs` builds the docs site exactly as CI does: any Sphinx warning
# (a broken link or reference, a docstring Sphinx cannot parse) is an error, and then every
# example in the docs is run by the doctest builder.

PYTHON ?= python
SPHINXBUILD ?= $(PYTHON) -m sphinx
SPHINXOPTS ?= -W --keep-going -n
DOCS_BUILD ?= docs/_build

.PHONY: docs docs-html docs-doctest docs-clean

docs: docs-html docs-doctest
	@echo "docs: open $(DOCS_BUILD)/html/index.html"

docs-html:
	$(SPHINXBUILD) -b html $(SPHINXOPTS) -d $(DOCS_BUILD)/doctrees docs $(DOCS_BUILD)/html

docs-doctest: docs-html
	$(SPHINXBUILD) -b doctest $(SPHINXOPTS) -d $(DOCS_BUILD)/doctrees docs $(DOCS_BUILD)/doctest

docs-clean:
	rm -rf $(DOCS_BUILD) docs/generated
