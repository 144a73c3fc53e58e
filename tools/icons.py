"""Draw the couriers' page's app icons (``geoservice/static/icons/``): a warm-station house with a heart on the
warm-station orange, at the sizes an installable web app needs (192 and 512 px, and a 512 px maskable one whose
drawing stays inside the central 80 % safe zone). Run once after changing the drawing; the PNGs are committed."""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ORANGE = (217, 72, 15, 255)  # --k-warm_station in static/css/app.css
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parents[1] / "geoservice" / "static" / "icons"


def draw(size: int, safe: float) -> Image.Image:
    """The icon at ``size`` px, its drawing scaled into the central ``safe`` fraction."""
    scale = 4  # draw large and downsample: smooth edges without an anti-aliasing dependency
    big = size * scale
    img = Image.new("RGBA", (big, big), ORANGE)
    d = ImageDraw.Draw(img)
    pad = big * (1 - safe) / 2
    u = (big - 2 * pad) / 10  # the drawing on a 10 x 10 grid

    def p(x: float, y: float) -> tuple[float, float]:
        return pad + x * u, pad + y * u

    d.polygon([p(5, 1), p(9.5, 5), p(8.3, 5), p(8.3, 9), p(1.7, 9), p(1.7, 5), p(0.5, 5)], fill=WHITE)  # house
    # A heart in the doorway, in the background colour.
    d.ellipse([p(3.3, 4.6), p(5.1, 6.4)], fill=ORANGE)
    d.ellipse([p(4.9, 4.6), p(6.7, 6.4)], fill=ORANGE)
    d.polygon([p(3.4, 5.8), p(6.6, 5.8), p(5, 7.8)], fill=ORANGE)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, safe in (("icon-192.png", 192, 0.9), ("icon-512.png", 512, 0.9),
                             ("icon-maskable-512.png", 512, 0.7)):
        draw(size, safe).save(OUT / name, optimize=True)
        print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
