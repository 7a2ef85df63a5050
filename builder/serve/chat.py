"""`taxreg chat`: a conversation with an exported model in the terminal, replies streamed as they decode.

Each line read is a user turn; the whole conversation goes through the model's chat template every turn.
`/reset` forgets it, `/exit` (or end of input) ends it. Lines may come from a pipe, which is how it is tested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from builder.serve.engine import Delta, Engine, PromptTooLong, Sampling
from builder.serve.text import TemplateRefused

EXIT_COMMANDS = ("/exit", "/quit")
RESET_COMMAND = "/reset"


@dataclass
class Conversation:
    engine: Engine
    sampling: Sampling
    system: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def reply(self, text: str) -> Iterator[str]:
        """The assistant's answer, piece by piece; the turn joins the history once it is complete."""
        user = {"role": "user", "content": text}
        system = [{"role": "system", "content": self.system}] if self.system else []
        ids = self.engine.prompt_ids(self.engine.codec.render_chat([*system, *self.history, user]))
        pieces: list[str] = []
        for event in self.engine.generate(ids, self.sampling):
            if isinstance(event, Delta):
                pieces.append(event.text)
                yield event.text
        self.history += [user, {"role": "assistant", "content": "".join(pieces)}]


def converse(conversation: Conversation, lines: Iterable[str], write: Callable[[str], None]) -> int:
    """Answers each line until /exit or the end of input; returns the number of replies."""
    replies = 0
    for line in lines:
        text = line.rstrip("\r\n")
        command = text.strip()
        if command in EXIT_COMMANDS:
            break
        if command == RESET_COMMAND:
            conversation.history.clear()
            write("(conversation reset)\n")
            continue
        if not command:
            continue
        try:
            for piece in conversation.reply(text):
                write(piece)
        except (PromptTooLong, TemplateRefused) as exc:
            write(f"({exc}; type {RESET_COMMAND} to start over)")
        else:
            replies += 1
        write("\n")
    return replies
