"""A 3×5 pixel font that writes a site's name into a bot's video, for the people watching.

The machine-readable part of a frame is the stamp (`diemcau.sim.stamps`); this text is
only so that a person looking at the chair console or the video wall can tell which
site a bot stands in for. Text is folded to ASCII capitals first (``diemcau.text.fold``).
"""

from __future__ import annotations

from diemcau.sim.stamps import Luma
from diemcau.text import fold

__all__ = ["TEXT_SCALE", "draw_text"]

# Rows top to bottom, "#" lit.
_GLYPHS: dict[str, str] = {
    "0": "### #.# #.# #.# ###",
    "1": ".#. ##. .#. .#. ###",
    "2": "### ..# ### #.. ###",
    "3": "### ..# ### ..# ###",
    "4": "#.# #.# ### ..# ..#",
    "5": "### #.. ### ..# ###",
    "6": "### #.. ### #.# ###",
    "7": "### ..# ..# ..# ..#",
    "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ###",
    "A": ".#. #.# ### #.# #.#",
    "B": "##. #.# ##. #.# ##.",
    "C": "### #.. #.. #.. ###",
    "D": "##. #.# #.# #.# ##.",
    "E": "### #.. ### #.. ###",
    "F": "### #.. ### #.. #..",
    "G": "### #.. #.# #.# ###",
    "H": "#.# #.# ### #.# #.#",
    "I": "### .#. .#. .#. ###",
    "J": "..# ..# ..# #.# ###",
    "K": "#.# #.# ##. #.# #.#",
    "L": "#.. #.. #.. #.. ###",
    "M": "#.# ### ### #.# #.#",
    "N": "##. #.# #.# #.# #.#",
    "O": "### #.# #.# #.# ###",
    "P": "### #.# ### #.. #..",
    "Q": "### #.# #.# ### ..#",
    "R": "### #.# ##. #.# #.#",
    "S": "### #.. ### ..# ###",
    "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###",
    "V": "#.# #.# #.# #.# .#.",
    "W": "#.# #.# ### ### #.#",
    "X": "#.# #.# .#. #.# #.#",
    "Y": "#.# #.# .#. .#. .#.",
    "Z": "### ..# .#. #.. ###",
    "-": "... ... ### ... ...",
    " ": "... ... ... ... ...",
    ".": "... ... ... ... .#.",
}
TEXT_SCALE = 3  # each font pixel is drawn as a 3×3 square
_DARK, _LIGHT = 16, 235  # video-range luma


def draw_text(luma: Luma, text: str, top: int) -> None:
    """Draw ``text`` in white on a black band starting at row ``top`` of a luma plane.

    Characters the font lacks are drawn as a dot; what does not fit the width is cut.
    """
    width = luma.shape[1]
    chars = fold(text).upper()[: width // (4 * TEXT_SCALE)]
    band = 5 * TEXT_SCALE
    luma[max(0, top - 4) : top + band + 4, :] = _DARK
    for i, ch in enumerate(chars):
        rows = _GLYPHS.get(ch, _GLYPHS["."]).split()
        x0 = 4 + i * 4 * TEXT_SCALE
        for r, row in enumerate(rows):
            for c, px in enumerate(row):
                if px == "#":
                    y = top + r * TEXT_SCALE
                    x = x0 + c * TEXT_SCALE
                    luma[y : y + TEXT_SCALE, x : x + TEXT_SCALE] = _LIGHT
