"""Simulated camera frames: synthetic road and cabin pictures, uploaded like a vehicle does.

The pictures are drawn (sky, road, lane marks, boxes for cars), so they hold no real person or plate;
they exercise the frame path — classification, zone drop, consent, anonymisation, storage — not the
detectors' recall, which `bench/vision_eval.py` measures on labelled photos.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import cv2
import httpx
import numpy as np

from onshore.vision.ingest import POSITION_HEADER

# inside the illustrative sensitive zone of cn-auto (Guiyang) and in a plain street (Shanghai)
ZONE_POSITION = (26.6475, 106.71)
PLAIN_POSITION = (31.2304, 121.4737)


def synthetic_frame(seed: int, *, cabin: bool = False, width: int = 1280, height: int = 720) -> bytes:
    """A JPEG of a drawn road scene (or a plain cabin interior), different for every ``seed``."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), dtype=np.uint8)
    if cabin:
        image[:] = (40, 42, 48)
        cv2.rectangle(image, (width // 5, height // 3), (4 * width // 5, height), (70, 70, 75), -1)  # seats
    else:
        horizon = height // 2
        sky = np.linspace(235, 170, horizon, dtype=np.float32)[:, None]
        image[:horizon] = np.stack([sky + 10, sky, sky - 30], axis=-1).astype(np.uint8)
        image[horizon:] = (90, 92, 95)
        for x in range(0, width, 160):  # lane marks
            cv2.line(image, (x + 40, height - 80), (x + 100, height - 80), (230, 230, 230), 6)
        for _ in range(int(rng.integers(2, 5))):  # cars as boxes
            x, w = int(rng.integers(0, width - 200)), int(rng.integers(120, 260))
            y = int(rng.integers(horizon, height - 120))
            colour = tuple(int(c) for c in rng.integers(30, 220, 3))
            cv2.rectangle(image, (x, y), (x + w, y + w // 2), colour, -1)
    noise = rng.normal(0, 3, image.shape)
    image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


@dataclass
class FrameRunSummary:
    """What the server answered to the simulated frames."""

    sent: int = 0
    stored: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    faces: int = 0
    plates: int = 0
    errors_by_status: Counter[int] = field(default_factory=Counter)


def send_frames(base_url: str, tokens: dict[str, str], *, ts_ms: int, timeout_s: float = 60.0) -> FrameRunSummary:
    """Upload, for each vehicle token, a road frame in a plain street, one inside the sensitive zone, and a
    cabin frame; return the tally of the answers."""
    summary = FrameRunSummary()
    with httpx.Client(base_url=base_url, timeout=timeout_s) as client:
        for n, token in enumerate(tokens.values()):
            shots: list[tuple[str, str, tuple[float, float], bool]] = [
                ("front", f"cam-{n}-front", PLAIN_POSITION, False),
                ("front", f"cam-{n}-zone", ZONE_POSITION, False),
                ("cabin", f"cam-{n}-cabin", PLAIN_POSITION, True),
            ]
            for camera, msg_id, (lat, lon), cabin in shots:
                params: dict[str, Any] = {"msg_id": msg_id, "camera": camera, "ts": ts_ms}
                response = client.post(
                    "/v1/frames",
                    params=params,
                    content=synthetic_frame(n * 3 + len(summary.dropped), cabin=cabin),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "image/jpeg",
                        POSITION_HEADER: f"{lat},{lon}",  # a header: positions never travel in a query string
                    },
                )
                summary.sent += 1
                if response.status_code != 200:
                    summary.errors_by_status[response.status_code] += 1
                    continue
                body = response.json()
                if body["stored"]:
                    summary.stored += 1
                    summary.faces += body["faces"]
                    summary.plates += body["plates"]
                elif body["dropped"]:
                    summary.dropped[body["dropped"]] += 1
    return summary
