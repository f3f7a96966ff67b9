"""The deployment and the api itself: InfoService (zones, services, pools) and VersionService."""
