"""FX-Cortex sources: a module per publisher, each a plugin of the ``fxcortex`` entry points."""
