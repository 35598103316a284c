"""redysim: discrete-event simulator of ReRAM PIM CNN accelerators (static 8-bit vs ReDy)."""
