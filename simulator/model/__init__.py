"""Layer 3, the model of work: timing rules, work plans, transfers, feature-map progress,
the energy ledger, static power, the throughput bound and the analytic estimate. Pure
data and arithmetic, no event loop; the engine and the analytic fidelity both build on
it. Imports the hardware, mapping and the core."""
