"""FX-Cortex sources: one module per publisher, each a plugin of the ``fxcortex`` entry-point group."""
