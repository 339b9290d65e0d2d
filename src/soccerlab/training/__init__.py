"""Training: the trainer flow, its callbacks, warm starts and validation loss."""
