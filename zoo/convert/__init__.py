"""Conversion of released Perceiver checkpoints into zoo models."""
