"""Volume actions (``POST /volumes/{id}/action``): VolumeActionService (servicer), its
operations, the bodies' schemas and the in-place retype check."""
