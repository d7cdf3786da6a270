# tests/lint: static checks that must stay clean.
TESTS += tests/lint/run-cppcheck.sh tests/lint/run-shellcheck.sh
EXTRA_DIST += tests/lint/run-cppcheck.sh tests/lint/run-shellcheck.sh
