from __future__ import annotations

from pathlib import Path

import pytest

from authproxy.config.load import ConfigError, load_config


def test_embedded_defaults_match_the_design() -> None:
    config = load_config(None, env={})
    assert (config.listen.host, config.listen.port) == ("127.0.0.1", 8400)
    assert config.upstreams[0].url == "http://127.0.0.1:8080"
    assert config.upstreams[0].discover is True
    assert set(config.roles) == {"admin", "user"}
    assert config.max_request_bytes == 32 * 1024 * 1024
    assert config.trusted_proxies == ["127.0.0.1"]


def test_every_problem_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    file = tmp_path / "authproxy.yaml"
    file.write_text(
        "listen: {port: 99999}\n"
        "upstreams:\n"
        "  - name: a\n    url: ftp:/nowhere\n    models: [x]\n    colour: blue\n"
        "trusted_proxies: [not-an-ip]\n"
        "surprise: 1\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    problems = info.value.problems
    assert "upstreams[0].url: not a URL (want http://host:port)" in problems
    assert "upstreams[0].colour: unknown key" in problems
    assert "surprise: unknown key" in problems
    assert any(p.startswith("listen.port:") for p in problems)
    assert any(p.startswith("trusted_proxies:") for p in problems)


def test_cross_checks(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "roles: {user: {}}\ndefault_role: ghost\n"
        "upstreams: [{name: a, url: 'http://h:1', models: [m]},"
        " {name: a, url: 'http://h:2', discover: true}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    text = "; ".join(info.value.problems)
    assert "`admin` role must be defined" in text
    assert "default_role" in text
    assert "duplicate name a" in text


def test_upstream_needs_models_or_discovery(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("upstreams: [{name: a, url: 'http://h:1'}]\n")
    with pytest.raises(ConfigError, match="discover"):
        load_config(file, env={})


def test_environment_overrides_secrets_by_upstream_name(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("upstreams: [{name: gpu, url: 'http://h:1', models: [m]}]\n")
    config = load_config(
        file,
        env={"AUTHPROXY_UPSTREAMS__GPU__API_KEY": "engine-secret", "AUTHPROXY_LISTEN__PORT": "9"},
    )
    key = config.upstreams[0].api_key
    assert key is not None and key.get_secret_value() == "engine-secret"
    assert config.listen.port == 9
    assert "engine-secret" not in repr(config)


def test_environment_override_of_a_missing_element_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("upstreams: [{name: gpu, url: 'http://h:1', models: [m]}]\n")
    with pytest.raises(ConfigError, match="no list element named `cpu`"):
        load_config(file, env={"AUTHPROXY_UPSTREAMS__CPU__API_KEY": "x"})


@pytest.mark.parametrize(
    "index", ["²", "9" * 5000, "1", "01x"], ids=["superscript", "endless", "past-the-end", "junk"]
)
def test_environment_override_by_a_bad_index_is_an_error(tmp_path: Path, index: str) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("upstreams: [{name: gpu, url: 'http://h:1', models: [m]}]\n")
    with pytest.raises(ConfigError, match="no list element named"):
        load_config(file, env={f"AUTHPROXY_UPSTREAMS__{index}__API_KEY": "x"})


def test_relative_data_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    file = tmp_path / "etc" / "c.yaml"
    file.parent.mkdir()
    file.write_text("data_dir: ./state\n")
    assert load_config(file, env={}).data_dir == tmp_path / "etc" / "state"


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", env={})
    file = tmp_path / "list.yaml"
    file.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(file, env={})
    file.write_text("a: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(file, env={})


def test_health_checks_have_defaults_and_bounds(tmp_path: Path) -> None:
    health = load_config(None, env={}).health
    assert (health.interval, health.timeout, health.unhealthy_after, health.healthy_after) == (
        5.0,
        2.0,
        2,
        2,
    )
    file = tmp_path / "c.yaml"
    file.write_text("health: {interval: 0, unhealthy_after: 0, every: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    problems = info.value.problems
    assert any(p.startswith("health.interval:") for p in problems)
    assert any(p.startswith("health.unhealthy_after:") for p in problems)
    assert "health.every: unknown key" in problems


def test_model_aliases_are_checked(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "upstreams: [{name: a, url: 'http://h:1', models: [qwen, tiny]}]\n"
        "model_aliases: {coder: qwen, tiny: qwen, chain: coder, lost: nowhere}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    text = "; ".join(info.value.problems)
    assert "model_aliases.tiny: shadows the model 'tiny'" in text
    assert "model_aliases.chain: points to another alias" in text
    assert "model_aliases.lost: no upstream lists the model 'nowhere'" in text
    assert "model_aliases.coder" not in text


def test_alias_target_may_be_discovered(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "upstreams: [{name: a, url: 'http://h:1', discover: true}]\n"
        "model_aliases: {coder: qwen2.5-coder-7b}\n"
    )
    assert load_config(file, env={}).model_aliases == {"coder": "qwen2.5-coder-7b"}


def test_queue_settings_default_to_no_queue(tmp_path: Path) -> None:
    config = load_config(None, env={})
    assert config.upstreams[0].max_inflight is None  # no capacity: nothing waits, as before
    assert (config.queue.timeout, config.queue.max_per_user) == (120, 32)
    assert config.roles["user"].share == 1.0


@pytest.mark.parametrize("value", ["2", "auto"])
def test_max_inflight_is_a_number_or_auto(tmp_path: Path, value: str) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        f"upstreams: [{{name: a, url: 'http://h:1', models: [m], max_inflight: {value}}}]\n"
    )
    assert load_config(file, env={}).upstreams[0].max_inflight == (2 if value == "2" else "auto")


def test_queue_problems_are_one_line_each(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "upstreams:\n"
        "  - {name: a, url: 'http://h:1', models: [m], max_inflight: 0}\n"
        "  - {name: b, url: 'http://h:2', models: [m], max_inflight: '2'}\n"
        "  - {name: c, url: 'http://h:3', models: [m], max_inflight: true}\n"
        "  - {name: d, url: 'http://h:4', models: [m], max_inflight: Auto}\n"
        "queue: {timeout: 0, max_per_user: -1, depth: 3}\n"
        "roles: {admin: {share: 0}, user: {share: -1}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    problems = info.value.problems
    want = "want a whole number of at least 1, `auto` (llama-server's slots) or null"
    for i in range(4):
        assert f"upstreams[{i}].max_inflight: {want}" in problems
    assert "queue.depth: unknown key" in problems
    for where in ("queue.timeout", "queue.max_per_user", "roles.admin.share", "roles.user.share"):
        assert any(p.startswith(f"{where}: ") for p in problems), where
    assert len(problems) == 9


def test_workers_and_a_fair_queue_are_refused_together(tmp_path: Path) -> None:
    """N workers would each keep a queue of their own and let N x max_inflight through."""
    file = tmp_path / "c.yaml"
    file.write_text(
        "workers: 2\n"
        "upstreams:\n"
        "  - {name: a, url: 'http://h:1', models: [m], max_inflight: 2}\n"
        "  - {name: b, url: 'http://h:2', models: [m]}\n"
        "  - {name: c, url: 'http://h:3', models: [m], max_inflight: auto}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    assert info.value.problems == [
        "(top level): workers: 2 with max_inflight on a, c: the fair queue is one per gateway"
        " process; use workers: 1 with a queue"
    ]
    file.write_text(file.read_text().replace("workers: 2", "workers: 1"))
    assert load_config(file, env={}).workers == 1
    file.write_text("workers: 2\nupstreams: [{name: a, url: 'http://h:1', models: [m]}]\n")
    assert load_config(file, env={}).workers == 2


def test_service_keys_keep_todays_behaviour_by_default_and_take_only_known_choices(
    tmp_path: Path,
) -> None:
    defaults = load_config(None, env={}).acts_for_users
    assert (defaults.unknown_people, defaults.foreign_headers) == ("create", "ignore")
    file = tmp_path / "c.yaml"
    file.write_text(
        "acts_for_users: {unknown_people: maybe, foreign_headers: refuse, header: X-Who}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    problems = info.value.problems
    assert any(p.startswith("acts_for_users.unknown_people:") for p in problems), problems
    assert "acts_for_users.header: unknown key" in problems
    assert len(problems) == 2
