"""Volumes: VolumeService (servicer), its create flow, operations, bodies, listing, views."""
