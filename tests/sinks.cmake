# Tests owned by the sinks module.
