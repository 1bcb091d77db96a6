"""The registers the reports are written from: rights requests, incidents, complaints, domestic provision, and the
processor's recorded profile. Every create and change is a ledger event of the entry's region."""

from onshore.registers.entries import REGISTERS, RIGHTS_KINDS
from onshore.registers.service import RegisterEntry, RegisterService, entry_digest, parse_entry

__all__ = ["REGISTERS", "RIGHTS_KINDS", "RegisterEntry", "RegisterService", "entry_digest", "parse_entry"]
