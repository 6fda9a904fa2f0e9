"""The CJK font for previews and the LCD, found by a fixed list of paths."""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import ImageFont

# Debian's fonts-wqy-microhei first (the setup script installs it), then common alternatives.
CJK_FONT_PATHS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
)


class FontMissing(FileNotFoundError):
    pass


def find_cjk_font(paths: tuple[Path, ...] = CJK_FONT_PATHS) -> Path:
    for path in paths:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in paths)
    raise FontMissing(
        f"no CJK font found (tried {tried}); "
        "install it with: sudo apt-get install fonts-wqy-microhei"
    )


@functools.cache
def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(find_cjk_font()), size)
