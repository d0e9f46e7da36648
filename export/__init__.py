"""SavedModel and TFLite export with verification against the Keras model."""
