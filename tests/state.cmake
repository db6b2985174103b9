# Tests owned by the state module.
