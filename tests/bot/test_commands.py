"""Caption and command parsing, shared by every platform."""

from pathlib import Path

import pytest

from bot.commands import CommandError, JobSettings, help_text, parse_caption, parse_fps
from bot.config import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path)


def test_caption_options_override_the_chat_defaults(settings):
    base = JobSettings(fps=30, loop=False, output="mp4", model="rife")
    parsed = parse_caption("my cat /fps 60 /loop /gif", base, settings)
    assert parsed == JobSettings(fps=60, loop=True, output="gif", model="rife")


@pytest.mark.parametrize("caption", ["/fps=50", "/fps50", "/fps@SmoothBot 50", "/FPS 50fps", "/fps 50,0"])
def test_fps_spellings(settings, caption):
    assert parse_caption(caption, JobSettings(), settings).fps == 50


def test_no_caption_keeps_defaults(settings):
    base = JobSettings(fps=48, loop=True)
    assert parse_caption(None, base, settings) == base
    assert parse_caption("just words", base, settings) == base


@pytest.mark.parametrize(("text", "message"), [("abc", "not a frame rate"), ("0", "between"), ("100000", "between"),
                                               ("", "Tell me")])
def test_bad_fps_is_explained(settings, text, message):
    with pytest.raises(CommandError, match=message):
        parse_fps(text, settings)


def test_unknown_caption_command_is_explained(settings):
    with pytest.raises(CommandError, match="/frobnicate"):
        parse_caption("/frobnicate", JobSettings(), settings)


def test_dain_needs_its_checkpoint(settings, tmp_path):
    with pytest.raises(CommandError, match="DAIN needs its checkpoint"):
        parse_caption("/model dain", JobSettings(), settings)
    with_dain = Settings(_env_file=None, data_dir=tmp_path, dain_weights=tmp_path / "best.pth")
    assert parse_caption("/model dain", JobSettings(), with_dain).model == "dain"


def test_settings_round_trip_through_storage_dicts():
    original = JobSettings(fps=23.976, loop=True, output="gif", model="flow")
    assert JobSettings.from_dict(original.to_dict()) == original
    assert JobSettings.from_dict({}, default_model="blend") == JobSettings(model="blend")
    assert original.describe() == "23.976 fps, loop on, GIF, optical flow"


def test_tokens_never_show_in_settings_repr(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path, TELEGRAM_TOKEN="123456:SECRET-TOKEN")
    assert "SECRET" not in repr(settings) and "SECRET" not in str(settings.model_dump())


def test_env_example_configures_nothing_by_default(tmp_path):
    example = Path(__file__).resolve().parents[2] / ".env.example"
    settings = Settings(_env_file=example, data_dir=tmp_path)
    assert settings.telegram_token is None and settings.discord_token is None


def test_slowmo_compare_and_cut_mode_in_a_caption(settings):
    parsed = parse_caption("/slowmo 4 /fps 60 /compare side /cuts fade my cat", JobSettings(), settings)
    assert (parsed.slowmo, parsed.fps, parsed.compare, parsed.cut_mode) == (4, 60, "side", "fade")
    assert parse_caption("/slowmo 2.5x", JobSettings(), settings).slowmo == 2.5
    assert parse_caption("/slowmo=2,5", JobSettings(), settings).slowmo == 2.5
    assert parse_caption("/compare my cat", JobSettings(), settings).compare == "split"  # alone: the split view
    assert parse_caption("/compare /gif", JobSettings(), settings) == JobSettings(compare="split", output="gif")
    chat_default = JobSettings(slowmo=4, compare="stack")
    assert parse_caption("/slowmo off /compare off", chat_default, settings) == JobSettings()


@pytest.mark.parametrize(("caption", "message"), [("/slowmo", "How much slower"), ("/slowmo 20", "from 2× to 8×"),
                                                  ("/slowmo fast", "not a slow-motion factor"),
                                                  ("/compare=wipe", "Choose a comparison"),
                                                  ("/cuts", "/cuts fade"), ("/cuts dissolve", "/cuts fade")])
def test_bad_slowmo_compare_and_cut_mode_are_explained(settings, caption, message):
    with pytest.raises(CommandError, match=message):
        parse_caption(caption, JobSettings(), settings)


def test_old_stored_settings_load_with_defaults_and_newer_keys_are_ignored():
    before_slowmo_existed = {"fps": 60, "loop": True, "output": "gif", "model": "rife"}
    assert JobSettings.from_dict(before_slowmo_existed) == JobSettings(fps=60, loop=True, output="gif", model="rife")
    assert JobSettings.from_dict(before_slowmo_existed).quality == "fast"
    before_quality_existed = {"fps": 30, "slowmo": 2.5, "compare": "side", "cut_mode": "fade"}
    assert JobSettings.from_dict(before_quality_existed).quality == "fast"
    from_a_newer_version = {"fps": 30, "slowmo": 2.5, "compare": "side", "cut_mode": "fade", "quality": "best",
                            "denoise": True}
    loaded = JobSettings.from_dict(from_a_newer_version)
    assert (loaded.slowmo, loaded.compare, loaded.cut_mode, loaded.quality) == (2.5, "side", "fade", "best")
    assert JobSettings.from_dict(loaded.to_dict()) == loaded


def test_settings_line_names_slowmo_compare_and_fades_only_when_set():
    assert JobSettings().describe() == "2× the frame rate, loop off, MP4, RIFE"
    assert JobSettings(fps=60, slowmo=4, compare="side", cut_mode="fade").describe() == (
        "60 fps, loop off, MP4, RIFE, 4× slow motion, before/after side by side, cross-fades at cuts")


def test_help_documents_the_new_commands(settings):
    text = help_text(settings)
    for line in ("/slowmo K", "/compare [split|side|stack]", "/cuts cut|fade", "/quality fast|best",
                 "/quality best — sharper, about 4× slower (RIFE)"):
        assert line in text


def test_quality_in_a_caption(settings):
    assert JobSettings().quality == "fast"
    assert parse_caption("/quality best", JobSettings(), settings).quality == "best"
    assert parse_caption("my cat /quality=BEST /fps 60", JobSettings(), settings) == JobSettings(fps=60, quality="best")
    assert parse_caption("/quality fast", JobSettings(quality="best"), settings).quality == "fast"
    assert parse_caption("/quality best /model flow", JobSettings(), settings) == JobSettings(quality="best",
                                                                                             model="flow")


@pytest.mark.parametrize("caption", ["/quality", "/quality ultra", "/quality /fps 60", "/quality=high"])
def test_bad_quality_is_explained(settings, caption):
    with pytest.raises(CommandError) as raised:
        parse_caption(caption, JobSettings(), settings)
    assert str(raised.value) == ("Choose the quality: /quality fast (one pass, the default) or /quality best "
                                 "(RIFE only: sharper, about 4× slower).")


def test_settings_line_names_best_quality_only_when_chosen():
    assert "quality" not in JobSettings(quality="fast").describe()
    assert JobSettings(quality="best").describe() == "2× the frame rate, loop off, MP4, RIFE, best quality"
    assert JobSettings(model="flow", quality="best").describe() == (
        "2× the frame rate, loop off, MP4, optical flow, best quality (for RIFE only)")
