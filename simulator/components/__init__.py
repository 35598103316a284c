"""SimPy models of the chip's hardware blocks, one module each.

- ``adc_pool``: the ADC pool shared by the crossbars of an IMA;
- ``crossbar_lane``: a row block's crossbars with their DACs, S+H, registers and
  shift-and-add, executing row-block MVMs (group or plane fidelity);
- ``edram_buffer``: the bounded input buffers in the tiles' eDRAM (producer stalls);
- ``noc``: on-chip network links and the transfers of output rows between tiles
  (and the off-chip links between chips);
- ``digital_unit``: the tile's max-pool, shift-and-add (residual add, average pool)
  units executing non-weight nodes.

``simulator.engine.ChipSimulation`` composes them.
"""
