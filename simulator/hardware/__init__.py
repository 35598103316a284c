"""Layer 1, the hardware: the YAML schema (``spec``), derived counts (``derive``),
``include:`` files (``include``) and the ``redysim hw`` report (``report``). On the core
only.

``load_hardware`` and ``HardwareSpec`` are the public entry points, re-exported here.
"""

from simulator.hardware.spec import HardwareSpec, load_hardware

__all__ = ["HardwareSpec", "load_hardware"]
