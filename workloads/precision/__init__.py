"""Activation precision: quantization (``quantize``), the policies (``policies``), the
capture of every group's bit planes inside the forward pass (``capture``) and the search
of ReDy's parameters (``tune``)."""
