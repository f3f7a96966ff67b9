"""A volume's placement (a cindermesh extension, ``docs/placement.md``): PlacementService."""
