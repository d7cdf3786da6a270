# tests/sanitize: the unit and CLI tests once more, on an ASan + UBSan build of the tree.
TESTS += tests/sanitize/run-sanitizers.sh
EXTRA_DIST += tests/sanitize/run-sanitizers.sh
clean-local: clean-sanitize-build
clean-sanitize-build:
	-rm -rf tests/sanitize/build
.PHONY: clean-sanitize-build
