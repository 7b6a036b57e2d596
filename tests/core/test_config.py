from __future__ import annotations

import pytest

from always_on.core import paths
from always_on.core.config import load_config, parse_config
from always_on.core.errors import AlwaysOnError


def test_defaults_with_no_file(always_on_home):
    cfg = load_config()
    assert not paths.config_file().exists()
    assert cfg.agent == "tidy" and cfg.language == "en"
    assert cfg.scheduler.interval_seconds > 0 and cfg.workspace.strategy == "auto"
    assert str(cfg.workspace.resolved_base()).startswith(str(always_on_home))
    assert cfg.warnings == []


def test_file_lives_under_always_on_home(always_on_home):
    paths.config_file().parent.mkdir(parents=True)
    paths.config_file().write_text('language = "zh-CN"\n[scheduler]\ninterval_seconds = 60\n')
    cfg = load_config()
    assert cfg.language == "zh-CN" and cfg.scheduler.interval_seconds == 60


def test_unknown_keys_warn_and_are_named():
    cfg = parse_config({"langauge": "en", "scheduler": {"intervall": 3}}, source="c.toml")
    assert any("`langauge`" in w for w in cfg.warnings)
    assert any("`scheduler.intervall`" in w for w in cfg.warnings)


@pytest.mark.parametrize(
    "data,key",
    [
        ({"scheduler": {"interval_seconds": "soon"}}, "scheduler.interval_seconds"),
        ({"language": "fr"}, "language"),
        ({"workspace": {"strategy": "copy"}}, "workspace.strategy"),
        ({"scheduler": {"daily_budget": -1}}, "scheduler.daily_budget"),
        ({"agents": {"x": {"command": 5}}}, "agents.x.command"),
    ],
)
def test_bad_value_error_names_the_key(data, key):
    with pytest.raises(AlwaysOnError) as err:
        parse_config(data)
    assert err.value.code == "config_invalid"
    assert f"`{key}" in err.value.message


def test_per_project_override(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    cfg = parse_config(
        {
            "agent": "tidy",
            "scheduler": {"cooldown_seconds": 100},
            "projects": {str(project): {"agent": "claude", "scheduler": {"cooldown_seconds": 5}}},
        }
    )
    eff = cfg.for_project(project)
    assert eff.agent == "claude" and eff.scheduler.cooldown_seconds == 5
    assert eff.scheduler.interval_seconds == cfg.scheduler.interval_seconds
    other = cfg.for_project(tmp_path)
    assert other.agent == "tidy" and other.scheduler.cooldown_seconds == 100


def test_bad_project_override_names_the_project_key(tmp_path):
    with pytest.raises(AlwaysOnError, match="projects.*scheduler.interval_seconds"):
        parse_config({"projects": {str(tmp_path): {"scheduler": {"interval_seconds": "x"}}}})


def test_invalid_toml_is_reported(always_on_home):
    paths.config_file().parent.mkdir(parents=True)
    paths.config_file().write_text("language = \n")
    with pytest.raises(AlwaysOnError, match="not valid TOML"):
        load_config()


def test_agents_table_and_presets():
    cfg = parse_config(
        {
            "agents": {
                "local": {"command": "my-agent --acp", "env": {"A": "1"}},
                "llama": {
                    "command": [],
                    "kind": "openai",
                    "base_url": "http://127.0.0.1:8080/v1",
                    "model": "qwen",
                },
            }
        }
    )
    assert cfg.agent_spec("local").command == ["my-agent", "--acp"]
    llama = cfg.agent_spec("llama")
    assert llama.env["ALWAYS_ON_OPENAI_BASE_URL"] == "http://127.0.0.1:8080/v1"
    assert cfg.agent_spec("gemini").command == ["gemini", "--experimental-acp"]
    assert cfg.agent_spec("tidy").command[-1] == "tidy"
    with pytest.raises(AlwaysOnError, match="unknown agent 'nope'"):
        cfg.agent_spec("nope")


def test_presets_declare_credentials_and_what_runs_them_unattended():
    cfg = parse_config({})
    claude = cfg.agent_spec("claude")
    assert {"ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL"} <= set(claude.pass_env)
    assert "IS_SANDBOX" not in claude.env and "@0.101.0" in claude.install_hint
    codex = cfg.agent_spec("codex")
    assert codex.auth_methods == {"codex-api-key": ["CODEX_API_KEY"], "openai-api-key": ["OPENAI_API_KEY"]}
    gemini = cfg.agent_spec("gemini")
    assert gemini.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true" and "GEMINI_API_KEY" in gemini.credentials
    assert cfg.agent_spec("openai").pass_env == ["OPENAI_API_KEY"]  # the built-in agent's default key


def test_pass_env_auth_method_and_stall_per_agent():
    cfg = parse_config(
        {
            "agents": {
                "claude": {
                    "command": "npx @agentclientprotocol/claude-agent-acp@0.101.0",
                    "pass_env": ["MY_PROXY"],
                },
                "mine": {
                    "command": "gemini --experimental-acp",
                    "auth_method": "vertex-ai",
                    "stall_seconds": 30,
                },
                "llm": {"kind": "openai", "model": "m", "api_key_env": "MY_LLM_KEY"},
            },
            "limits": {"stall_seconds": 60, "start_timeout_seconds": 20},
        }
    )
    claude = cfg.agent_spec("claude")  # configured under a preset's name: inherits the preset
    assert "ANTHROPIC_API_KEY" in claude.pass_env and "MY_PROXY" in claude.pass_env
    mine = cfg.agent_spec("mine")  # the program is a preset's: inherits it too
    assert mine.auth_method == "vertex-ai" and mine.stall_seconds == 30
    assert mine.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    llm = cfg.agent_spec("llm")
    assert llm.pass_env == ["MY_LLM_KEY"] and "MY_LLM_KEY" not in llm.env  # passed at launch, not copied here
    assert cfg.limits.phase_limits().stall_seconds == 60 and cfg.limits.start_timeout_seconds == 20
    assert cfg.command_line_spec("codex-acp").auth_methods  # --agent-cmd of a known program


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"command": "x", "pass_env": ["LD_PRELOAD"]}, "agents.a.pass_env"),
        ({"command": "x", "env": {"GIT_DIR": "/tmp"}}, "agents.a.env"),
        ({"command": "x", "stall_seconds": 0}, "agents.a.stall_seconds"),
        ({"kind": "acp"}, "agents.a"),
        ({"command": 'my-agent "unclosed'}, "agents.a"),  # issue 15: read as a shell would, or refused here
    ],
)
def test_bad_agent_tables_name_the_key(table, fragment):
    with pytest.raises(AlwaysOnError) as info:
        parse_config({"agents": {"a": table}})
    assert info.value.code == "config_invalid" and f"`{fragment}" in info.value.message


def test_a_phase_can_have_its_own_timeout():
    cfg = parse_config({"limits": {"phase_timeout_seconds": 600, "phase_timeouts": {"report": 120}}})
    assert cfg.limits.phase_limits("report").timeout_seconds == 120
    assert cfg.limits.phase_limits("execution").timeout_seconds == 600
    assert cfg.limits.phase_limits().timeout_seconds == 600
    with pytest.raises(AlwaysOnError) as err:
        parse_config({"limits": {"phase_timeouts": {"report": 0}}})
    assert "limits.phase_timeouts.report" in err.value.message
