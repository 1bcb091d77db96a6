"""`onshore ledger ...`: the operator's commands over the ledger service, and the auditor's `verify`.

`verify` needs no configuration and no access to the operator's machine: a public key, a server URL and a
token, or an exported bundle file. Exit codes of `verify`: 0 verified, 1 not verified (a check failed),
2 bad usage (a malformed key, option or file), 3 the log could not be read (server unreachable, token or
region refused, bundle unreadable).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from onshore.cli_support import ConfigOption, JsonOption, T, cli_errors, console, err_console, print_json
from onshore.cli_tables import data_table, number
from onshore.errors import OnshoreError
from onshore.ledger.verdicts import (
    EXIT_NOT_VERIFIED,
    EXIT_UNREADABLE,
    EXIT_USAGE,
    EXIT_VERIFIED,
    print_verdict,
    run_verify,
    verify_stores,
)
from onshore.ledger.verdicts import usage_error as _usage

ledger_app = typer.Typer(
    help="The region's transparency log: checkpoints, proofs, keys, bundles, and the auditor's verify.",
    no_args_is_help=True,
)
keys_app = typer.Typer(help="The log's signing keys: list, rotate; generate a witness key.", no_args_is_help=True)
ledger_app.add_typer(keys_app, name="keys")


RegionOption = Annotated[
    str | None, typer.Option("--region", "-r", help="region whose log to use (default: the only region)")
]
_print_json = print_json


def _errors() -> Any:
    return cli_errors(EXIT_USAGE)


def _with_ledger(config: Path | None, region: str | None, fn: Callable[[Any, str], T]) -> T:
    """Run ``fn(ledger_service, region_name)`` over a runtime built from ``config``."""
    from onshore.config import load_settings
    from onshore.errors import InputError
    from onshore.runtime import Runtime

    runtime = Runtime(load_settings(config))
    try:
        if region is None:
            if len(runtime.regions) != 1:
                raise InputError(f"several regions are configured ({', '.join(runtime.regions)}); pass --region")
            region = next(iter(runtime.regions))
        return fn(runtime.ledger, region)
    finally:
        runtime.close()


@ledger_app.command("checkpoint")
def checkpoint_cmd(
    region: RegionOption = None,
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option(help="also write the note to this file")] = None,
    json_out: JsonOption = False,
) -> None:
    """Sign the current tree head of a region's log with its key, record it and print the note.

    Example: onshore ledger checkpoint --region cn --out cn-checkpoint.txt
    """
    with _errors():
        signed = _with_ledger(config, region, lambda ledger, name: ledger.checkpoint(name))
    if out is not None:
        out.write_text(signed.note, encoding="utf-8")
    if json_out:
        _print_json(signed.to_dict())
    else:
        sys.stdout.write(signed.note)


@ledger_app.command("prove")
def prove_cmd(
    index: Annotated[int, typer.Option(min=0, help="leaf index of the event")],
    size: Annotated[int | None, typer.Option(min=1, help="tree size to prove against (default: now)")] = None,
    region: RegionOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Print the inclusion proof of one event (its leaf hash and audit path, base64).

    Example: onshore ledger prove --region cn --index 41 --size 1200
    """

    def run(ledger: Any, name: str) -> Any:
        return ledger.inclusion_proof(name, index, ledger.tree_size(name) if size is None else size)

    with _errors():
        proof = _with_ledger(config, region, run)
    body = proof.to_dict()
    if json_out:
        _print_json(body)
        return
    console.print(f"event {body['index']} in the tree of {body['tree_size']} events (region {body['region']})")
    console.print(f"leaf hash  {body['leaf_hash']}", highlight=False)
    console.print(f"root hash  {body['root_hash']}", highlight=False)
    for level, element in enumerate(body["proof"]):
        console.print(f"path[{level:>2}]   {element}", highlight=False)


@ledger_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="bundle file to write (JSON)")],
    up_to: Annotated[int | None, typer.Option(min=0, help="export only the first N events")] = None,
    region: RegionOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export the log to one bundle file that `onshore ledger verify --bundle` checks offline.

    Example: onshore ledger export cn-ledger.json --region cn
    """
    with _errors():
        summary = _with_ledger(config, region, lambda ledger, name: ledger.export_bundle(name, out, up_to))
    if json_out:
        _print_json(summary.to_dict())
    else:
        console.print(f"wrote {summary.tree_size} events of region {summary.region} to [bold]{summary.path}[/]")


@keys_app.command("list")
def keys_list(
    region: RegionOption = None,
    config: ConfigOption = None,
    vkeys: Annotated[bool, typer.Option("--vkeys", help="print only the vkeys, one a line (a key file)")] = False,
    json_out: JsonOption = False,
) -> None:
    """List every version of the log's signing key; give auditors the vkeys out of band.

    Example: onshore ledger keys list --region cn --vkeys > cn-log.vkey
    """
    with _errors():
        keys = _with_ledger(config, region, lambda ledger, name: ledger.public_keys(name))
    if json_out:
        _print_json({"keys": [key.to_dict() for key in keys]})
        return
    if vkeys:
        sys.stdout.write("".join(f"{key.vkey}\n" for key in keys))
        return
    table = data_table([number("version"), "status", number("from size"), number("until size"), "vkey"])
    for key in keys:
        status = "active" if key.active else "retired"
        table.add_row(key.version, status, key.activated_at_size, key.retired_at_size, key.vkey)
    console.print(table)


@keys_app.command("rotate")
def keys_rotate(region: RegionOption = None, config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Retire the active signing key and start the next version (the handover checkpoint is signed by both).

    Example: onshore ledger keys rotate --region cn
    """
    with _errors():
        key = _with_ledger(config, region, lambda ledger, name: ledger.rotate_key(name))
    if json_out:
        _print_json(key.to_dict())
        return
    console.print(f"signing key version {key.version} is active from tree size {key.activated_at_size}; its vkey:")
    console.print(key.vkey, highlight=False, soft_wrap=True)


@keys_app.command("generate-witness")
def keys_generate_witness(
    name: Annotated[str, typer.Argument(help="the witness's key name, e.g. regulator.example/witness")],
    out: Annotated[Path, typer.Option(help="file for the private key (created with mode 0600)")],
    json_out: JsonOption = False,
) -> None:
    """Create a witness key pair (for the regulator): the private key goes to a file, the vkey is printed.

    Example: onshore ledger keys generate-witness regulator.example/witness --out witness.key
    """
    from onshore.ledger.checkpoint import generate_signer

    with _errors():
        signer = generate_signer(name)
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise typer.BadParameter(f"cannot create {out}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(signer.private_key_text() + "\n")
    if json_out:
        _print_json({"name": name, "vkey": signer.verifier.vkey, "private_key_file": str(out)})
    else:
        sys.stdout.write(signer.verifier.vkey + "\n")


@ledger_app.command("cosign")
def cosign_cmd(
    note_file: Annotated[Path, typer.Argument(help="the signed checkpoint note to cosign", exists=True)],
    witness_key: Annotated[Path, typer.Option(help="file holding the witness's private key", exists=True)],
    key: Annotated[
        list[str] | None, typer.Option("--key", help="the log's vkey (text or file); checked before cosigning")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the cosigned note here instead of printing it")] = None,
    json_out: JsonOption = False,
) -> None:
    """As a witness, cosign a checkpoint note offline; the operator then runs `onshore ledger record` on it.

    The witness checks the log's signature first (`--key`); it should also have checked consistency with the
    last checkpoint it cosigned (`onshore ledger verify --trusted`).

    Example: onshore ledger cosign cn-checkpoint.txt --witness-key witness.key --key cn-log.vkey --out cosigned.txt
    """
    from onshore.ledger.checkpoint import NoteSigner
    from onshore.ledger.service import LedgerService
    from onshore.ledger.verify import parse_vkeys

    with _errors():
        witness = NoteSigner.from_private_key(witness_key.read_text(encoding="utf-8"))
        note = LedgerService.cosign(note_file.read_text(encoding="utf-8"), witness, log_keys=parse_vkeys(key or []))
    if out is not None:
        out.write_text(note, encoding="utf-8")
    if json_out:
        _print_json({"witness": witness.name, "note": note, "out": None if out is None else str(out)})
    elif out is not None:
        console.print(f"cosigned by {witness.name}; wrote [bold]{out}[/]")
    else:
        sys.stdout.write(note)


@ledger_app.command("record")
def record_cmd(
    note_file: Annotated[Path, typer.Argument(help="a checkpoint note cosigned by a witness", exists=True)],
    region: RegionOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Record a checkpoint a witness cosigned, so the API and bundles serve it as the witnessed checkpoint.

    Example: onshore ledger record cosigned.txt --region cn
    """
    with _errors():
        note = note_file.read_text(encoding="utf-8")
        signed = _with_ledger(config, region, lambda ledger, name: ledger.record_cosigned(name, note))
    if json_out:
        _print_json(signed.to_dict())
    else:
        console.print(f"recorded the witnessed checkpoint at tree size {signed.tree_size} of region {signed.region}")


@ledger_app.command("verify")
def verify_cmd(
    key: Annotated[
        list[str] | None,
        typer.Option("--key", "-k", help="the log's public key (vkey text or a file of vkeys); repeatable"),
    ] = None,
    trusted: Annotated[
        Path | None, typer.Option(help="a checkpoint note kept from an earlier verification; the log must extend it")
    ] = None,
    witness: Annotated[
        list[str] | None, typer.Option("--witness", "-w", help="require this witness's cosignature (vkey or file)")
    ] = None,
    url: Annotated[str | None, typer.Option(help="onshore server URL, e.g. http://127.0.0.1:8470")] = None,
    region: Annotated[str | None, typer.Option("--region", "-r", help="region whose log to read (with --url)")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="ONSHORE_TOKEN", help="auditor or officer token (with --url)")
    ] = None,
    bundle: Annotated[Path | None, typer.Option(help="verify an exported bundle file offline instead")] = None,
    proofs: Annotated[
        str, typer.Option(help="how many of the server's inclusion proofs to check: a number, or 'all'")
    ] = "64",
    save_checkpoint: Annotated[
        Path | None, typer.Option(help="after a successful check, write the verified checkpoint here (next --trusted)")
    ] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Verify a region's log: as an auditor (--url or --bundle, with --key) or as the operator (-c CONFIG).

    As an auditor, trusting only the log's public key: the checkpoint's signature, its consistency with
    --trusted, the cosignature of every --witness, the inclusion of every event (root recomputed from all
    events, plus the server's inclusion proofs) and that the events carry no personal data.

    As the operator, with the region's own stores (-c CONFIG, no --url or --bundle): the stored tree recomputed
    from its entries, and every store and delete event re-derived from the rows and tombstones it committed to,
    so an edited value, time, category or origin, or a row removed without a delete event, names its batch.

    Exit codes: 0 verified, 1 not verified, 2 bad usage, 3 log unreadable.

    Example: onshore ledger verify --key cn-log.vkey --trusted last.txt --url http://127.0.0.1:8470 --region cn

    Example: onshore ledger verify -c onshore.toml --region cn
    """
    if url is None and bundle is None and config is not None:
        verify_stores(config, region, json_out=json_out)
    from onshore.errors import LedgerSourceError
    from onshore.ledger.sources import BundleLedgerSource, HttpLedgerSource
    from onshore.ledger.verify import parse_vkeys, verify_ledger

    if (url is None) == (bundle is None):
        _usage("give either --url (with --region and --token) or --bundle, or -c CONFIG to check the stores")
    if not key:
        _usage("--url and --bundle need the log's public key: --key")
    if url is not None and (region is None or not token):
        _usage("--url needs --region and --token (or ONSHORE_TOKEN)")
    if proofs != "all" and not (proofs.isdigit() and int(proofs) >= 0):
        _usage(f"--proofs must be a number or 'all', not {proofs!r}")
    source: Any = None
    try:
        log_keys = parse_vkeys(key or [])
        witnesses = parse_vkeys(witness or [])
        trusted_note = None
        if trusted is not None:
            try:
                trusted_note = trusted.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                _usage(f"cannot read --trusted {trusted}: {exc}")
        if bundle is not None:
            source = BundleLedgerSource(bundle)
        else:
            assert url is not None and region is not None and token is not None
            source = HttpLedgerSource(url, region, token)
        verdict = run_verify(
            verify_ledger,
            source,
            log_keys,
            trusted_note,
            witnesses,
            None if proofs == "all" else int(proofs),
            quiet=json_out,
        )
    except LedgerSourceError as exc:
        if json_out:
            _print_json({"ok": False, "error": exc.to_dict()["error"]})
        else:
            err_console.print(f"[bold red]could not read the log:[/] {exc.message}", highlight=False)
        raise typer.Exit(EXIT_UNREADABLE) from None
    except OnshoreError as exc:
        _usage(exc.message)
    finally:
        if source is not None and hasattr(source, "close"):
            source.close()
    if verdict.ok and save_checkpoint is not None and verdict.checkpoint_note:
        save_checkpoint.write_text(verdict.checkpoint_note, encoding="utf-8")
    if json_out:
        _print_json(verdict.to_dict())
    else:
        print_verdict(verdict)
    raise typer.Exit(EXIT_VERIFIED if verdict.ok else EXIT_NOT_VERIFIED)
