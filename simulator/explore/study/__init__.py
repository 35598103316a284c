"""Studies: the study file (``spec``), running its sweeps and checks (``run``,
``calib``), and the page (``page``, ``plots``)."""
