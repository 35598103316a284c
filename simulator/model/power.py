"""Static (leakage) power of the hardware a mapping powers on."""

from __future__ import annotations

IMA_PARTS = ("crossbar", "dac", "sample_hold", "adc", "ima_shift_add", "input_register",
             "ima_output_register")
TILE_PARTS = ("edram", "bus", "activation", "tile_shift_add", "maxpool", "tile_output_register")


def static_power_mw(hw, mapping, power_gating: bool = True, unit: str | None = None,
                    ) -> dict[str, float]:
    """Leakage in mW per component class for the powered hardware.

    With *power_gating*, only tiles that hold a crossbar of the mapping (and all their
    IMAs) and the routers serving them are on; otherwise every tile of every chip used.
    Of the on-line units only the one the pipeline's policy uses (*unit*:
    ``precision_select``, ``precision_detect`` or None) is on. Off-chip links count only
    when more than one chip is used (DESIGN.md §6).
    """
    tiles = mapping.used_tiles()
    chips = int(mapping.chips)
    n_tiles = len(tiles) if power_gating else chips * hw.chip.tiles
    n_routers = (len({t // hw.chip.tiles_per_router for t in tiles}) if power_gating
                 else chips * hw.chip.routers)
    n_imas = n_tiles * hw.tile.imas
    out: dict[str, float] = {}
    for comp in IMA_PARTS:
        per = hw.static_mw_of(comp)
        if per:
            out[comp] = per * getattr(hw.components.ima, comp).count * n_imas
    for comp in TILE_PARTS + ((unit,) if unit else ()):
        per = hw.static_mw_of(comp)
        if per:
            out[comp] = per * getattr(hw.components.tile, comp).count * n_tiles
    if hw.static_mw_of("router"):
        out["router"] = hw.static_mw_of("router") * n_routers
    if chips > 1:  # every chip has its own set of links (ISAAC: 4 HyperTransport links)
        out["offchip"] = chips * (hw.offchip.static_w * 1e3 + hw.static_mw_of("offchip"))
    return out
