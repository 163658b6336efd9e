"""Sentences the engine writes for people (a result's caption notes), kept translatable.

A :class:`Note` is an ordinary ``str`` (the English sentence, as the command line prints it) that also
keeps its ``template`` ("scaled to {width}×{height} to fit") and the ``values`` put in, so that the chat
bot can say it in another language (its catalogues hold the templates: ``make messages`` extracts every
``Note("…")``). Errors do the same with ``EngineError.said``.
"""

from __future__ import annotations

from typing import Self


class Note(str):
    """``template`` with ``values`` put in (``str.format``), remembering both."""

    template: str
    values: dict[str, object]

    def __new__(cls, template: str, /, **values: object) -> Self:
        note = super().__new__(cls, template.format(**values))
        note.template = template
        note.values = values
        return note

    def __reduce__(self) -> tuple[object, tuple[str, dict[str, object]]]:
        """Copied and pickled as its template and values (its text may hold braces of its own)."""
        return _note, (self.template, self.values)


def _note(template: str, values: dict[str, object]) -> Note:
    return Note(template, **values)
