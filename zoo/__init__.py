"""The perceiver-keras model zoo."""
