"""smoothbot's chat service: platform adapters and the single worker. Knows nothing about tensors."""
