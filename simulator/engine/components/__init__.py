"""The chip's hardware blocks, one module each; every block owns its state and is given
its collaborators explicitly.

- ``server``: reservation calendars of the shared FIFO resources and the cut-through rule;
- ``crossbar_lane``: a row block's crossbars with their DACs, S+H, registers and
  shift-and-add, executing row-block MVMs (``LaneState`` for group fidelity,
  ``PlaneLane`` processes for plane fidelity);
- ``adc_pool``: the ADC pool shared by the crossbars of an IMA (fluid pool for group
  fidelity, ``simpy.Container`` for plane fidelity);
- ``edram_port``: a tile's eDRAM banks and eDRAM-to-IMA bus;
- ``digital_unit``: a tile's shift-and-add, activation, max-pool units and output
  register, and the non-weight nodes they execute;
- ``replica``: a layer replica's lanes and the merge of their partial sums (the tile
  output path);
- ``edram_buffer``: the bounded input buffers in the tiles' eDRAM (producer stalls);
- ``noc``: routes, ports and links of the on-chip network and the off-chip links;
- ``fanout``: produced rows to every tile that needs them, and the send windows.

``simulator.engine.chip.ChipSimulation`` composes them; ``simulator.model.timing`` holds the
service-time rules they share with ``simulator.model.analytic`` and ``simulator.model.bound``.
"""
