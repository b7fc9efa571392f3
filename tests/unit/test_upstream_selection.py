"""Choosing an upstream: least outstanding among the healthy, ties in turn, failover order,
aliases and the admin's switches."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import cast

from support.virtual_time import run_virtual, tick

from authproxy.config.schema import Quotas
from authproxy.proxy.endpoints import row
from authproxy.proxy.request_body import for_engine, prepare
from authproxy.store.base import Store
from authproxy.store.records import ModelSetting
from authproxy.upstreams.catalog import ModelCatalog, UpstreamState


class SwitchStore:
    """Only what the catalog reads from a store: the admin's model switches."""

    def __init__(self, disabled: list[str]) -> None:
        self.disabled = disabled

    async def list_model_settings(self) -> list[ModelSetting]:
        return [ModelSetting(name=n, enabled=False) for n in self.disabled]


def upstream(name: str, *models: str, discovered: tuple[str, ...] = ()) -> UpstreamState:
    return UpstreamState(
        name=name,
        url=f"http://{name}:1",
        api_key=None,
        health_path="/health",
        static_models=frozenset(models),
        discover=bool(discovered),
        discovered=frozenset(discovered),
    )


def catalog(
    *upstreams: UpstreamState,
    aliases: dict[str, str] | None = None,
    disabled: list[str] | None = None,
) -> ModelCatalog:
    store = cast(Store, SwitchStore(disabled or []))
    return ModelCatalog(upstreams=list(upstreams), store=store, aliases=aliases)


def test_idle_upstreams_take_turns() -> None:
    a, b, c = upstream("a", "m"), upstream("b", "m"), upstream("c", "m")
    cat = catalog(a, b, c)
    picks = [cat.pick("m") for _ in range(9)]
    assert picks == [a, b, c] * 3


def test_least_outstanding_wins_over_turns() -> None:
    a, b = upstream("a", "m"), upstream("b", "m")
    a.outstanding = 3
    b.outstanding = 1
    cat = catalog(a, b)
    assert {cat.pick("m") for _ in range(6)} == {b}


def test_load_follows_outstanding_requests() -> None:
    a, b = upstream("a", "m"), upstream("b", "m")
    cat = catalog(a, b)
    for _ in range(10):  # requests that stay open
        chosen = cat.pick("m")
        assert chosen is not None
        chosen.outstanding += 1
    assert (a.outstanding, b.outstanding) == (5, 5)


def test_unhealthy_upstreams_get_nothing_while_a_healthy_one_exists() -> None:
    a, b = upstream("a", "m"), upstream("b", "m")
    a.eject("refused")
    cat = catalog(a, b)
    assert Counter(cat.pick("m") for _ in range(6)) == {b: 6}


def test_when_all_are_unhealthy_they_are_still_tried() -> None:
    a, b = upstream("a", "m"), upstream("b", "m")
    a.eject("refused")
    b.eject("refused")
    a.outstanding = 2
    cat = catalog(a, b)
    assert cat.pick("m") is b
    assert cat.pick("m", exclude={b}) is a
    assert cat.pick("m", exclude={a, b}) is None


def test_failover_tries_each_healthy_upstream_once_and_never_an_ejected_one() -> None:
    a, b, c = upstream("a", "m"), upstream("b", "m"), upstream("c", "m")
    c.eject("refused")
    cat = catalog(a, b, c)
    first = cat.pick("m")
    assert first is not None
    second = cat.pick("m", exclude={first})
    assert {first, second} == {a, b}
    assert cat.pick("m", exclude={a, b}) is None


def test_unknown_model_has_no_upstream() -> None:
    cat = catalog(upstream("a", "m"))
    assert cat.pick("nope") is None and cat.serving("nope") == ()


async def test_disabled_model_has_no_upstream() -> None:
    cat = catalog(upstream("a", "m", "n"), disabled=["m"])
    await cat.reload()
    assert cat.pick("m") is None
    assert cat.enabled_models() == ["n"]


def test_models_served_by_several_upstreams_merge_and_follow_discovery() -> None:
    a = upstream("a", "m", discovered=("x",))
    b = upstream("b", discovered=("x", "y"))
    cat = catalog(a, b)
    assert cat.all_models() == ["m", "x", "y"]
    assert cat.serving("x") == (a, b)
    b.discovered = frozenset({"x"})
    cat.rebuild()
    assert cat.all_models() == ["m", "x"] and cat.pick("y") is None


def test_alias_routes_to_its_model_and_is_listed_beside_it() -> None:
    a, b = upstream("a", "qwen"), upstream("b", "qwen")
    cat = catalog(a, b, aliases={"coder": "qwen", "ghost": "missing"})
    assert cat.resolve("coder") == "qwen" and cat.resolve("qwen") == "qwen"
    assert cat.serving("coder") == (a, b)
    assert cat.enabled_models() == ["coder", "qwen"]  # an alias of nothing served is hidden
    assert [cat.pick("coder"), cat.pick("qwen")] == [a, b]  # one rotation per engine model


def test_alias_wins_over_a_discovered_model_of_the_same_name() -> None:
    a = upstream("a", "qwen", discovered=("coder",))
    cat = catalog(a, aliases={"coder": "qwen"})
    assert cat.resolve("coder") == "qwen"
    assert cat.enabled_models() == ["coder", "qwen"]


async def test_disabling_the_model_disables_its_aliases_but_not_the_reverse() -> None:
    cat = catalog(upstream("a", "qwen"), aliases={"coder": "qwen"}, disabled=["qwen"])
    await cat.reload()
    assert cat.serving("coder") == () and cat.enabled_models() == []
    cat2 = catalog(upstream("a", "qwen"), aliases={"coder": "qwen"}, disabled=["coder"])
    await cat2.reload()
    assert cat2.enabled_models() == ["qwen"]


def test_alias_is_rewritten_for_the_engine_and_nothing_else_changes() -> None:
    chat = row("/v1/chat/completions")
    raw = b'{"model": "coder", "messages": [], "x": "\xc3\xa9", "max_tokens": 9}'
    prepared = prepare(chat, raw, settings=Quotas())
    sent = for_engine(prepared, "qwen")
    assert json.loads(sent) == {
        "model": "qwen",
        "messages": [],
        "x": "é",
        "max_tokens": 9,
        "max_completion_tokens": 9,
    }
    assert prepared.model == "coder"  # policy and usage keep the name the client used


def test_requests_waiting_for_a_slot_count_as_load() -> None:
    """A has 1 in flight and 2 waiting in its queue, B 2 in flight: B is the less loaded."""
    a, b = upstream("a", "m"), upstream("b", "m")
    a.set_capacity(1)
    cat = catalog(a, b)

    async def scenario() -> list[UpstreamState | None]:
        assert a.queue is not None
        held = await a.queue.acquire(user="u")
        waiters = [asyncio.create_task(a.queue.acquire(user="u")) for _ in range(2)]
        await tick()
        a.outstanding, b.outstanding = 1, 2
        picks = [cat.pick("m") for _ in range(4)]
        for w in waiters:
            w.cancel()
        held.release()
        return picks

    assert run_virtual(scenario()) == [b] * 4
    assert (a.load, b.load) == (1, 2)  # the cancelled waiters left
