"""What a model file is, decided from its bytes before torch reads it, and whether reading it runs code.

``torch.jit.load`` compiles and runs a TorchScript archive's code (``__setstate__`` on load, ``forward`` when
called); ``torch.export.load`` unpickles with ``weights_only=False`` every weight or constant whose config
says ``use_pickle``, every ``custom_obj_*``/``opaque_obj_*`` constant and sample inputs that fail the safe
loader, evaluates symbolic-shape strings with ``sympy.sympify`` (``eval``), ``exec``s the guards in the
program, loads AOTInductor shared libraries and resolves node targets to any ``torch.*`` function. So
an untrusted ``.pt2`` is read here first, member by member, and refused unless it is a plain program —
raw tensor bytes, JSON configs without pickled entries, graph nodes that call ATen/prims operators (none
that touch files), expressions and guards made only of arithmetic on sizes — before torch loads anything.
"""
from __future__ import annotations

import ast
import io
import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch

from ..data.memory import check_allocation

class ArchiveRefused(ValueError):
    """A ``.pt2`` member that torch's loader would run or unpickle (the reason is the message)."""


class ArchiveTooCostly(ArchiveRefused):
    """A ``.pt2`` member that torch's loader would spend minutes or more memory than there is on."""


class ArchiveDamaged(ValueError):
    """A ``.pt2`` whose zip cannot be read (bad checksums, truncated members)."""


def file_kind(path: Path) -> str:
    """``"export"`` (a ``torch.export`` archive), ``"torchscript"``, ``"zip"`` (any other zip, e.g. ``torch.save``'s
    format) or ``"other"`` (a legacy ``torch.save`` file or not a model at all), from the zip's names only."""
    if not zipfile.is_zipfile(path):
        return "other"
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "other"
    rel = [n.split("/", 1)[1] if "/" in n else n for n in names]
    if "archive_format" in rel and any(r.startswith("models/") for r in rel):
        return "export"
    if any(r.startswith("code/") or r == "constants.pkl" for r in rel):
        return "torchscript"
    return "zip"


# --- what a plain exported program may hold -------------------------------------------------------
_MEMBERS = re.compile(r"""^(?:archive_format|archive_version|byteorder|version|\.data/version|\.data/serialization_id
    |models/[A-Za-z0-9_]+\.json
    |data/weights/[A-Za-z0-9_]+_weights_config\.json|data/weights/weight_[0-9]+
    |data/constants/[A-Za-z0-9_]+_constants_config\.json|data/constants/tensor_[0-9]+
    |data/sample_inputs/[A-Za-z0-9_]+\.pt
    |extra/[^/]+)$""", re.X)
_OP = re.compile(r"^torch\.ops\.(aten|prims)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)$")
_PY_OPS = {"_operator." + n for n in ("getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg",
                                      "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "pos", "abs")}
_PY_OPS |= {"math." + n for n in ("ceil", "floor", "trunc", "sqrt")}
_PY_OPS |= {"torch." + n for n in ("sym_int", "sym_float", "sym_max", "sym_min", "sym_not", "sym_ite", "sym_sqrt",
                                   "_sym_sqrt", "sym_sum")}
#: ATen operators that read or write files (their schema takes a file name): never in a graph we load.
_FILE_OPS = {"from_file", "save", "load", "_nested_tensor_from_file"}
_SYMBOL = re.compile(r"^[A-Za-z]+[0-9]+$")  # s0, u12: shape symbols
_CONSTANTS = {"True", "False", "None", "oo", "zoo", "nan", "inf", "pi", "E", "I", "L", "math"}
_SIZE_METHODS = {"size", "stride", "storage_offset", "dim", "numel"}
_MATH = {"ceil", "floor", "trunc", "sqrt", "log", "log2", "exp", "inf", "nan", "pi", "e"}  # bounded float maths
#: calls and operators whose second argument is an exponent or a shift: 9**9**9**9 would be computed exactly
_POWERS = {"Pow", "PowByNatural", "FloatPow", "LShift", "pow"}
_MAX_BITS, _MAX_EXPONENT = 64, 64  # a size fits in 64 bits; an exponent on sizes is small


def _allowed_functions() -> set[str]:
    """Names an expression or a guard may call: sympy's numbers and comparisons, torch's sympy functions and
    the names torch puts in a guard's namespace — all arithmetic on sizes."""
    import inspect

    import sympy
    import torch.utils._sympy.functions as tf
    from torch.fx.experimental.symbolic_shapes import SYMPY_INTERP

    names = {n for n, v in vars(tf).items() if inspect.isclass(v) and issubclass(v, sympy.Basic)}
    names |= {n for n in SYMPY_INTERP if not n.startswith("_")}
    names |= {"Symbol", "Integer", "Float", "Rational", "Max", "Min", "Abs", "Mod", "floor", "ceiling", "Piecewise",
              "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "sqrt", "Pow", "Mul", "Add", "ITE",
              "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "Equality", "Unequality"}
    names -= {"eval", "exec", "open", "compile", "getattr", "setattr", "globals", "locals", "vars", "__import__"}
    return names


def _check_expression(text: Any, what: str, functions: set[str]) -> None:
    """Refuse a string that ``sympify``/``exec`` would run unless it is arithmetic on sizes (an AST allowlist)."""
    if not isinstance(text, str) or len(text) > 10_000:
        raise ArchiveRefused(f"its {what} is not a short expression")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise ArchiveRefused(f"its {what} {text[:80]!r} is not an expression on sizes") from None
    for node in ast.walk(tree):
        ok = isinstance(node, (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Constant,
                               ast.Subscript, ast.Load, ast.operator, ast.boolop, ast.unaryop, ast.cmpop,
                               ast.Tuple, ast.keyword))
        if isinstance(node, ast.Name):
            ok = node.id in functions or node.id in _CONSTANTS or bool(_SYMBOL.match(node.id))
        elif isinstance(node, ast.Attribute):
            ok = node.attr in _SIZE_METHODS or (isinstance(node.value, ast.Name) and node.value.id == "math"
                                                and node.attr in _MATH)
        elif isinstance(node, ast.Call):
            f = node.func
            ok = (isinstance(f, ast.Name) and f.id in functions) or isinstance(f, ast.Attribute)
        elif isinstance(node, ast.keyword):
            ok = node.arg is not None and node.arg.isidentifier() and not node.arg.startswith("_")
        if not ok:
            raise ArchiveRefused(f"its {what} {text[:80]!r} holds {type(node).__name__.lower()} "
                                 f"{getattr(node, 'id', getattr(node, 'attr', ''))!r}, not arithmetic on sizes")
    for node in ast.walk(tree):  # code is refused above, before cost
        _check_bounded(node, text, what)


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _check_bounded(node: ast.AST, text: str, what: str) -> None:
    """Refuse numbers sympy would spend minutes computing exactly, holding the GIL (``9**9**9**9``): integer
    literals beyond 64 bits, strings that are not symbol names, and powers or shifts whose exponent is not a
    literal ≤ 64 or whose base holds another power — arithmetic on sizes needs none of these."""
    bad = ""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, int) and not isinstance(v, bool) and abs(v).bit_length() > _MAX_BITS:
            bad = f"a number beyond {_MAX_BITS} bits"
        elif isinstance(v, str) and not _SYMBOL.match(v):
            bad = f"the string {v[:20]!r}, not a size symbol"
    pair: tuple[ast.expr | None, ...] | None = None
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Pow, ast.LShift)):
        pair = (node.left, node.right)
    elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in _POWERS:
        pair = tuple(node.args) if len(node.args) == 2 and not node.keywords else (None, None)
    if pair is not None:
        base, exponent = pair[0], pair[-1]
        e = None if exponent is None else _literal(exponent)
        nested = base is None or any(isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Pow, ast.LShift))
                                     or (isinstance(n, ast.Call) and getattr(n.func, "id", "") in _POWERS)
                                     for n in ast.walk(base))
        if not isinstance(e, (int, float)) or isinstance(e, bool) or abs(e) > _MAX_EXPONENT or nested:
            bad = f"a power or shift beyond a literal exponent ≤ {_MAX_EXPONENT} (a number too large to compute)"
    if bad:
        raise ArchiveTooCostly(f"its {what} {text[:80]!r} holds {bad}")


def _walk(obj: Any, key: str = ""):
    """Every (key, value) pair in a JSON document, depth first."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, v
            yield from _walk(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, key)


def _check_program(doc: Any, name: str, functions: set[str]) -> None:
    for key, value in _walk(doc):
        if key == "expr_str":
            _check_expression(value, "symbolic shape", functions)
        elif key == "guards_code":
            for g in value or []:
                _check_expression(g, "guard", functions)
        elif key == "target" and isinstance(value, str):
            m = _OP.match(value)
            if m and m.group(2) not in _FILE_OPS:
                continue
            if value not in _PY_OPS:
                raise ArchiveRefused(f"its graph ({name}) calls {value[:80]!r}, which is not an ATen operator on "
                                     "tensors")


def _check_payload_config(doc: Any, member: str, prefix: str) -> None:
    config = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(config, dict):
        raise ArchiveRefused(f"its {member} is not a tensor config")
    for fqn, meta in config.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False \
                or not re.fullmatch(prefix + r"[0-9]+", str(meta.get("path_name", ""))):
            raise ArchiveRefused(f"its {member} stores {str(fqn)[:60]!r} as a pickled Python object")


def check_export_archive(path: Path) -> None:
    """Raise :class:`ArchiveRefused` unless ``torch.export.load(path)`` would only read tensors and a graph
    of ATen operators (see the module docstring). Reads the zip's members, never unpickles."""
    try:
        _check_members(path, _allowed_functions())
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RecursionError) as err:
        raise ArchiveDamaged(f"it is damaged ({type(err).__name__})") from None


def _check_members(path: Path, functions: set[str]) -> None:
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise ArchiveRefused("it holds two members of the same name")
        try:  # zipfile reads a member up to its stated size, so the stated sizes bound what torch reads
            check_allocation(sum(i.file_size for i in infos), "reading this archive")
        except ValueError as err:
            raise ArchiveTooCostly(str(err)) from None
        prefixes = {n.split("/", 1)[0] for n in names}
        if len(prefixes) != 1 or any("/" not in n for n in names):
            raise ArchiveRefused("its members are not in one archive folder")
        for info in infos:
            rel = info.filename.split("/", 1)[1]
            if info.is_dir() or not rel:
                continue
            if not _MEMBERS.match(rel):
                raise ArchiveRefused(f"it holds {rel[:80]!r}, which is not a tensor, a graph or a config of a plain "
                                     "exported program (pickled objects, compiled AOTInductor code?)")
            if info.compress_type != zipfile.ZIP_STORED and info.file_size > 2**24 \
                    and info.file_size > 100 * max(info.compress_size, 1):  # torch.export.save stores uncompressed
                raise ArchiveTooCostly(f"its {rel!r} expands {info.file_size // max(info.compress_size, 1):,}× to "
                                       f"{info.file_size / 2**20:,.0f} MB (a zip bomb?)")
            if rel.endswith(".json") or rel.startswith("models/"):
                if info.file_size > 200 * 2**20:
                    raise ArchiveRefused(f"its {rel!r} is larger than 200 MB")
                try:
                    doc = json.loads(z.read(info))
                except (ValueError, UnicodeDecodeError):
                    raise ArchiveRefused(f"its {rel!r} is not JSON") from None
                if rel.startswith("models/"):
                    _check_program(doc, rel, functions)
                else:
                    _check_payload_config(doc, rel, "weight_" if rel.startswith("data/weights/") else "tensor_")
            elif rel.startswith("data/sample_inputs/"):
                try:  # torch falls back to weights_only=False when this fails
                    torch.load(io.BytesIO(z.read(info)), map_location="cpu", weights_only=True)
                except Exception:  # noqa: BLE001 — anything but tensors and containers
                    raise ArchiveRefused(f"its {rel!r} holds pickled Python objects, which torch.export.load "
                                         "would unpickle") from None
