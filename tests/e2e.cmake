# Tests owned by the e2e module.
