"""QoS specs: Cinder's /qos-specs."""
