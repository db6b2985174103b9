# Tests owned by the rules module.
