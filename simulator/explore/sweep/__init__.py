"""Design-space sweeps: the sweep file and its points (``spec``), running them on Dask
(``run``), the table (``table``) and the plots (``plots``)."""
