"""Recall, precision and mask coverage of the frame anonymiser on labelled and synthetic sets.

Usage:
    python bench/vision_eval.py            # a table
    python bench/vision_eval.py --json     # one JSON line: {"sets": {NAME: {...}}}

Sets: ``ccpd_samples`` and ``dlib_faces`` as labelled, plus harder sets built here at run time from
those same images (nothing is written to disk unless ``--dump DIR`` asks): ``street_small`` (1280x720
scenes with small and frame-cut faces and plates composited onto CCPD street backgrounds),
``street_night`` (the same scenes darkened with sensor noise), ``street_motion`` (the same scenes with
linear motion blur), ``frame_sizes`` (frames 320-1920 px wide scaled and cropped out of larger scenes
and the photos, plates 30-500 px wide, faces 10-300 px) and the European sets ``eu_photos``,
``eu_street`` and ``eu_sizes`` (the same with synthesised EU plates, bench/vision_sets.py). See
bench/README.md, section "Vision". ``--json`` adds recall and coverage per label-width band.

A labelled box counts as found when a detection of the same kind overlaps it at IoU >= 0.5 (greedy, one
detection per label); coverage is the fraction of a labelled box's pixels inside the anonymisation mask,
averaged over labelled boxes (missed ones included).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from onshore.vision.anonymize import DEFAULT_PADDING, masked_regions
from onshore.vision.detectors import Box, Detector, build_detector
from vision_sets import FACE_BANDS, PLATE_BANDS, LabelledFrame, build_size_frames, eu_photos

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"
SCENE_SIZE = (1280, 720)
IOU_MATCH = 0.5


def load_labelled_set(folder: Path) -> list[LabelledFrame]:
    """Every labelled image of ``folder`` (``labels.csv``), skipping rows flagged ``ignore=1``."""
    labels: dict[str, list[tuple[str, float, float, float, float]]] = {}
    with open(folder / "labels.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if "ignore=1" in row.get("extra", ""):
                continue
            box = tuple(float(row[key]) for key in ("x1", "y1", "x2", "y2"))
            labels.setdefault(row["file"], []).append((row["kind"], *box))
    frames = []
    for name in sorted(labels):
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is not None:
            frames.append(LabelledFrame(name, image, labels[name]))
    return frames


def load_plate_corners(folder: Path) -> dict[str, np.ndarray]:
    """``file -> (4, 2)`` plate corners (top-left, top-right, bottom-right, bottom-left) from ``labels.csv``.

    CCPD lists its corners bottom-right, bottom-left, top-left, top-right.
    """
    corners = {}
    with open(folder / "labels.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            points = [float(value) for value in row.get("poly", "").split()]
            if row["kind"] == "plate" and len(points) == 8:
                br, bl, tl, tr = np.array(points, dtype=np.float32).reshape(4, 2)
                corners[row["file"]] = np.stack([tl, tr, br, bl])
    return corners


# ---------------------------------------------------------------- harder synthetic sets


def _feathered_alpha(width: int, height: int, elliptic: bool) -> np.ndarray:
    """A 0-1 mask that fades to zero at the border, so pasted patches leave no hard seam."""
    alpha = np.zeros((height, width), dtype=np.float32)
    if elliptic:
        cv2.ellipse(alpha, (width // 2, height // 2), (int(width * 0.42), int(height * 0.45)), 0, 0, 360, 1, -1)
    else:
        inset_x, inset_y = max(1, width // 8), max(1, height // 8)
        alpha[inset_y : height - inset_y, inset_x : width - inset_x] = 1
    sigma = max(1.0, min(width, height) / 12)
    return cv2.GaussianBlur(alpha, (0, 0), sigma)[..., np.newaxis]


def _patch(
    source: LabelledFrame, label: tuple[str, float, float, float, float], margin_x: float, margin_y: float
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The labelled object with context around it, and the object's box inside that patch."""
    _, x1, y1, x2, y2 = label
    height, width = source.image.shape[:2]
    pad_x, pad_y = (x2 - x1) * margin_x, (y2 - y1) * margin_y
    px1, py1 = int(max(0, x1 - pad_x)), int(max(0, y1 - pad_y))
    px2, py2 = int(min(width, x2 + pad_x)), int(min(height, y2 + pad_y))
    return source.image[py1:py2, px1:px2], (x1 - px1, y1 - py1, x2 - px1, y2 - py1)


def _overlaps(box: tuple[float, float, float, float], taken: list[tuple[float, float, float, float]]) -> bool:
    return any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken)


def _paste(
    scene: LabelledFrame,
    kind: str,
    patch: np.ndarray,
    inner: tuple[float, float, float, float],
    target_width: float,
    partial: bool,
    taken: list[tuple[float, float, float, float]],
    rng: np.random.Generator,
) -> None:
    """Scale ``patch`` so its object is ``target_width`` wide and blend it into a free spot of ``scene``.

    With ``partial`` the object is placed so that 35-60 % of it falls outside one frame edge; its label is
    then the visible part.
    """
    scale = target_width / (inner[2] - inner[0])
    patch = cv2.resize(
        patch,
        (max(2, round(patch.shape[1] * scale)), max(2, round(patch.shape[0] * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    ox1, oy1, ox2, oy2 = (value * scale for value in inner)
    scene_height, scene_width = scene.image.shape[:2]
    patch_height, patch_width = patch.shape[:2]
    for _ in range(50):
        x = rng.uniform(0, scene_width - patch_width)
        y = rng.uniform(scene_height * (0.3 if partial else 0.15), scene_height - patch_height)
        if partial:
            cut = rng.uniform(0.35, 0.6)
            edge = rng.choice(["left", "right", "bottom"])
            if edge == "left":
                x = -(ox1 + cut * (ox2 - ox1))
            elif edge == "right":
                x = scene_width - (ox1 + (1 - cut) * (ox2 - ox1))
            else:
                y = scene_height - (oy1 + (1 - cut) * (oy2 - oy1))
        x, y = int(x), int(y)
        label = (max(0.0, x + ox1), max(0.0, y + oy1), min(scene_width, x + ox2), min(scene_height, y + oy2))
        area = (label[2] - label[0]) * (label[3] - label[1])
        footprint = (x, y, x + patch_width, y + patch_height)
        if area > 0 and not _overlaps(footprint, taken):
            break
    else:
        return
    taken.append(footprint)
    # Blend only the part of the patch that lands inside the scene.
    sx1, sy1 = max(0, x), max(0, y)
    sx2, sy2 = min(scene_width, x + patch_width), min(scene_height, y + patch_height)
    piece = patch[sy1 - y : sy2 - y, sx1 - x : sx2 - x].astype(np.float32)
    alpha = _feathered_alpha(patch_width, patch_height, elliptic=kind == "face")[sy1 - y : sy2 - y, sx1 - x : sx2 - x]
    target = scene.image[sy1:sy2, sx1:sx2].astype(np.float32)
    scene.image[sy1:sy2, sx1:sx2] = (alpha * piece + (1 - alpha) * target).astype(np.uint8)
    scene.labels.append((kind, *label))


def _add_background_photo(
    scene: LabelledFrame, photo: LabelledFrame, left: int, taken: list[tuple[float, float, float, float]]
) -> None:
    """Scale a CCPD photo to the scene's height and place it with its left edge at ``left``.

    Its plate stays labelled (clipped to the scene if the photo is).
    """
    scene_height, scene_width = scene.image.shape[:2]
    scale = scene_height / photo.image.shape[0]
    resized = cv2.resize(photo.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x1, x2 = max(0, left), min(scene_width, left + resized.shape[1])
    scene.image[:, x1:x2] = resized[:scene_height, x1 - left : x2 - left]
    for kind, bx1, by1, bx2, by2 in photo.labels:
        box = (max(0.0, bx1 * scale + left), by1 * scale, min(float(scene_width), bx2 * scale + left), by2 * scale)
        if box[2] - box[0] > 0.3 * (bx2 - bx1) * scale:
            scene.labels.append((kind, *box))
            taken.append(box)


def build_street_scenes(
    plate_frames: list[LabelledFrame],
    face_frames: list[LabelledFrame],
    count: int,
    seed: int,
    size: tuple[int, int] = SCENE_SIZE,
) -> list[LabelledFrame]:
    """``count`` 1280x720 scenes: a CCPD street background plus small and frame-cut faces and plates.

    Background: CCPD photos scaled to 720 px high, side by side like a row of parked cars (their plates
    stay labelled, 60-210 px wide; one cut by the right edge is labelled by its visible part if at least
    30 % of it shows). Pasted on it: 3-4 plates from other CCPD photos with their car around them, 40-130 px wide,
    and 5-7 faces from the dlib photos with some head and shoulders, 20-64 px wide (dlib boxes span
    eyebrows to chin). About one object in four is cut by the frame edge. ``size`` (width, height) makes
    larger scenes, the sources of the frame-size sets.
    """
    rng = np.random.default_rng(seed)
    plate_labels = [(frame, label) for frame in plate_frames for label in frame.labels if label[0] == "plate"]
    face_labels = [(frame, label) for frame in face_frames for label in frame.labels if label[0] == "face"]
    scene_width, scene_height = size
    scenes = []
    for index in range(count):
        scene = LabelledFrame(f"street_{index:03d}", np.zeros((scene_height, scene_width, 3), dtype=np.uint8))
        taken: list[tuple[float, float, float, float]] = []
        left = -int(rng.integers(0, 120))
        while left < scene_width:
            _add_background_photo(scene, plate_frames[rng.integers(len(plate_frames))], left, taken)
            left += round(scene_height / 1160 * 720)
        for _ in range(rng.integers(3, 5)):
            frame, label = plate_labels[rng.integers(len(plate_labels))]
            patch, inner = _patch(frame, label, margin_x=0.5, margin_y=1.0)
            width = float(np.exp(rng.uniform(np.log(40), np.log(130))))
            _paste(scene, "plate", patch, inner, width, rng.random() < 0.25, taken, rng)
        for _ in range(rng.integers(5, 8)):
            frame, label = face_labels[rng.integers(len(face_labels))]
            patch, inner = _patch(frame, label, margin_x=0.6, margin_y=0.8)
            width = float(np.exp(rng.uniform(np.log(20), np.log(64))))
            _paste(scene, "face", patch, inner, width, rng.random() < 0.25, taken, rng)
        scenes.append(scene)
    return scenes


def darken_for_night(scene: LabelledFrame, rng: np.random.Generator) -> LabelledFrame:
    """The scene at night: gamma 1.5, 30-45 % of the light, a blue cast and sensor noise (sigma 6-10)."""
    light = (scene.image.astype(np.float32) / 255) ** 1.5 * rng.uniform(0.30, 0.45) * 255
    light *= np.array([1.1, 0.95, 0.85], dtype=np.float32)
    light += rng.normal(0, rng.uniform(6, 10), light.shape).astype(np.float32)
    return LabelledFrame(scene.name + "_night", np.clip(light, 0, 255).astype(np.uint8), list(scene.labels))


def add_motion_blur(scene: LabelledFrame, rng: np.random.Generator) -> LabelledFrame:
    """The scene shot while moving: a linear blur 9-17 px long within 30 degrees of horizontal."""
    length = int(rng.integers(9, 18))
    kernel = np.zeros((length, length), dtype=np.float32)
    kernel[length // 2, :] = 1
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(-30, 30), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    kernel /= kernel.sum()
    blurred = cv2.filter2D(scene.image, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return LabelledFrame(scene.name + "_motion", blurred, list(scene.labels))


# ---------------------------------------------------------------- scoring


def _iou(label: tuple[float, float, float, float], box: Box) -> float:
    inter_x = max(0.0, min(label[2], box.x2) - max(label[0], box.x1))
    inter_y = max(0.0, min(label[3], box.y2) - max(label[1], box.y1))
    inter = inter_x * inter_y
    union = (label[2] - label[0]) * (label[3] - label[1]) + box.width * box.height - inter
    return inter / union if union > 0 else 0.0


def score_set(
    detector: Detector, frames: list[LabelledFrame], padding: dict | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """Recall and precision at IoU >= 0.5 and mask coverage per kind present, and the label counts.

    The metrics also hold ``labels`` (count per kind) and ``bands``: recall and coverage per kind and
    label-width band (`width_band`).
    """
    padding = dict(DEFAULT_PADDING) if padding is None else padding
    totals: dict[str, dict[str, float]] = {}
    bands: dict[str, dict[str, dict[str, float]]] = {}
    for frame in frames:
        height, width = frame.image.shape[:2]
        boxes = detector.detect([frame.image])[0]
        mask = np.zeros((height, width), dtype=bool)
        for region in masked_regions(boxes, width, height, padding):
            mask[region.y1 : region.y2, region.x1 : region.x2] = True
        for kind in {label[0] for label in frame.labels}:
            labels = [label[1:] for label in frame.labels if label[0] == kind]
            found = [box for box in boxes if box.kind == kind]
            pairs = sorted(
                ((_iou(label, box), li, bi) for li, label in enumerate(labels) for bi, box in enumerate(found)),
                reverse=True,
            )
            used_labels: set[int] = set()
            used_boxes: set[int] = set()
            for overlap, li, bi in pairs:
                if overlap >= IOU_MATCH and li not in used_labels and bi not in used_boxes:
                    used_labels.add(li)
                    used_boxes.add(bi)
            total = totals.setdefault(kind, {"labels": 0, "found": 0, "matched": 0, "coverage": 0.0})
            total["labels"] += len(labels)
            total["found"] += len(found)
            total["matched"] += len(used_labels)
            for li, (x1, y1, x2, y2) in enumerate(labels):
                cells = mask[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
                coverage = float(cells.mean()) if cells.size else 1.0
                total["coverage"] += coverage
                band = bands.setdefault(kind, {}).setdefault(
                    width_band(kind, x2 - x1), {"labels": 0, "matched": 0, "coverage": 0.0}
                )
                band["labels"] += 1
                band["matched"] += li in used_labels
                band["coverage"] += coverage
    metrics: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for kind, total in sorted(totals.items()):
        metrics[f"{kind}_recall"] = round(total["matched"] / total["labels"], 4)
        metrics[f"{kind}_precision"] = round(total["matched"] / total["found"], 4) if total["found"] else 1.0
        metrics[f"{kind}_coverage"] = round(total["coverage"] / total["labels"], 4)
        counts[kind] = int(total["labels"])
    metrics["labels"] = counts
    metrics["bands"] = {
        kind: {
            name: {
                "labels": int(band["labels"]),
                "recall": round(band["matched"] / band["labels"], 4),
                "coverage": round(band["coverage"] / band["labels"], 4),
            }
            for name, band in sorted(per_kind.items(), key=lambda item: _band_order(kind, item[0]))
        }
        for kind, per_kind in sorted(bands.items())
    }
    return metrics, counts


def _band_names(kind: str) -> list[str]:
    edges = [high for _, high in (PLATE_BANDS if kind == "plate" else FACE_BANDS)][:-1]
    return [f"<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:], strict=False)] + [f">={edges[-1]:g}"]


def _band_order(kind: str, name: str) -> int:
    return _band_names(kind).index(name)


def width_band(kind: str, width: float) -> str:
    """The width band of a labelled box: plates <50, 50-100, 100-200, >=200 px; faces <24, 24-64, 64-160, >=160."""
    edges = [high for _, high in (PLATE_BANDS if kind == "plate" else FACE_BANDS)][:-1]
    names = _band_names(kind)
    for edge, name in zip(edges, names, strict=False):
        if width < edge:
            return name
    return names[-1]


SET_NAMES = (
    "ccpd_samples",
    "dlib_faces",
    "street_small",
    "street_night",
    "street_motion",
    "frame_sizes",
    "eu_photos",
    "eu_street",
    "eu_sizes",
)
BIG_SCENE_SIZE = (2560, 1440)


def build_sets(
    data_dir: Path, scenes: int, seed: int, names: tuple[str, ...] = SET_NAMES, size_frames: int = 80
) -> dict[str, list[LabelledFrame]]:
    """The labelled sets and the synthetic ones derived from them (bench/README.md), those in ``names``.

    The seeds of the shipped sets are those they had before the frame-size and EU sets were added, so
    their pixels are unchanged; every new set has its own seed derived from ``seed``.
    """
    plates = load_labelled_set(data_dir / "ccpd_samples")
    faces = load_labelled_set(data_dir / "dlib_faces")
    street = build_street_scenes(plates, faces, scenes, seed)
    rng = np.random.default_rng(seed + 1)
    sets = {
        "ccpd_samples": plates,
        "dlib_faces": faces,
        "street_small": street,
        "street_night": [darken_for_night(scene, rng) for scene in street],
        "street_motion": [add_motion_blur(scene, rng) for scene in street],
    }
    if "frame_sizes" in names:
        big = build_street_scenes(plates, faces, 12, seed + 2, size=BIG_SCENE_SIZE)
        sets["frame_sizes"] = build_size_frames([*big, *plates, *faces], size_frames, seed + 3, "size")
    if {"eu_photos", "eu_street", "eu_sizes"} & set(names):
        european = eu_photos(load_plate_corners(data_dir / "ccpd_samples"), plates, seed + 4)
        sets["eu_photos"] = european
        sets["eu_street"] = build_street_scenes(european, faces, scenes, seed + 5)
        if "eu_sizes" in names:
            big = build_street_scenes(european, faces, 12, seed + 6, size=BIG_SCENE_SIZE)
            sets["eu_sizes"] = build_size_frames([*big, *european, *faces], size_frames, seed + 7, "eu_size")
    return {name: frames for name, frames in sets.items() if name in names}


def dump_set(folder: Path, frames: list[LabelledFrame]) -> None:
    """Write ``frames`` as PNG files and a ``labels.csv`` (the shared sets' columns) into ``folder``.

    For looking at a set or running ``onshore vision detect`` on it; never commit what it writes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "labels.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "kind", "x1", "y1", "x2", "y2", "poly", "text", "extra"])
        for frame in frames:
            cv2.imwrite(str(folder / f"{frame.name}.png"), frame.image)
            for kind, x1, y1, x2, y2 in frame.labels:
                writer.writerow([f"{frame.name}.png", kind, *(round(v, 1) for v in (x1, y1, x2, y2)), "", "", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder holding ccpd_samples/ and dlib_faces/")
    parser.add_argument("--scenes", type=int, default=40, help="synthetic street scenes per harder set")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--detector", default="faces-and-plates")
    parser.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    parser.add_argument("--size-frames", type=int, default=80, help="frames per frame-size set")
    parser.add_argument("--dump", type=Path, help="also write every frame and its labels here (for a look)")
    args = parser.parse_args()
    if not (args.data / "ccpd_samples" / "labels.csv").is_file():
        print(f"evaluation images not found under {args.data}; pass --data", file=sys.stderr)
        return 2
    names = tuple(args.sets.split(",")) if args.sets else SET_NAMES
    unknown = sorted(set(names) - set(SET_NAMES))
    if unknown:
        print(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SET_NAMES)}", file=sys.stderr)
        return 2
    detector = build_detector(args.detector, threads=2)
    results = {}
    counts = {}
    for name, frames in build_sets(args.data, args.scenes, args.seed, names, args.size_frames).items():
        if args.dump:
            dump_set(args.dump / name, frames)
        results[name], counts[name] = score_set(detector, frames)
    if args.json:
        print(json.dumps({"sets": results}))
        return 0
    for name, metrics in results.items():
        labelled = ", ".join(f"{count} {kind}s" for kind, count in counts[name].items())
        flat = {key: value for key, value in metrics.items() if key not in ("labels", "bands")}
        print(f"{name:14s} ({labelled}) " + "  ".join(f"{key}={value}" for key, value in flat.items()))
        for kind, per_band in metrics["bands"].items():
            cells = "  ".join(
                f"{band}: n={v['labels']} r={v['recall']:.3f} c={v['coverage']:.3f}" for band, v in per_band.items()
            )
            print(f"{'':14s}   {kind:5s} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
