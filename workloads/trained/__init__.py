"""The CNNs redysim trains on scikit-learn's digits (``digits``, ``resnet_digits``) and
their on-disk store (``store``)."""
