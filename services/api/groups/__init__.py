"""Generic volume groups: group types and specs, groups, group snapshots."""
