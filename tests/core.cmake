# Tests owned by the core module.
