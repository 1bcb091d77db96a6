"""HyperLPR's mininet plate SSD (a Caffe model) run with onnxruntime instead of OpenCV DNN.

The Caffe files are turned into an ONNX graph in memory when a detector is built: the prototxt is read
here, the weights through OpenCV (``cv2.dnn.readNetFromCaffe``), and the graph holds the convolutions and
ReLUs up to the twelve prediction heads. What Caffe's ``PriorBox`` and ``DetectionOutput`` layers do after
them (priors, box decoding, per-class NMS with ``top_k`` and ``keep_top_k``) is done in numpy, as OpenCV
does it, so the detections are OpenCV DNN's up to float rounding (tests/vision/test_plate_ssd_net.py). On
one thread the five passes of a 1280x720 frame take half the time (74 against 155 ms; bench/README.md, "Speed").
Nothing is downloaded or written to disk.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from onshore.vision.boxes import non_maximum_suppression
from onshore.vision.sessions import cpu_session

Message = dict[str, list[Any]]


def parse_prototxt(text: str) -> Message:
    """A protobuf text-format message as nested dicts: every field name maps to the list of its values
    (strings, or dicts for sub-messages), in the file's order."""
    tokens = re.findall(r'"[^"]*"|[{}]|[^\s{}:]+:?', re.sub(r"#[^\n]*", "", text))

    def message(index: int) -> tuple[Message, int]:
        fields: Message = {}
        while index < len(tokens) and tokens[index] != "}":
            key = tokens[index]
            if key.endswith(":"):
                fields.setdefault(key[:-1], []).append(tokens[index + 1].strip('"'))
                index += 2
            else:
                sub, index = message(index + 2)  # skip the name and "{"
                fields.setdefault(key, []).append(sub)
                index += 1  # "}"
        return fields, index

    return message(0)[0]


@dataclass(frozen=True, slots=True)
class PriorBoxes:
    """One ``PriorBox`` layer: the prior widths and heights (input px) at each cell, its offset and variances."""

    widths: np.ndarray
    heights: np.ndarray
    offset: float
    variances: np.ndarray


def _prior_boxes(param: Message) -> PriorBoxes:
    """OpenCV's (and Caffe's) priors of one cell: each min size square, the square of sqrt(min * max),
    then min size at each further aspect ratio (1.0 and repeats skipped, inverses added if ``flip``)."""
    ratios: list[float] = []
    flip = param.get("flip", ["true"])[0] == "true"
    for value in map(float, param.get("aspect_ratio", [])):
        if abs(value - 1.0) < 1e-6 or any(abs(value - known) < 1e-6 for known in ratios):
            continue
        ratios.extend([value, 1.0 / value] if flip else [value])
    widths: list[float] = []
    heights: list[float] = []
    max_sizes = [float(value) for value in param.get("max_size", [])]
    for index, min_size in enumerate(float(value) for value in param["min_size"]):
        sizes = [(min_size, min_size)]
        if max_sizes:
            side = float(np.sqrt(np.float32(min_size) * np.float32(max_sizes[index])))
            sizes.append((side, side))
        sizes.extend((min_size * float(np.sqrt(ratio)), min_size / float(np.sqrt(ratio))) for ratio in ratios)
        widths.extend(size[0] for size in sizes)
        heights.extend(size[1] for size in sizes)
    return PriorBoxes(
        np.array(widths, dtype=np.float32),
        np.array(heights, dtype=np.float32),
        float(param.get("offset", ["0.5"])[0]),
        np.array([float(value) for value in param["variance"]], dtype=np.float32),
    )


class PlateSSDNet:
    """The plate SSD on onnxruntime: `forward` returns what OpenCV DNN's ``net.forward()[0, 0]`` returns.

    Args:
        prototxt: the Caffe net description (``mininet_ssd_v1.prototxt``).
        caffemodel: its weights.
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, prototxt: str, caffemodel: str, threads: int = 1) -> None:
        layers, model, self._loc_heads, self._conf_heads = _converted(prototxt, caffemodel)
        self._priors = [_prior_boxes(layer["prior_box_param"][0]) for layer in layers if layer["type"][0] == "PriorBox"]
        (output,) = (layer["detection_output_param"][0] for layer in layers if layer["type"][0] == "DetectionOutput")
        nms = output["nms_param"][0]
        self._nms_overlap = float(nms["nms_threshold"][0])
        self._top_k = int(nms["top_k"][0])
        self._keep_top_k = int(output["keep_top_k"][0])
        self._min_confidence = float(output["confidence_threshold"][0])
        self._session = cpu_session(model, threads)
        self._outputs = [*self._loc_heads, *self._conf_heads]
        self._prior_cache: dict[tuple[int, int], np.ndarray] = {}

    def forward(self, blob: np.ndarray, threshold: float) -> np.ndarray:
        """``(n, 7)`` detections of a ``1 x 3 x H x W`` blob scoring above ``threshold``, strongest first.

        Rows are OpenCV's ``[image, label, score, x1, y1, x2, y2]``, corners relative to the input size. The
        rows above ``threshold`` are those OpenCV's would be: NMS and ``top_k``/``keep_top_k`` cut weaker
        boxes only, so filtering at ``threshold`` first keeps the same.
        """
        height, width = blob.shape[2:]
        heads = self._session.run(self._outputs, {"data": blob})
        count = len(self._loc_heads)
        locations = np.concatenate([head.transpose(0, 2, 3, 1).reshape(-1, 4) for head in heads[:count]])
        logits = np.concatenate([head.transpose(0, 2, 3, 1).reshape(-1, 2) for head in heads[count:]])
        scores = 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))
        candidates = np.flatnonzero(scores > max(threshold, self._min_confidence))
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")[: self._top_k]]
        priors = self._prior_corners((width, height), [head.shape[2:] for head in heads[:count]])[candidates]
        corners = self._decoded(locations[candidates], priors)
        keep = non_maximum_suppression(corners, scores[candidates], self._nms_overlap)[: self._keep_top_k]
        result = np.zeros((len(keep), 7), dtype=np.float32)
        result[:, 1] = 1
        result[:, 2] = scores[candidates][keep]
        result[:, 3:] = corners[keep]
        return result

    def _prior_corners(self, size: tuple[int, int], cells: list[tuple[int, ...]]) -> np.ndarray:
        """``(n, 8)`` priors of an input size: relative corners and variances, in the heads' order."""
        cached = self._prior_cache.get(size)
        if cached is None:
            width, height = size
            parts = []
            for layer, (rows, cols) in zip(self._priors, cells, strict=True):
                step_x, step_y = np.float32(width / cols), np.float32(height / rows)
                grid_y, grid_x = np.mgrid[0:rows, 0:cols].astype(np.float32)
                centre_x = ((grid_x + np.float32(layer.offset)) * step_x).reshape(-1, 1)
                centre_y = ((grid_y + np.float32(layer.offset)) * step_y).reshape(-1, 1)
                half_w, half_h = layer.widths / 2, layer.heights / 2
                corners = np.stack(
                    [
                        (centre_x - half_w) / width,
                        (centre_y - half_h) / height,
                        (centre_x + half_w) / width,
                        (centre_y + half_h) / height,
                    ],
                    axis=2,
                ).reshape(-1, 4)
                parts.append(np.concatenate([corners, np.broadcast_to(layer.variances, corners.shape)], axis=1))
            cached = self._prior_cache[size] = np.concatenate(parts).astype(np.float32)
            if len(self._prior_cache) > 16:
                self._prior_cache.pop(next(iter(self._prior_cache)))
        return cached

    @staticmethod
    def _decoded(locations: np.ndarray, priors: np.ndarray) -> np.ndarray:
        """Caffe's CENTER_SIZE decoding of ``(n, 4)`` offsets against ``(n, 8)`` priors (variances not in the
        target): relative corners."""
        prior_w = priors[:, 2] - priors[:, 0]
        prior_h = priors[:, 3] - priors[:, 1]
        prior_x = (priors[:, 0] + priors[:, 2]) / 2
        prior_y = (priors[:, 1] + priors[:, 3]) / 2
        centre_x = priors[:, 4] * locations[:, 0] * prior_w + prior_x
        centre_y = priors[:, 5] * locations[:, 1] * prior_h + prior_y
        half_w = np.exp(priors[:, 6] * locations[:, 2]) * prior_w / 2
        half_h = np.exp(priors[:, 7] * locations[:, 3]) * prior_h / 2
        return np.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w, centre_y + half_h], axis=1)


@functools.lru_cache(maxsize=2)
def _converted(prototxt: str, caffemodel: str) -> tuple[list[Message], bytes, list[str], list[str]]:
    """The prototxt's layers and `_onnx_model`'s graph and heads, converted once per process (not modified)."""
    with open(prototxt, encoding="utf-8") as file:
        layers = parse_prototxt(file.read())["layer"]
    return layers, *_onnx_model(layers, cv2.dnn.readNetFromCaffe(prototxt, caffemodel))


def _onnx_model(layers: list[Message], net: cv2.dnn.Net) -> tuple[bytes, list[str], list[str]]:
    """The serialised ONNX graph of the net's convolutions and ReLUs, and its location and confidence heads.

    A head is what a ``Permute`` layer takes; the location heads feed the concatenation that is
    ``DetectionOutput``'s first input, in its order, the confidence heads the other one.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights = [], []
    tensors = {"data": "data"}
    permuted: dict[str, str] = {}  # Permute top -> head tensor
    flattened: dict[str, str] = {}  # Flatten top -> head tensor
    concatenated: dict[str, list[str]] = {}
    location_heads: list[str] = []
    confidence_heads: list[str] = []
    for layer in layers:
        kind, name, bottoms = layer["type"][0], layer["name"][0], layer.get("bottom", [])
        if kind == "Convolution":
            param = layer["convolution_param"][0]
            blobs = net.getLayer(net.getLayerId(name)).blobs
            weights += [
                numpy_helper.from_array(blobs[0].astype(np.float32), f"{name}/weight"),
                numpy_helper.from_array(blobs[1].reshape(-1).astype(np.float32), f"{name}/bias"),
            ]
            kernel, pad = int(param["kernel_size"][0]), int(param.get("pad", ["0"])[0])
            stride, dilation = int(param.get("stride", ["1"])[0]), int(param.get("dilation", ["1"])[0])
            nodes.append(
                helper.make_node(
                    "Conv",
                    [tensors[bottoms[0]], f"{name}/weight", f"{name}/bias"],
                    [f"{name}/conv"],
                    kernel_shape=[kernel, kernel],
                    pads=[pad] * 4,
                    strides=[stride, stride],
                    dilations=[dilation, dilation],
                    group=int(param.get("group", ["1"])[0]),
                )
            )
            tensors[layer["top"][0]] = f"{name}/conv"
        elif kind == "ReLU":
            nodes.append(helper.make_node("Relu", [tensors[bottoms[0]]], [f"{name}/relu"]))
            tensors[layer["top"][0]] = f"{name}/relu"
        elif kind == "Permute":
            permuted[layer["top"][0]] = tensors[bottoms[0]]
        elif kind == "Flatten" and bottoms[0] in permuted:
            flattened[layer["top"][0]] = permuted[bottoms[0]]
        elif kind == "Concat":
            concatenated[layer["top"][0]] = bottoms
        elif kind == "Reshape":
            concatenated[layer["top"][0]] = concatenated[bottoms[0]]
        elif kind in ("Softmax", "Flatten"):
            concatenated[layer["top"][0]] = concatenated.get(bottoms[0], [])
        elif kind == "DetectionOutput":
            location_heads = [flattened[bottom] for bottom in concatenated[bottoms[0]]]
            confidence_heads = [flattened[bottom] for bottom in concatenated[bottoms[1]]]
        elif kind not in ("Input", "PriorBox"):  # another model: refused, never converted wrong
            raise ValueError(f"the plate SSD's layer {name!r} is of type {kind!r}, which this conversion lacks")
    outputs = [
        helper.make_tensor_value_info(head, TensorProto.FLOAT, [1, None, None, None])
        for head in [*location_heads, *confidence_heads]
    ]
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, "height", "width"])]
    graph = helper.make_graph(nodes, "mininet_ssd", inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString(), location_heads, confidence_heads
