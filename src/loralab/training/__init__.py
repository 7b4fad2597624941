"""Training: batching and the loop."""
