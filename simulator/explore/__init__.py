"""Layer 7, exploration: design-space sweeps on Dask (``sweep/``) and studies that run
sweeps and render a page (``study/``, built on ``sweep``)."""
