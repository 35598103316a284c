"""Layer 0, the common core: configuration loading and validation, errors, interrupts,
forked workers, fault hooks and output folders. Imports nothing else of redysim; every
other layer (``workloads`` and ``mapping`` included) may import it."""
