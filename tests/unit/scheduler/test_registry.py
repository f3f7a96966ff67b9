"""Filters, weighers and the weight handler by Cinder's names, and from the settings."""

from dataclasses import replace

import pytest

from cindermesh.settings import SchedulerSettings
from services.scheduler.filters import (
    AVAILABILITY_ZONE_FILTER,
    CAPABILITIES_FILTER,
    CAPACITY_FILTER,
    DEFAULT_FILTERS,
    DIFFERENT_BACKEND_FILTER,
    IGNORE_ATTEMPTED_HOSTS_FILTER,
    JSON_FILTER,
    RETRY_FILTER,
    SAME_BACKEND_FILTER,
)
from services.scheduler.registry import (
    FilterName,
    WeigherName,
    WeightHandlerName,
    filters_by_name,
    from_settings,
    weighers_by_name,
    weight_handler_by_name,
)
from services.scheduler.weighers import DEFAULT_WEIGHERS


def test_every_filter_by_its_name() -> None:
    assert filters_by_name(list(FilterName)) == (
        AVAILABILITY_ZONE_FILTER,
        CAPACITY_FILTER,
        CAPABILITIES_FILTER,
        SAME_BACKEND_FILTER,
        DIFFERENT_BACKEND_FILTER,
        JSON_FILTER,
        IGNORE_ATTEMPTED_HOSTS_FILTER,
        RETRY_FILTER,
    )
    for name in FilterName:
        assert [f.name for f in filters_by_name([name])] == [name.value]


def test_order_and_repeats_are_kept() -> None:
    names = ["CapacityFilter", "AvailabilityZoneFilter", "CapacityFilter"]
    assert [f.name for f in filters_by_name(names)] == names
    assert filters_by_name([]) == ()


def test_default_settings_are_cinders_defaults() -> None:
    filters, weighers, handler = from_settings(SchedulerSettings())
    assert filters == DEFAULT_FILTERS
    assert weighers == DEFAULT_WEIGHERS
    assert handler is WeightHandlerName.ORDERED


def test_settings_name_every_weigher_with_its_multiplier() -> None:
    settings = replace(
        SchedulerSettings(),
        scheduler_default_filters=("JsonFilter", "RetryFilter"),
        scheduler_default_weighers=(
            "VolumeNumberWeigher",
            "CapacityWeigher",
            "AllocatedCapacityWeigher",
        ),
        scheduler_weight_handler="StochasticHostWeightHandler",
        capacity_weight_multiplier=-2.0,
        allocated_capacity_weight_multiplier=3.0,
        volume_number_multiplier=0.5,
    )
    filters, weighers, handler = from_settings(settings)
    assert filters == (JSON_FILTER, RETRY_FILTER)
    assert [(w.name, w.multiplier) for w in weighers] == [
        ("VolumeNumberWeigher", 0.5),
        ("CapacityWeigher", -2.0),
        ("AllocatedCapacityWeigher", 3.0),
    ]
    assert handler is WeightHandlerName.STOCHASTIC


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ["CapacityFilter", "DriverFilter", "Nope"],
            "Scheduler Host Filter DriverFilter, Nope could not be found. Valid: "
            "AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter, SameBackendFilter, "
            "DifferentBackendFilter, JsonFilter, IgnoreAttemptedHostsFilter, RetryFilter",
        ),
        (
            ["cinder.scheduler.filters.capacity_filter.CapacityFilter"],
            "Scheduler Host Filter cinder.scheduler.filters.capacity_filter.CapacityFilter "
            "could not be found.",
        ),
        (["SourceBackendFilter"], "Scheduler Host Filter SourceBackendFilter could not"),
        (["capacityfilter"], "Scheduler Host Filter capacityfilter could not be found."),
    ],
)
def test_unknown_filters(names: list[str], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        filters_by_name(names)
    assert str(raised.value).startswith(message)


def test_unknown_weigher_and_handler() -> None:
    with pytest.raises(ValueError) as raised:
        weighers_by_name(["CapacityWeigher", "GoodnessWeigher"])
    assert str(raised.value) == (
        "Scheduler Host Weigher GoodnessWeigher could not be found. Valid: CapacityWeigher, "
        "AllocatedCapacityWeigher, VolumeNumberWeigher"
    )
    with pytest.raises(ValueError) as raised:
        weight_handler_by_name("cinder.scheduler.weights.OrderedHostWeightHandler")
    assert str(raised.value) == (
        "Scheduler Host Weight Handler cinder.scheduler.weights.OrderedHostWeightHandler could "
        "not be found. Valid: OrderedHostWeightHandler, StochasticHostWeightHandler"
    )
    with pytest.raises(ValueError, match="Scheduler Host Weigher Nope"):
        from_settings(replace(SchedulerSettings(), scheduler_default_weighers=("Nope",)))


def test_weighers_default_to_cinders_multipliers() -> None:
    assert [(w.name, w.multiplier) for w in weighers_by_name(list(WeigherName))] == [
        ("CapacityWeigher", 1.0),
        ("AllocatedCapacityWeigher", -1.0),
        ("VolumeNumberWeigher", -1.0),
    ]
