"""``onshore vision``: find and hide faces and licence plates in image files.

Thin commands over `onshore.vision.frames.FrameProcessor`; the lead CLI mounts `vision_app`. The detectors, OpenCV
and the models are imported by the command that uses them, not by every ``onshore`` command (~0.1 s of CPU).
Exit codes: 0 all images done, 1 some image was refused (the others are still done), 2 bad arguments.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from onshore.cli_tables import Col, data_table, number
from onshore.errors import InputError, OnshoreError, PayloadTooLargeError
from onshore.vision.choices import DEFAULT_DETECTOR, DEFAULT_METHOD, DETECTOR_NAMES, METHOD_NAMES
from onshore.vision.headers import FrameLimits

if TYPE_CHECKING:
    from onshore.vision.anonymize import AnonymizationSettings
    from onshore.vision.frames import AnonymizedFrame, FrameProcessor

vision_app = typer.Typer(
    name="vision", help="Find and hide faces and licence plates in camera frames.", no_args_is_help=True
)

ImagesArgument = Annotated[
    list[Path], typer.Argument(exists=True, dir_okay=False, readable=True, help="JPEG or PNG files")
]
DetectorOption = Annotated[str, typer.Option("--detector", help=f"detector: {', '.join(DETECTOR_NAMES)}")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _read_upload(path: Path, limits: FrameLimits) -> bytes:
    """The file's bytes, refusing to read a file over the size limit into memory."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise PayloadTooLargeError(f"{path.name} is {size} bytes; the limit is {limits.max_bytes} bytes")
    return path.read_bytes()


def _batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def _processor(detector: str, settings: AnonymizationSettings | None = None) -> FrameProcessor:
    from onshore.vision.frames import FrameProcessor

    try:
        return FrameProcessor(detector=detector, anonymization=settings)
    except InputError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None


@vision_app.command()
def detect(
    images: ImagesArgument, json_output: JsonOption = False, detector: DetectorOption = DEFAULT_DETECTOR
) -> None:
    """Print every face and licence plate found in IMAGES, with its box in pixels and its score.

    Example: onshore vision detect frame1.jpg frame2.png --json
    """
    from onshore.vision.codec import decode_frame

    reports: list[dict[str, Any]] = []
    with _processor(detector) as processor:
        for batch in _batches(images, processor.workers * 2):
            decoded = {}
            for path in batch:
                try:
                    decoded[path], _ = decode_frame(_read_upload(path, processor.limits), processor.limits, path.name)
                except OnshoreError as error:
                    reports.append({"image": str(path), "error": error.to_dict()["error"]})
            for path, boxes in zip(decoded, processor.detect(list(decoded.values())), strict=True):
                height, width = decoded[path].shape[:2]
                reports.append(
                    {"image": str(path), "width": width, "height": height, "boxes": [b.to_dict() for b in boxes]}
                )
    order = {str(path): index for index, path in enumerate(images)}
    reports.sort(key=lambda report: order[report["image"]])
    if json_output:
        typer.echo(json.dumps({"images": reports}, ensure_ascii=False))
    else:
        _print_detections(reports)
    if any("error" in report for report in reports):
        raise typer.Exit(1)


def _print_detections(reports: list[dict[str, Any]]) -> None:
    console = Console()
    for report in reports:
        if "error" in report:
            console.print(f"[red]{report['image']}: {report['error']['message']}[/red]", highlight=False)
            continue
        columns: list[Col] = [Col("kind"), *(number(key) for key in ("x1", "y1", "x2", "y2", "score"))]
        table = data_table(columns, title=f"{report['image']} ({report['width']}x{report['height']})")
        for box in report["boxes"]:
            table.add_row(box["kind"], *(box[key] for key in ("x1", "y1", "x2", "y2")), f"{box['score']:.3f}")
        console.print(table)


@vision_app.command()
def anonymize(
    images: ImagesArgument,
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="folder for the anonymised copies")],
    method: Annotated[str, typer.Option("--method", help=f"how to hide: {', '.join(METHOD_NAMES)}")] = DEFAULT_METHOD,
    detector: DetectorOption = DEFAULT_DETECTOR,
    json_output: JsonOption = False,
) -> None:
    """Write a copy of each of IMAGES to OUT with faces and plates hidden (same name and format).

    Copies carry no metadata (EXIF, GPS). An input is never overwritten.

    Example: onshore vision anonymize camera/*.jpg --out anonymised/ --method pixelate
    """
    from onshore.vision.anonymize import AnonymizationSettings

    try:
        settings = AnonymizationSettings(method=method)
    except InputError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    reports: list[dict[str, Any]] = []
    with _processor(detector, settings) as processor, Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("anonymising", total=len(images), visible=not json_output and len(images) > 1)
        for batch in _batches(images, processor.workers * 2):
            queued = [(path, _submit_file(processor, path, out)) for path in batch]
            for path, outcome in queued:
                reports.append(_write_result(path, out / path.name, outcome))
                progress.advance(task)
    if json_output:
        typer.echo(json.dumps({"images": reports}, ensure_ascii=False))
    else:
        for report in reports:
            if "error" in report:
                typer.echo(f"{report['image']}: refused: {report['error']['message']}", err=True)
            else:
                typer.echo(
                    f"{report['image']} -> {report['output']}: {report['faces']} faces, {report['plates']} plates"
                )
    if any("error" in report for report in reports):
        raise typer.Exit(1)


def _submit_file(processor: FrameProcessor, path: Path, out: Path) -> Future[AnonymizedFrame] | OnshoreError:
    """Queue one file for anonymisation, or the error that refuses it before any work."""
    try:
        if (out / path.name).resolve() == path.resolve():
            raise InputError(f"{path.name}: --out would overwrite the input; choose another folder")
        return processor.submit(_read_upload(path, processor.limits), path.name)
    except OnshoreError as error:
        return error


def _write_result(path: Path, target: Path, outcome: Future[AnonymizedFrame] | OnshoreError) -> dict[str, Any]:
    """Write the anonymised copy to ``target``; a refused file yields an ``error`` entry instead."""
    try:
        if isinstance(outcome, OnshoreError):
            raise outcome
        frame = outcome.result()
    except OnshoreError as error:
        return {"image": str(path), "error": {"code": error.code, "message": error.message}}
    target.write_bytes(frame.image)
    return {"image": str(path), "output": str(target), "faces": frame.faces, "plates": frame.plates}


@vision_app.command()
def sample(
    out: Annotated[Path, typer.Argument(dir_okay=False, help="the JPEG file to write")],
    cabin: Annotated[bool, typer.Option(help="a cabin interior instead of a road scene")] = False,
    seed: Annotated[int, typer.Option(help="another seed draws another scene")] = 1,
    json_output: JsonOption = False,
) -> None:
    """Write a drawn camera frame (a road scene, or a cabin), to try the frame path with.

    The picture is drawn (sky, road, lane marks, cars as boxes): it holds no real person or plate, so the
    detectors find nothing to hide in it; `bench/vision_eval.py` measures them on labelled photos.

    Example: onshore vision sample street.jpg
    """
    from onshore.sim.cameras import synthetic_frame

    try:
        out.write_bytes(synthetic_frame(seed, cabin=cabin))
    except OSError as exc:
        typer.echo(f"error: cannot write {out}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(json.dumps({"out": str(out), "width": 1280, "height": 720, "cabin": cabin, "seed": seed}))
    else:
        typer.echo(f"wrote {out} (1280x720, drawn: no person or plate)")
