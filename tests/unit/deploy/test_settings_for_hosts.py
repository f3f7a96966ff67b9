"""Settings for services on separate hosts: listening apart from the advertised address, and
replicas behind one DNS name on one port."""

from __future__ import annotations

from cindermesh.settings import load_settings


def test_replicas_on_one_machine_take_consecutive_ports() -> None:
    settings = load_settings(
        {"CINDERMESH_SCHEDULER__REPLICAS": "2", "CINDERMESH_API__REPLICAS": "2"}
    )
    assert settings.scheduler.addresses == ("127.0.0.1:18777", "127.0.0.1:18778")
    assert settings.scheduler.grpc_target == "ipv4:127.0.0.1:18777,127.0.0.1:18778"
    assert settings.api.addresses == ("127.0.0.1:18776", "127.0.0.1:18777")


def test_replicas_behind_a_dns_name_share_its_port() -> None:
    settings = load_settings(
        {
            "CINDERMESH_SCHEDULER__HOST": "scheduler",
            "CINDERMESH_SCHEDULER__REPLICAS": "2",
            "CINDERMESH_API__HOST": "api",
            "CINDERMESH_API__REPLICAS": "2",
        }
    )
    assert [settings.scheduler.address(i) for i in range(2)] == ["scheduler:18777"] * 2
    assert settings.scheduler.addresses == ("scheduler:18777",)
    assert settings.scheduler.grpc_target == "scheduler:18777"
    assert settings.api.addresses == ("api:18776",)


def test_listen_host_keeps_the_port_of_the_advertised_address() -> None:
    settings = load_settings({"CINDERMESH_LISTEN_HOST": "0.0.0.0"})
    assert settings.listen_address("volume-file-1:18780") == "0.0.0.0:18780"
    assert load_settings({"CINDERMESH_LISTEN_HOST": "::"}).listen_address("a:1") == "[::]:1"


def test_without_listen_host_a_server_listens_where_it_is_reached() -> None:
    assert load_settings({}).listen_address("127.0.0.1:18780") == "127.0.0.1:18780"
