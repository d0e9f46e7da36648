"""Perceiver IO building blocks as Keras 3 layers."""
