"""Node implementations, one package or module per node family."""
