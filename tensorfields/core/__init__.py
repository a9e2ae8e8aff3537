"""Functional ops (tensors in, tensors out): a PyTorch reference for each, native where built."""

from tensorfields.core.native import native_available

__all__ = ["native_available"]
