"""Small colour LCD for the customer: member, tier, points balance and the current prompt.

Real panels go through luma.lcd over SPI (ST7735, ST7789, ILI9341); the simulated one is
``luma.core.device.dummy``, which keeps the last frame as an image. Frames are drawn by
:func:`render_frame`, a pure function, so goldens compare exactly what a panel receives.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from terminal.drivers.fonts import cjk_font
from terminal.drivers.reconnect import OutputDevice
from terminal.drivers.settings import LcdConfig


@dataclass(frozen=True)
class LcdFrame:
    member: str | None  # display name, None before a member is identified
    tier: str | None
    balance: int | None  # points
    prompt: str


_BACKGROUND = (16, 24, 48)
_ACCENT = (255, 196, 0)
_TEXT = (240, 240, 240)


def render_frame(frame: LcdFrame, size: tuple[int, int]) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size, _BACKGROUND)
    draw = ImageDraw.Draw(image)
    unit = max(10, height // 8)
    small, large = cjk_font(unit), cjk_font(unit * 3 // 2)
    margin = unit // 2
    if frame.member is None:
        draw.text((margin, margin), "欢迎 Welcome", font=large, fill=_TEXT)
    else:
        draw.text((margin, margin), _fit(draw, frame.member, large, width - 2 * margin),
                  font=large, fill=_TEXT)
        if frame.tier:
            draw.text((margin, margin + unit * 2), _fit(draw, frame.tier, small, width),
                      font=small, fill=_ACCENT)
    if frame.balance is not None:
        draw.text((margin, margin + unit * 3 + unit // 2), f"积分 {frame.balance:,}",
                  font=large, fill=_ACCENT)
    bar = height - unit * 2
    draw.rectangle((0, bar, width, height), fill=_TEXT)
    draw.text((margin, bar + unit // 3), _fit(draw, frame.prompt, small, width - 2 * margin),
              font=small, fill=_BACKGROUND)
    return image


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    # Cut long names with an ellipsis rather than drawing off the panel.
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


class SimulatedPanel:
    """The dummy back-end's panel: luma's ``dummy`` device (it keeps the last frame as
    ``image``) behind a ``connected`` switch, as the simulated printer has: unplugged, frames
    and opening fail with OSError as a panel gone from the SPI bus would."""

    def __init__(self, config: LcdConfig) -> None:
        from luma.core.device import dummy

        self.connected = True
        self.device = dummy(width=config.width, height=config.height, rotate=config.rotate,
                            mode="RGB")

    def open(self) -> Any:
        self._check()
        return self

    @property
    def size(self) -> tuple[int, int]:
        return self.device.size  # type: ignore[no-any-return]

    @property
    def image(self) -> Image.Image | None:
        return self.device.image  # type: ignore[no-any-return]

    def display(self, image: Image.Image) -> None:
        self._check()
        self.device.display(image)

    def cleanup(self) -> None:
        """The panel stays (it is the hardware); only the connection to it goes."""

    def _check(self) -> None:
        if not self.connected:
            raise OSError("simulated LCD unplugged")


class Lcd(OutputDevice):
    """Keeps the last frame asked for and shows it again whenever the panel is (re)opened."""

    kind = "LCD"

    def __init__(self, config: LcdConfig) -> None:
        super().__init__("lcd")
        self.config = config
        self.device: Any = None
        self.simulator: SimulatedPanel | None = None
        self.frame: LcdFrame | None = None  # the last frame asked for, shown or not
        self.last_frame: Image.Image | None = None  # the last image the panel received

    def _errors(self) -> tuple[type[Exception], ...]:
        from luma.core.error import Error as LumaError

        return (OSError, RuntimeError, LumaError)  # RuntimeError: GPIO not available

    def _open(self) -> None:
        config = self.config
        if config.backend == "dummy":
            if self.simulator is None:
                self.simulator = SimulatedPanel(config)
            self.device = self.simulator.open()
        else:
            from luma.core.interface.serial import spi
            from luma.lcd import device as panels

            bus = spi(port=config.spi_port, device=config.spi_device, gpio_DC=config.gpio_dc,
                      gpio_RST=config.gpio_rst, bus_speed_hz=config.bus_speed_hz)
            self.device = getattr(panels, config.backend)(bus, width=config.width,
                                                          height=config.height,
                                                          rotate=config.rotate)
        if self.frame is not None:
            self._push(render_frame(self.frame, self.device.size))

    def _release(self) -> None:
        device, self.device = self.device, None
        if device is not None:
            with contextlib.suppress(Exception):  # a panel gone from the bus
                device.cleanup()

    def show(self, frame: LcdFrame) -> Image.Image:
        """Draw ``frame``; raises OSError if the panel is absent (the frame is kept for later)."""
        self.frame = frame
        if self.device is None:
            raise OSError(f"LCD {self.state}")
        image = render_frame(frame, self.device.size)  # a font missing is no device fault
        try:
            self._push(image)
        except self._errors() as exc:
            self._lost(exc)
            raise OSError(f"LCD {self.state}") from exc
        return image

    def _push(self, image: Image.Image) -> None:
        self.device.display(image)
        self.last_frame = image

    async def update(self, frame: LcdFrame) -> bool:
        """``show`` on the LCD's own thread (an SPI frame push takes tens of milliseconds);
        False if the panel is absent (it shows the frame on return)."""
        return await self.executor.run(self._update, frame)

    def _update(self, frame: LcdFrame) -> bool:
        try:
            self.show(frame)
        except OSError:
            return False  # reported by show; the retry timer brings the panel back
        return True

    def save_png(self, path: str | Path) -> Path:
        if self.last_frame is None:
            raise ValueError("no frame has been shown yet")
        path = Path(path)
        self.last_frame.save(path, format="PNG")
        return path


def open_lcd(config: LcdConfig) -> Lcd:
    return Lcd(config)
