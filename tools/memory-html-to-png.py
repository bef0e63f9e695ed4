#!/usr/bin/env python3
"""Renders the timeline charts of a `memory.html` (layerwise profile) into one PNG, offline.

Usage: tools/memory-html-to-png.py reports/vgg8b/memory.html docs/memory-vgg8b.png [--width 960]

Takes the headline, the legend and every mode's inline <svg> chart from the page, stacks them
into one standalone SVG and converts it with rsvg-convert (Debian: librsvg2-bin).
"""
import html
import re
import textwrap
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    width = int(sys.argv[sys.argv.index("--width") + 1]) if "--width" in sys.argv else 960
    page = open(source, encoding="utf-8").read()
    run = re.search(r'<p class="run">(.*?)</p>', page)
    headlines = re.findall(r'<p class="headline">(.*?)</p>', page)
    titles = re.findall(r"<h3>(.*?)</h3>\s*<svg", page)
    charts = re.findall(r"(<svg class=\"timeline\".*?</svg>)", page, re.S)
    legend = re.findall(r'<span><i style="background:(#[0-9a-fA-F]{6})"></i>(.*?)</span>', page)
    if not charts:
        sys.exit(f"{source}: no timeline charts found")

    def text(x, y, s, size=13, weight="normal"):
        return (f'<text x="{x}" y="{y}" font-family="DejaVu Sans, sans-serif" font-size="{size}" '
                f'font-weight="{weight}" fill="#222">{s}</text>\n')

    parts, y = [], 24
    columns = int((width - 20) / 7)  # characters of 12px DejaVu Sans per line, roughly
    for i, line in enumerate(textwrap.wrap(run.group(1) if run else "", int((width - 20) / 8.5))):
        y += 0 if i == 0 else 19
        parts.append(text(10, y, line, 14, "bold"))
    for line in headlines[:2]:  # the ratio line and the verdict
        for piece in textwrap.wrap(line, columns):
            y += 17
            parts.append(text(10, y, piece, 12))
    y += 14
    x = 10
    for color, name in legend:
        parts.append(f'<rect x="{x}" y="{y}" width="11" height="11" fill="{color}"/>\n')
        parts.append(text(x + 15, y + 10, name, 12))
        x += 15 + 7.5 * len(html.unescape(name)) + 18
    y += 22
    for title, chart in zip(titles + [""] * len(charts), charts):
        y += 16
        parts.append(text(10, y, title, 13, "bold"))
        y += 6
        w = float(re.search(r'width="([0-9.]+)"', chart).group(1))
        h = float(re.search(r'height="([0-9.]+)"', chart).group(1))
        inner = re.sub(r"^<svg[^>]*>", "", chart).rsplit("</svg>", 1)[0]
        parts.append(f'<svg x="0" y="{y}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
                     f'font-family="DejaVu Sans, sans-serif" font-size="11">{inner}</svg>\n')
        y += h
    y += 10
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{int(y)}" viewBox="0 0 {width} {int(y)}">\n'
           f'<rect width="100%" height="100%" fill="#ffffff"/>\n' + "".join(parts) + "</svg>\n")
    with tempfile.NamedTemporaryFile("w", suffix=".svg", delete=False, encoding="utf-8") as f:
        f.write(svg)
        path = f.name
    subprocess.run(["rsvg-convert", "--format", "png", "--output", target, path], check=True)
    print(f"{target}: {len(charts)} charts, {width}x{int(y)}")


if __name__ == "__main__":
    main()
