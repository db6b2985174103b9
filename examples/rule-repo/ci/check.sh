#!/bin/sh
# The same checks for any CI (GitLab, Jenkins, a pre-commit hook): run from the
# repository's root; exits non-zero on the first failing step.
set -e
vigil check -c vigil.yaml
vigil test tests/*.test.yaml
