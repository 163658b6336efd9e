"""The ids a Discord job stores: which message, video and interaction it answers, where its status is."""

from __future__ import annotations

import pytest

from bot.discord_refs import Source, StatusRef


@pytest.mark.parametrize(("source", "text"), [
    (Source(123), "123"),  # a message's only (or first) video: the id as it always was
    (Source(123, 2), "123.2"),  # its third video
    (Source(123, 1, interaction_id=456), "123.1i456"),  # the context menu on someone's message
    (Source(interaction_id=456), "i456"),  # /smooth: no message to reply to
])
def test_sources_survive_the_queue_as_text(source, text):
    assert source.encode() == text and Source.decode(text) == source
    assert source.from_interaction == ("i" in text)


@pytest.mark.parametrize("text", ["", "abc", "12.x", "i", "1i2i3"])
def test_other_text_is_not_a_source(text):
    with pytest.raises(ValueError):
        Source.decode(text)


def test_a_status_in_another_channel_names_it():
    assert StatusRef.decode("77") == StatusRef(77) and StatusRef(77).encode() == "77"
    assert StatusRef.decode("5/77") == StatusRef(77, channel_id=5) and StatusRef(77, 5).encode() == "5/77"
