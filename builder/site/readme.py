"""The taxonomy's own README on the home page, rendered so that it can neither run nor fetch anything.

It is contributed text: raw HTML is off (shown as text), and since the site promises no external request, an
image is never an `<img>` (a remote one is a tracking pixel): it becomes a link to the picture, and every link
is marked `rel="nofollow noopener"`. Headings move two levels down, below the page's own.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from builder.site import urls

REL = "nofollow noopener"


def about(taxonomy: Path | None) -> str:
    """The "About this taxonomy" section, or "" when the taxonomy has no README.md."""
    readme = taxonomy / "README.md" if taxonomy else None
    if readme is None or not readme.is_file():
        return ""
    body = render(readme.read_text(encoding="utf-8", errors="replace"))
    for level in (2, 1):  # below the page's own headings
        body = body.replace(f"<h{level}>", f"<h{level + 2}>").replace(f"</h{level}>", f"</h{level + 2}>")
    return f'<section class="taxreg-about"><h2 id="about-this-taxonomy">About this taxonomy</h2>\n{body}</section>'


def render(markdown: str) -> str:
    """CommonMark to inert HTML: no raw HTML, no image the browser would fetch, every link rel=nofollow."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False})
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    return str(md.render(markdown))


def _image(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    label = escape(f"image: {renderer.renderInlineAsText(token.children or [], options, env) or 'untitled'}")
    href = urls.web_link(str(token.attrGet("src") or ""))
    if href is None:  # relative or data: the picture is not part of the site
        return f"[{label}]"
    return f'<a href="{escape(href)}" rel="{REL}" class="taxreg-image-link">[{label}]</a>'


def _link_open(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", REL)
    return str(renderer.renderToken(tokens, idx, options, env))
