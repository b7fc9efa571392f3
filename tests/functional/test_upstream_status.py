"""The admin's view of the upstreams (CLI and TUI): health probes and the model overview."""

from __future__ import annotations

from fakes.engine import running_engine

from authproxy.config.schema import Config
from authproxy.upstreams.status import model_overview, upstream_health

from .helpers import free_port


def _config(engine_url: str, dead_url: str) -> Config:
    return Config.model_validate(
        {
            "upstreams": [
                {"name": "gpu", "url": engine_url, "models": ["tiny"], "discover": True},
                {"name": "dead", "url": dead_url, "discover": True},
            ],
            "roles": {"admin": {"models": ["*"]}, "user": {"models": ["t*", "small"]}},
            "model_aliases": {"small": "tiny"},
        }
    )


async def test_health_and_models_of_a_live_and_a_dead_upstream() -> None:
    async with running_engine(models=["tiny", "big"]) as engine:
        config = _config(engine.base_url, f"http://127.0.0.1:{free_port()}")
        health = {h.name: (h.up, h.detail) for h in await upstream_health(config, timeout=2)}
        assert health == {"gpu": (True, "ok"), "dead": (False, "connection refused")}

        overview = await model_overview(config, {"big": False, "gone": True}, timeout=2)
    assert overview.unreachable == ["dead"]
    by_name = {m.name: m for m in overview.models}
    assert list(by_name) == ["big", "gone", "small", "tiny"]
    small = by_name["small"]
    assert (small.alias_of, small.upstreams, small.roles) == ("tiny", ("gpu",), ("admin", "user"))
    assert not small.configured and not small.discovered and small.enabled
    tiny, big, gone = by_name["tiny"], by_name["big"], by_name["gone"]
    assert (tiny.configured, tiny.discovered, tiny.enabled) == (True, True, True)
    assert tiny.upstreams == ("gpu",) and tiny.roles == ("admin", "user")
    assert (big.configured, big.discovered, big.enabled, big.roles) == (
        False,
        True,
        False,
        ("admin",),
    )
    assert gone.upstreams == () and not gone.configured and not gone.discovered
