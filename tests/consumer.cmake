# Tests owned by the consumer module.
