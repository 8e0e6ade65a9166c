"""Simulators of the three providers' reference servers (the project's embedded default).

Import the concrete simulators from their modules (``vmops.sim.crusoe``, ``vmops.sim.lambdalabs``,
``vmops.sim.nebius``; ``vmops.sim.nebius_cloud`` simulates Nebius' public API, the cloud dialect); this
package stays import-light so the CLI can start fast.
"""
