"""Layer 5, one run: the scenario file (``scenario``), the flow from scenario to
pipeline results (``flow``), one pipeline's simulation (``simulate``), the run-size
estimate (``estimate``), the artifact cache (``cache``) and the per-image energy model
(``image_energy``). Named ``runner`` because ``simulator.run`` is the public function."""
