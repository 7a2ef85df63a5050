"""Charts drawn as static inline SVG in Python: no JavaScript library, nothing fetched, readable without JS.

Every label is escaped (domains and paths are contributed text). Colours come from material's CSS variables so
the charts follow the light and dark palettes.
"""

from __future__ import annotations

from html import escape

BAR_HEIGHT, GAP, LABEL_WIDTH, PLOT_WIDTH = 18, 6, 220, 360
INK = "var(--md-default-fg-color)"
BAR = "var(--md-primary-fg-color)"


def bars(title: str, items: list[tuple[str, int]]) -> str:
    """Horizontal bars, one per (label, value), largest first as given."""
    if not items:
        return f'<p class="taxreg-empty">{escape(title)}: nothing yet.</p>'
    top = max(value for _, value in items) or 1
    height = len(items) * (BAR_HEIGHT + GAP) + GAP
    width = LABEL_WIDTH + PLOT_WIDTH + 60
    parts = [_open(title, width, height)]
    for i, (name, value) in enumerate(items):
        y = GAP + i * (BAR_HEIGHT + GAP)
        length = max(1, round(PLOT_WIDTH * value / top))
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end" fill="{INK}" font-size="12">'
            f"{escape(_short(name))}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}" fill="{BAR}">'
            f"<title>{escape(name)}: {value}</title></rect>"
            f'<text x="{LABEL_WIDTH + length + 4}" y="{y + 13}" fill="{INK}" font-size="12">{value}</text>')
    return "".join(parts) + "</svg>"


def growth(title: str, points: list[tuple[str, int]]) -> str:
    """A step line of a running total over time: points are (date label, total after it), in order."""
    if not points:
        return f'<p class="taxreg-empty">{escape(title)}: no taxonomy commits recorded (not a git repository).</p>'
    width, height, pad = 600, 220, 40
    top = max(total for _, total in points) or 1
    step = (width - 2 * pad) / max(1, len(points) - 1)
    xy = [(pad + i * step, height - pad - (height - 2 * pad) * total / top) for i, (_, total) in enumerate(points)]
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(xy))
    parts = [_open(title, width, height),
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="{INK}"/>',
             f'<path d="{path}" fill="none" stroke="{BAR}" stroke-width="2"/>']
    for (x, y), (when, total) in zip(xy, points, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{BAR}"><title>{escape(when)}: {total}'
                     "</title></circle>")
    first, last = points[0], points[-1]
    parts.append(f'<text x="{pad}" y="{height - pad + 16}" fill="{INK}" font-size="11">{escape(first[0][:10])}</text>'
                 f'<text x="{width - pad}" y="{height - pad + 16}" text-anchor="end" fill="{INK}" font-size="11">'
                 f"{escape(last[0][:10])}</text>"
                 f'<text x="{pad}" y="{pad - 8}" fill="{INK}" font-size="11">{top}</text>')
    return "".join(parts) + "</svg>"


def histogram(title: str, values: list[int], bins: int = 10) -> str:
    """How many items fall in each range of values (e.g. samples per contribution)."""
    if not values:
        return bars(title, [])
    low, high = min(values), max(values)
    size = max(1, -(-(high - low + 1) // bins))
    counts: dict[int, int] = {}
    for value in values:
        counts[(value - low) // size] = counts.get((value - low) // size, 0) + 1
    items = [(f"{low + b * size}-{low + (b + 1) * size - 1}", counts.get(b, 0)) for b in range(max(counts) + 1)]
    return bars(title, items)


def _open(title: str, width: int, height: int) -> str:
    return (f'<p class="taxreg-chart-title"><strong>{escape(title)}</strong></p>\n'
            f'<svg class="taxreg-chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
            f'width="100%" style="max-width:{width}px"><title>{escape(title)}'
            "</title>")


def _short(text: str, limit: int = 32) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def intervals(title: str, points: list[tuple[str, float, float | None, float | None]], unit: str = "") -> str:
    """A change per label (e.g. per release) as a dot with its interval as a bar, around a line at 0 (no change):
    points are (label, value, low, high), in order; a point without an interval is a dot alone."""
    if not points:
        return f'<p class="taxreg-empty">{escape(title)}: nothing measured yet.</p>'
    width, row, pad = LABEL_WIDTH + PLOT_WIDTH + 80, BAR_HEIGHT + GAP, GAP
    values = [v for _, value, low, high in points for v in (value, low, high) if v is not None]
    span = max(abs(v) for v in values) or 1.0
    height = len(points) * row + pad + 16

    def x(value: float) -> float:
        return LABEL_WIDTH + PLOT_WIDTH * (0.5 + value / (2 * span))

    zero = x(0.0)
    parts = [_open(title, width, height),
             f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height - 16}" stroke="{INK}" stroke-dasharray="3,3"/>',
             f'<text x="{zero:.1f}" y="{height - 4}" text-anchor="middle" fill="{INK}" font-size="11">0 (no change)'
             "</text>"]
    for i, (label, value, low, high) in enumerate(points):
        y = pad + i * row + BAR_HEIGHT / 2
        shown = f"{value:+.3g}{unit}" + (f" [{low:+.3g}, {high:+.3g}]" if low is not None and high is not None else "")
        parts.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}" font-size="12">'
                     f"{escape(_short(label))}</text>")
        if low is not None and high is not None:
            parts.append(f'<line x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" stroke="{BAR}" '
                         'stroke-width="3"/>')
        parts.append(f'<circle cx="{x(value):.1f}" cy="{y:.1f}" r="4" fill="{BAR}"><title>{escape(label)}: '
                     f"{escape(shown)}</title></circle>"
                     f'<text x="{LABEL_WIDTH + PLOT_WIDTH + 6}" y="{y + 4:.1f}" fill="{INK}" font-size="11">'
                     f"{escape(shown)}</text>")
    return "".join(parts) + "</svg>"
