"""Software inventory collectors, one per packaging system, each chosen by its `is_enabled`."""
