"""Design-space sweeps: the sweep file and its points (``spec``), their steps as a Dask
graph (``graph``, ``tasks``), the cluster it runs on (``cluster``, ``preload``), running
it (``run``), the table (``table``) and the plots (``plots``)."""
