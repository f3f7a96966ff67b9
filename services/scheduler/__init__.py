"""The scheduler: places each new volume on a backend pool (Cinder's cinder-scheduler).

Modules:
    capacity       Cinder's capacity factors (thin/thick, reserved %, over-subscription)
    backend_state  pool states kept from the volume managers' capability reports
    backend_watch  one WatchCapabilities stream to every volume manager in the services table
    filters        AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter
    weighers       CapacityWeigher and Cinder's weight normalisation
    scheduling     the create-volume flow (ExtractSchedulerSpec -> ScheduleCreateVolume)
    manager_client one cached channel per volume manager, one method per remote call
    servicer       the gRPC edge
    main           wiring and ``serve``
"""
