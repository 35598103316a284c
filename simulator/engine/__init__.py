"""Layer 4, the discrete-event engine: ``chip`` composes the SimPy components of
``components/`` (one hardware block a module) over a work plan; ``trace`` records a
Chrome trace. Imports the model and below."""
