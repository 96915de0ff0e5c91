"""FX-Cortex analytics: one module per analytic, each a plugin of the ``fxcortex`` group."""
