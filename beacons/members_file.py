"""The members file the replay and eval commands take:
``{"chain_prefix": "<16 hex>", "members": [{"id": "...", "key": "<32 hex>"}]}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from beacons.errors import MembersFileError
from beacons.tokens import parse_key, parse_prefix
from untrusted.files import read_at_most
from untrusted.json_keys import DuplicateKeyError, loads_unique

#: The largest members file read. An entry is about 60 bytes, so this holds half a million
#: members (a whole chain's export of 200 000 is 12 MB); anything larger (a wrong file,
#: /dev/zero) is refused before it fills the memory.
MAX_MEMBERS_FILE_BYTES = 32 * 1024 * 1024


#: How a value of the wrong type is named: by its kind, not itself (it may be a long list).
_JSON_KINDS = {bool: "true or false", int: "a number", float: "a number", list: "a list",
               dict: "an object"}


@dataclass(frozen=True, slots=True)
class MemberKeys:
    """The chain prefix and the opted-in members' beacon keys."""

    chain_prefix: bytes
    keys: dict[str, bytes]

    def to_json(self) -> dict[str, object]:
        """The file form, for writing a members file next to a simulated trace."""
        return {
            "chain_prefix": self.chain_prefix.hex(),
            "members": [{"id": m, "key": k.hex()} for m, k in self.keys.items()],
        }


def parse_members(doc: object, *, source: str = "members file") -> MemberKeys:
    """Validate a decoded members document. Raises MembersFileError saying what is wrong.

    Other keys, in the document or beside a member's id and key (a name, an opt-in date), are
    ignored, as unknown trace fields are: a members file exported from a member system with
    more in it still replays. A numeric id is read as text."""
    if not isinstance(doc, dict):
        raise MembersFileError(f"{source}: expected a JSON object with chain_prefix and members")
    if "chain_prefix" not in doc:
        raise MembersFileError(f"{source}: chain_prefix (16 hex digits) is missing")
    if not isinstance(doc["chain_prefix"], str):
        raise MembersFileError(
            f"{source}: chain_prefix must be a string of 16 hex digits in quotes, got "
            f"{_JSON_KINDS.get(type(doc['chain_prefix']), 'null')}"
        )
    members = doc.get("members")
    if not isinstance(members, list):
        raise MembersFileError(f"{source}: members must be a list of {{id, key}} objects")
    try:
        prefix = parse_prefix(doc["chain_prefix"])
    except MembersFileError as exc:
        raise MembersFileError(f"{source}: {exc}") from exc
    keys: dict[str, bytes] = {}
    owners: dict[bytes, str] = {}  # who holds each key: one key for two ids mis-attributes
    for index, entry in enumerate(members):
        if not isinstance(entry, dict) or not {"id", "key"} <= set(entry):
            raise MembersFileError(f'{source}: members[{index}] must be {{"id", "key"}}')
        member, key = entry["id"], entry["key"]
        if isinstance(member, int) and not isinstance(member, bool):
            member = str(member)
        if not isinstance(member, str) or not member or not isinstance(key, str):
            raise MembersFileError(f"{source}: members[{index}] needs a string id and key")
        if member in keys:
            raise MembersFileError(f"{source}: member {member!r} appears twice")
        try:
            keys[member] = parse_key(member, key)
        except MembersFileError as exc:
            raise MembersFileError(f"{source}: {exc}") from exc
        if keys[member] in owners:
            # both phones would advertise the same tokens, and every sighting of either would
            # be put down to one of them
            raise MembersFileError(
                f"{source}: members[{index}] {member!r} has the same key as "
                f"{owners[keys[member]]!r}; each member needs their own key"
            )
        owners[keys[member]] = member
    return MemberKeys(prefix, keys)


def load_members(path: Path) -> MemberKeys:
    """Read and validate a members file."""
    try:
        data = read_at_most(path, MAX_MEMBERS_FILE_BYTES)
        if data is None:
            limit = MAX_MEMBERS_FILE_BYTES // (1024 * 1024)
            raise MembersFileError(f"{path}: larger than {limit} MiB: not a members file")
        doc = loads_unique(data.decode("utf-8-sig"))
    except DuplicateKeyError as exc:
        raise MembersFileError(exc.at(str(path))) from None
    except OSError as exc:
        raise MembersFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        message = f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise MembersFileError(message) from exc
    except json.JSONDecodeError as exc:
        raise MembersFileError(f"{path}: not valid JSON ({exc})") from exc
    except RecursionError as exc:  # "[[[[..." a few hundred kB long: no members file nests so
        raise MembersFileError(f"{path}: JSON nested too deeply: not a members file") from exc
    return parse_members(doc, source=str(path))


def save_members(path: Path, members: MemberKeys) -> None:
    """Write a members file."""
    path.write_text(json.dumps(members.to_json(), indent=1) + "\n", encoding="utf-8")
