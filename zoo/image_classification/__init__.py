"""Image classification with Perceiver IO."""
