"""Reading files that someone else wrote: inside their folder, regular, bounded, bomb-free.

Every file a submission or a task folder names is resolved (symbolic links followed) and must
lie inside that folder, so a link or an absolute name cannot make LARB read, or print a line
of, a file elsewhere. Only regular files are opened: a FIFO named `x.csv` would block a read
for ever. YAML is parsed without timestamps (dates stay strings, checked by the schema and
`dt.date.fromisoformat`) and with a budget on the size of the tree that anchors and aliases
expand to, since a 600-byte "billion laughs" document expands to 10^9 nodes the moment a
validator walks it or an error message prints it.
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import LarbError

YAML_BYTES_LIMIT = 256 * 1024  # a metadata.yaml is a few hundred bytes; 256 KiB is generous
YAML_NODES_LIMIT = 20_000  # nodes after expanding aliases; a real metadata.yaml has under 200
MESSAGE_EXCERPT = 120  # characters of a user's value quoted in an error message


def inside(folder: Path, path: Path, *, what: str = "file") -> Path:
    """`path` resolved; refused unless it lies inside `folder` (resolved too)."""
    root = folder.resolve()
    resolved = path.resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise LarbError(f"the {what} resolves to {resolved}, outside {root}; LARB reads only files inside the "
                        "folder it is given.", path=path, fix=f"put the {what} itself inside the folder.")
    return resolved


def regular_file(path: Path, *, what: str = "file") -> Path:
    """`path`, refused with a clear error unless it is a regular file (not a FIFO, device or folder)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LarbError(f"{what} not found.", path=path, fix="check the path.") from None
    except OSError as exc:
        raise LarbError(f"cannot read the {what} ({exc.strerror}).", path=path, fix="check the path.") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise LarbError(f"the {what} is {kind}.", path=path, fix="give a regular file.")
    return path


def decode_utf8(data: bytes, path: Path, *, fix: str = "save the file as UTF-8.") -> str:
    """`data` as UTF-8 text (a leading BOM dropped); a bad byte anywhere is one error naming its
    offset and line, not a traceback from the middle of a read."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = bom + exc.start  # in the file, BOM included
        raise LarbError(f"byte {data[offset]:#04x} at offset {offset} is not valid UTF-8.", path=path,
                        line=data.count(b"\n", 0, offset) + 1, fix=fix) from None


def excerpt(value: object) -> str:
    """A short repr of a user's value for an error message, never the whole thing."""
    text = repr(value)
    return text if len(text) <= MESSAGE_EXCERPT else text[:MESSAGE_EXCERPT] + "...(cut)"


class _BudgetLoader(yaml.SafeLoader):
    """SafeLoader without timestamps, refusing documents whose aliases expand past the budget."""

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _expanded_size(node, {}, YAML_NODES_LIMIT)
        return node


_BudgetLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


class _TooBig(yaml.YAMLError):
    pass


def _expanded_size(node: yaml.Node, sizes: dict[int, int], budget: int) -> int:
    """Nodes in the tree `node` expands to (an alias counts its whole target each time)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = budget + 1  # a node inside itself (a recursive alias) is over any budget
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes, budget) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes, budget) + _expanded_size(v, sizes, budget) for k, v in node.value)
    if size > budget:
        raise _TooBig(f"the document expands to more than {budget:,} nodes (anchors and aliases)")
    sizes[id(node)] = size
    return size


def load_yaml(path: Path, *, limit: int = YAML_BYTES_LIMIT) -> Any:
    """Parse a small, untrusted YAML file; every problem is one `LarbError` naming the file."""
    regular_file(path, what="YAML file")
    size = path.stat().st_size
    if size > limit:
        raise LarbError(f"the file is {size:,} bytes, more than the {limit:,} allowed.", path=path,
                        fix="keep the metadata short (no embedded data).")
    try:
        text = path.read_bytes()[:limit + 1].decode("utf-8")
    except UnicodeDecodeError:
        raise LarbError("not UTF-8.", path=path, fix="save the file as UTF-8.") from None
    try:
        return yaml.load(text, Loader=_BudgetLoader)
    except _TooBig as exc:
        raise LarbError(f"refused: {exc}.", path=path, fix="write the values out; do not use YAML aliases.") from None
    except RecursionError:
        raise LarbError("refused: the document nests too deeply.", path=path, fix="flatten it.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = getattr(mark, "line", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LarbError(f"invalid YAML ({problem}).", path=path, line=line + 1 if line is not None else None,
                        fix="fix the YAML syntax (plain keys and values; no tags).") from None
