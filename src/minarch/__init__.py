"""minarch: the smallest network that reliably learns an image-classification task."""

__version__ = "0.1.0"
