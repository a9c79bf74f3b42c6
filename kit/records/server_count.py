"""What a server the kit did not start counted for the run's images (``perf.server_count``).

Written by kit.perf.calibration before the first point, read back by the report: the run's
image sizes, the server's prompt tokens for one small request against the kit's count of
the same prompt, and, where one exists, the value of the family's processor setting that
gives the server's count (the server's own setting, learned rather than assumed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit.records.base import ResultsError, mapping


@dataclass(frozen=True)
class ServerCount:
    image_sizes: tuple[tuple[int, int], ...]  # (width, height) of each of the run's images
    server_tokens: int  # the server's prompt tokens for the calibration request
    kit_tokens: int  # the kit's count of the same prompt with the run's parameters
    kit_image_tokens: int  # of which the images, as the kit counted them
    kit_setting: str  # what the kit counted with, e.g. "num_crops 1"
    matches: str | None = None  # the setting whose count gives the server's, e.g. "num_crops 4"

    @property
    def offset(self) -> int:
        """Tokens the server counts beyond the kit's: added to every prompt the kit builds."""
        return self.server_tokens - self.kit_tokens

    @property
    def server_image_tokens(self) -> int:
        return self.kit_image_tokens + self.offset

    def describe(self) -> str:
        sizes = " + ".join(f"{w}x{h}" for w, h in self.image_sizes) or "no image"
        counted = f"The server counts {self.server_image_tokens} tokens for {sizes}"
        if self.offset == 0:
            return f"{counted}, as the kit does with {self.kit_setting}."
        setting = (
            f"its setting matches {self.matches}"
            if self.matches
            else "the server's processor settings or chat template differ from the model folder's"
        )
        return (
            f"{counted} where the kit counts {self.kit_image_tokens} with {self.kit_setting}: "
            f"{setting}. Every prompt is built to input_len by the server's count."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_sizes": [list(size) for size in self.image_sizes],
            "server_tokens": self.server_tokens,
            "kit_tokens": self.kit_tokens,
            "kit_image_tokens": self.kit_image_tokens,
            "server_image_tokens": self.server_image_tokens,
            "kit_setting": self.kit_setting,
            "matches": self.matches,
            "offset": self.offset,
        }

    @classmethod
    def of(cls, section: Any) -> ServerCount | None:
        section = mapping(section)
        if not section:
            return None
        try:
            return cls(
                image_sizes=tuple((int(w), int(h)) for w, h in section.get("image_sizes") or ()),
                server_tokens=int(section["server_tokens"]),
                kit_tokens=int(section["kit_tokens"]),
                kit_image_tokens=int(section["kit_image_tokens"]),
                kit_setting=str(section.get("kit_setting") or ""),
                matches=section.get("matches"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResultsError(f"perf.server_count is malformed ({exc!r})") from None
