"""Charts drawn on the server as inline SVG: no script, no CDN, nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape


def stacked_bars(
    labels: Sequence[str],
    stacks: Sequence[Sequence[int]],
    series: Sequence[tuple[str, str]],
    *,
    title: str,
    width: int = 720,
    height: int = 220,
) -> str:
    """An SVG of one bar per label, each stacked from ``stacks[i]`` (one value per series,
    bottom first); ``series`` gives each (name, colour). Labels and names are escaped."""
    left, bottom, top = 44, 36, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((sum(stack) for stack in stacks), default=0) or 1
    step = plot_w / max(len(labels), 1)
    bar_w = max(step * 0.7, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nf-chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    for fraction in (0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="currentColor">{round(peak * fraction)}</text>'
        )
    label_every = max(1, len(labels) // 12)
    for index, (label, stack) in enumerate(zip(labels, stacks, strict=True)):
        x = left + index * step + (step - bar_w) / 2
        y = top + plot_h
        for value, (name, colour) in zip(stack, series, strict=True):
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(label)}: {escape(name)} {value}</title></rect>'
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                f'font-size="11" fill="currentColor">{escape(label)}</text>'
            )
    legend_x = left
    for name, colour in series:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}" font-size="11" '
            f'fill="currentColor">{escape(name)}</text>'
        )
        legend_x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)
