"""Inception-v4, Inception-ResNet-v1 and Inception-ResNet-v2 (Szegedy et al., 2016) in Keras 3."""
