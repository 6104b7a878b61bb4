"""Training: labelled data readers, datasets and the training loop."""
