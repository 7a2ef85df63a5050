"""Text in and out of the served model: the tokenizer, the chat template, and streamed text with stop strings.

Only the light `tokenizers` library and jinja2 (no transformers, so the server starts fast). The chat template is
rendered the way `transformers.PreTrainedTokenizerFast.apply_chat_template` renders it: a sandboxed environment
with `trim_blocks`/`lstrip_blocks`, loop controls, `raise_exception`, a non-escaping `tojson`, the special tokens
as variables, and `{% generation %}` (a marker for training masks) rendered as plain content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from registry.errors import RegistryError

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


class ModelDirError(RegistryError):
    """The model folder does not follow the ONNX directory contract."""


class NoChatTemplate(ModelDirError):
    """The model folder has no chat template: only plain prompts can be served."""


class TemplateBroken(ModelDirError):
    """The model folder's chat template does not compile, or failed while rendering: the folder's fault."""


class TemplateRefused(RegistryError):
    """The chat template's `raise_exception` refused the conversation (e.g. roles that do not alternate)."""


class TextCodec:
    """Tokenizer files of an exported model folder: encode, decode, and render conversations."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise ModelDirError(f"{path} is missing", hint="export the model with `taxreg export`")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises untyped errors for files it cannot parse
            raise ModelDirError(f"{path}: the tokenizer cannot read it ({exc})",
                                hint="export the model again with `taxreg export`") from None
        self.config = read_json(model_dir / "tokenizer_config.json")
        self.special = {name: _token_text(self.config.get(name)) for name in SPECIAL_TOKEN_NAMES}
        self.chat_template, self.template_source = _chat_template(model_dir, self.config)
        self._template, self._template_error = _compile(self.chat_template)

    def encode(self, text: str) -> list[int]:
        # Special tokens come from the template or the prompt itself, as apply_chat_template(tokenize=True) does.
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def token_id(self, text: str | None) -> int | None:
        return None if text is None else self.tokenizer.token_to_id(text)

    def check_template(self) -> None:
        """Raises NoChatTemplate or TemplateBroken when conversations cannot be rendered (callers check at startup)."""
        if self.chat_template is None:
            raise NoChatTemplate(f"{self.template_source}: this model has no chat template",
                                 hint="use /v1/completions with a plain prompt")
        if self._template_error:
            raise TemplateBroken(f"{self.template_source}: the chat template does not compile "
                                 f"({self._template_error})", hint="fix the template or export the model again")

    def render_chat(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True) -> str:
        self.check_template()
        variables = {name: value for name, value in self.special.items() if value is not None}
        try:
            return str(self._template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                             **variables))
        except TemplateRefused:
            raise
        except Exception as exc:  # the template is code from the model folder: its failures are the folder's
            raise TemplateBroken(f"{self.template_source}: the chat template failed while rendering "
                                 f"({type(exc).__name__}: {exc})",
                                 hint="fix the template or export the model again") from None


class StopText:
    """Text of one choice as tokens arrive: holds back what could start a stop string, cuts at the first one."""

    def __init__(self, codec: TextCodec, stop: Sequence[str]) -> None:
        from tokenizers.decoders import DecodeStream

        self.codec, self.stop = codec, tuple(s for s in stop if s)
        self.stream = DecodeStream(skip_special_tokens=True)
        self.ids: list[int] = []
        self.text = ""
        self.sent = 0  # characters of `text` already given out
        self.stopped = False

    def push(self, token: int) -> str:
        """The new text that is safe to give out; sets `stopped` when a stop string appeared (it is not given)."""
        self.ids.append(token)
        piece = self.stream.step(self.codec.tokenizer, token)
        if piece:
            self.text += piece
        return self._release(final=False)

    def finish(self) -> str:
        """What is left: held-back text and bytes the stream decoder still buffered (an unfinished character)."""
        if not self.stopped:
            full = self.codec.decode(self.ids)
            if full.startswith(self.text):
                self.text = full
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.stopped:
            return ""
        # A stop string cannot begin in text already given out: that text never ends with the start of one.
        cut = min((i for i in (self.text.find(s, self.sent) for s in self.stop) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, self.text = True, self.text[:cut]
            end = cut
        else:
            end = len(self.text) if final else len(self.text) - self._held()
        out, self.sent = self.text[self.sent:end], max(self.sent, end)
        return out

    def _held(self) -> int:
        """Length of the longest tail of the text that begins some stop string."""
        return max((k for s in self.stop for k in range(min(len(s) - 1, len(self.text)), 0, -1)
                    if self.text.endswith(s[:k])), default=0)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file; {} when the file is absent."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"{path}: not readable JSON ({exc})", hint="export the model again") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path}: expected a JSON object", hint="export the model again")
    return data


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # AddedToken serialized as {"content": ..., ...}
        value = value.get("content")
    return value if isinstance(value, str) else None


def _chat_template(model_dir: Path, config: dict[str, Any]) -> tuple[str | None, Path]:
    """The template and where it came from: `chat_template.jinja` first (what transformers 5 reads first), else
    tokenizer_config's `chat_template`."""
    file = model_dir / "chat_template.jinja"
    if file.is_file():
        return file.read_text("utf-8"), file
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        template = next((t.get("template") for t in template if isinstance(t, dict) and t.get("name") == "default"),
                        None)
    return (template if isinstance(template, str) else None), model_dir / "tokenizer_config.json"


def _compile(template: str | None) -> tuple[Any, str | None]:
    """The compiled template, or why it does not compile (said when it is used, so `serve` can still start)."""
    import jinja2

    if template is None:
        return None, None
    try:
        return _environment().from_string(template), None
    except jinja2.TemplateSyntaxError as exc:
        return None, f"line {exc.lineno}: {exc.message}"


def _environment() -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}` marks assistant text for training masks: render its body."""

        tags = {"generation"}  # noqa: RUF012  (jinja's own class attribute)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return str(caller())

    def raise_exception(message: str) -> None:
        raise TemplateRefused(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    return env
