"""Container layers (computestorage.dll): a `Layer` is a value, an id and a folder, with the
storage calls that act on that folder as methods.

A layer folder has the "windowsfilter" layout (``Files/``, ``Hives/``, ``UtilityVM/``); the
*parents* of a layer, top-most (immediate parent) first and the base layer last, travel to HCS
as a ``LayerData`` document, which `LayerChain` builds. The same chain plus a writable layer
is a container's ``Storage`` (`LayerChain.storage`)::

    base = Layer(root / "base").import_from(download)
    scratch = Layer(root / "scratch").initialize_writable([base])
    with scratch.attached([base]):
        config = {"Container": {"Storage": LayerChain([base]).storage(scratch)}, ...}

No timeouts, no cancellation: every computestorage function is synchronous (HCS gives no
operation handle for it), so a call returns when the work is done or failed, and nothing can
stop it early. A caller that must stay responsive runs the call on a thread (or through
``pyhcs.aio``); giving up waiting there does not stop the work.

Progress (`Progress`, for import and export, the calls that copy whole trees): HCS reports
none, so pyhcs measures it. With a ``progress`` callback the C call runs on a worker thread
while the calling thread counts the files that reached the destination every ``interval``
seconds and calls the callback with that count and the number of files in the source, counted
before the call. The numbers are an estimate: files, not bytes; HCS may write another layout
than the source's (hives processed, tombstones applied, an attached layer's union skipped), so
``files_done`` need not end at ``files_total``; each sample walks the destination tree (costly
on very large trees; no callback, no walk). Only the ``finished`` (or ``failed``) report says
the call returned. The callback runs on the calling thread; if it raises, reporting stops, the
call still runs to its end (it cannot be stopped), then the exception is raised.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, overload

from pyhcs import hresult as hr
from pyhcs.errors import InvalidArgumentError, InvalidJsonError, error_from_hresult
from pyhcs.raw import ffi, lib
from pyhcs.raw.strings import take_wide

if TYPE_CHECKING:
    from pyhcs import schema

__all__ = [
    "DEFAULT_SCHEMA_VERSION",
    "Layer",
    "LayerChain",
    "Parents",
    "Progress",
    "attach_overlay",
    "detach_overlay",
    "format_writable_layer_vhd",
    "overlay",
    "vhd_mount_path",
]

#: ``SchemaVersion`` of the LayerData documents pyhcs writes (as hcsshim writes them).
DEFAULT_SCHEMA_VERSION: Final = (2, 1)
#: Namespace of the default layer ids: ``uuid5(LAYER_ID_NAMESPACE, path)``.
LAYER_ID_NAMESPACE: Final = uuid.UUID("a5d3e0c4-6f1b-4f43-9b55-2f5c8e0e7a11")
#: The parts of a layer folder a transport-format copy moves (what progress counts).
_TREES: Final = ("Files", "Hives", "UtilityVM")
#: Overlay filter types HcsAttachOverlayFilter knows.
FilterType = Literal["WCIFS", "UnionFS"]

PathLike = str | os.PathLike[str]
Options = Mapping[str, Any] | str | None


def _text_path(value: PathLike, what: str, operation: str | None = None) -> str:
    """A path as the text C gets: str (not bytes), not empty, without NUL."""
    try:
        text = os.fspath(value)
    except TypeError:
        raise InvalidArgumentError(
            f"{what} must be a path (str or os.PathLike), not {type(value).__name__}",
            operation=operation,
        ) from None
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{what} must be a text path, not bytes", operation=operation)
    if not text:
        raise InvalidArgumentError(f"{what} is empty", operation=operation)
    if "\0" in text:
        raise InvalidArgumentError(
            f"{what} {text!r} contains a NUL character; C would truncate it", operation=operation
        )
    return text


def _guid_text(value: str | uuid.UUID, what: str = "layer id") -> str:
    """The canonical (lower-case, hyphenated) text of a GUID; InvalidArgumentError otherwise."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a GUID (str or uuid.UUID), not {value!r}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgumentError(f"{what} {value!r} is not a GUID") from None


def _options(document: Options) -> str | None:
    """Options as JSON text (models too); None stays NULL."""
    if document is None or isinstance(document, str):
        return document
    from pyhcs import schema  # noqa: PLC0415 (pydantic only when a model or dict is given)

    return schema.to_json(document)


def _check(code: int, operation: str, where: str) -> None:
    """Raise the typed error of a failed storage call; the message names its paths (these
    calls return no error document, only the HRESULT)."""
    if hr.failed(code):
        raise error_from_hresult(code, operation=operation, message=f"{where}: {hr.message(code)}")


def _wide(text: str | None) -> Any:
    # Paths and documents were checked for NUL already; this only converts.
    return ffi.NULL if text is None else ffi.new("WCHAR[]", text)


@dataclass(frozen=True, init=False)
class Layer:
    """One layer folder and its GUID; converts to and from the schema's ``Layer``.

    ``id`` defaults to a GUID derived from the path (``uuid5``), so the same folder gets the
    same id in every process. hcsshim derives its ids from the folder name with Windows'
    NameToGuid instead; pass ``id=`` to use such an id. ``path`` is used as given: HCS needs
    absolute paths (``PathType`` ``AbsolutePath``, the default).
    """

    path: str
    id: str
    path_type: str | None

    def __init__(
        self,
        path: PathLike,
        id: str | uuid.UUID | None = None,
        *,
        path_type: str | None = None,
    ) -> None:
        text = _text_path(path, "layer path")
        object.__setattr__(self, "path", text)
        guid = str(uuid.uuid5(LAYER_ID_NAMESPACE, text)) if id is None else _guid_text(id)
        object.__setattr__(self, "id", guid)
        if path_type is not None and not isinstance(path_type, str):
            raise InvalidArgumentError(f"path_type must be a str, not {path_type!r}")
        object.__setattr__(self, "path_type", path_type)

    # -- the schema ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The schema's ``Layer`` as a JSON object: ``{"Id", "Path", "PathType"?}``."""
        out: dict[str, Any] = {"Id": self.id, "Path": self.path}
        if self.path_type is not None:
            out["PathType"] = self.path_type
        return out

    def to_schema(self) -> schema.Layer:
        from pyhcs import schema  # noqa: PLC0415 (pydantic on demand)

        return schema.Layer.parse(self.to_dict())

    @classmethod
    def from_schema(cls, document: schema.Document) -> Layer:
        """A Layer from the schema's ``Layer`` (a model, a dict or JSON)."""
        from pyhcs import schema  # noqa: PLC0415 (pydantic on demand)

        model = schema.Layer.parse(document)
        if model.path is None:
            raise InvalidJsonError("a Layer needs a Path", json_path="$.Path")
        if model.id is None:
            raise InvalidJsonError("a Layer needs an Id", json_path="$.Id")
        path_type = model.path_type
        return cls(model.path, model.id, path_type=None if path_type is None else str(path_type))

    @property
    def files(self) -> Path:
        """The layer's content folder (``Files/``; a container on it sees this as its root)."""
        return Path(self.path) / "Files"

    # -- import and export -----------------------------------------------------------------

    def import_from(
        self,
        source: PathLike,
        parents: Parents = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        interval: float = 0.25,
    ) -> Layer:
        """Set this layer up (its folder is created) from a layer in transport format at
        ``source`` (``Files/``, ``Hives/``, ``UtilityVM/``, ``tombstones.txt``), on top of
        ``parents``. Returns self."""
        operation = "HcsImportLayer"
        src = _text_path(source, "source folder", operation)
        data = LayerChain.of(parents).to_json()
        _run(
            operation,
            lambda: lib.HcsImportLayer(_wide(self.path), _wide(src), _wide(data)),
            f"layer {self.path} from {src}",
            progress,
            interval,
            source=Path(src),
            destination=Path(self.path),
        )
        return self

    def export_to(
        self,
        folder: PathLike,
        parents: Parents = None,
        *,
        writable: bool = False,
        options: Options = None,
        progress: Callable[[Progress], None] | None = None,
        interval: float = 0.25,
    ) -> Path:
        """Write this layer in transport format into ``folder``, which must exist (HCS
        creates nothing there). ``writable=True`` for a container's writable layer (its own
        changes and tombstones, not its parents' files); ``options`` overrides the
        ``ExportLayerOptions`` document. Returns the folder."""
        operation = "HcsExportLayer"
        dest = _text_path(folder, "export folder", operation)
        data = LayerChain.of(parents).to_json()
        text = (
            _options(options)
            if options is not None
            else json.dumps({"IsWritableLayer": bool(writable)})
        )
        _run(
            operation,
            lambda: lib.HcsExportLayer(_wide(self.path), _wide(dest), _wide(data), _wide(text)),
            f"layer {self.path} to {dest}",
            progress,
            interval,
            source=Path(self.path),
            destination=Path(dest),
        )
        return Path(dest)

    # -- writable layers and the storage filter --------------------------------------------

    def initialize_writable(self, parents: Parents = None, options: Options = None) -> Layer:
        """Make this folder a container's writable (scratch) layer over ``parents``. Returns
        self."""
        data = LayerChain.of(parents).to_json()
        code = lib.HcsInitializeWritableLayer(
            _wide(self.path), _wide(data), _wide(_options(options))
        )
        _check(code, "HcsInitializeWritableLayer", f"layer {self.path}")
        return self

    def attach_filter(self, parents: Parents = None) -> None:
        """Attach the storage filter: the folder shows the union of itself and ``parents``
        (its own files win, then the top-most parent's), and writes land in it only."""
        data = LayerChain.of(parents).to_json()
        code = lib.HcsAttachLayerStorageFilter(_wide(self.path), _wide(data))
        _check(code, "HcsAttachLayerStorageFilter", f"layer {self.path}")

    def detach_filter(self) -> None:
        """Detach the storage filter; the folder keeps only the layer's own changes."""
        code = lib.HcsDetachLayerStorageFilter(_wide(self.path))
        _check(code, "HcsDetachLayerStorageFilter", f"layer {self.path}")

    @contextmanager
    def attached(self, parents: Parents = None) -> Iterator[Layer]:
        """``attach_filter`` for the time of a ``with`` block, detached however it ends."""
        self.attach_filter(parents)
        try:
            yield self
        finally:
            self.detach_filter()

    def initialize_legacy_writable(
        self, mount_path: PathLike, parents: Parents = None, options: Options = None
    ) -> Layer:
        """The legacy form: the volume at ``mount_path`` shows the union of ``parents``, this
        folder keeps the hive deltas. Returns self."""
        operation = "HcsInitializeLegacyWritableLayer"
        mount = _text_path(mount_path, "mount path", operation)
        data = LayerChain.of(parents).to_json()
        code = lib.HcsInitializeLegacyWritableLayer(
            _wide(mount), _wide(self.path), _wide(data), _wide(_options(options))
        )
        _check(code, operation, f"layer {self.path} mounted at {mount}")
        return self

    def export_legacy_writable(
        self, mount_path: PathLike, folder: PathLike, parents: Parents = None
    ) -> Path:
        """Export a legacy writable layer (volume at ``mount_path``, this folder's hives) in
        transport format into the existing ``folder``."""
        operation = "HcsExportLegacyWritableLayer"
        mount = _text_path(mount_path, "mount path", operation)
        dest = _text_path(folder, "export folder", operation)
        data = LayerChain.of(parents).to_json()
        code = lib.HcsExportLegacyWritableLayer(
            _wide(mount), _wide(self.path), _wide(dest), _wide(data)
        )
        _check(code, operation, f"layer {self.path} mounted at {mount} to {dest}")
        return Path(dest)

    # -- base layers and removal -----------------------------------------------------------

    def setup_base_os(self, options: Options = None, *, vhd: VhdHandle | None = None) -> None:
        """Prepare an imported base OS layer: ``options`` is an ``OsLayerOptions`` document
        (``{"Type": "Container"}`` when None); a ``"Vm"`` base takes the handle of its
        attached ``SystemTemplateBase.vhdx`` as ``vhd``."""
        handle = ffi.NULL if vhd is None else _vhd(vhd)
        code = lib.HcsSetupBaseOSLayer(_wide(self.path), handle, _wide(_options(options)))
        _check(code, "HcsSetupBaseOSLayer", f"layer {self.path}")

    def setup_base_os_volume(self, volume: PathLike, options: Options = None) -> None:
        """Like `setup_base_os`, from an already mounted volume at ``volume``."""
        operation = "HcsSetupBaseOSVolume"
        path = _text_path(volume, "volume path", operation)
        code = lib.HcsSetupBaseOSVolume(_wide(self.path), _wide(path), _wide(_options(options)))
        _check(code, operation, f"layer {self.path} from volume {path}")

    def destroy(self) -> None:
        """Delete the layer folder. HCS refuses a folder that is not a layer
        (InvalidLayerError) and a layer whose filter is still attached."""
        _check(lib.HcsDestroyLayer(_wide(self.path)), "HcsDestroyLayer", f"layer {self.path}")

    # -- display ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        extra = f", path_type={self.path_type!r}" if self.path_type is not None else ""
        return f"Layer({self.path!r}, id={self.id!r}{extra})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th>{escape(k)}</th><td><code>{escape(str(v))}</code></td></tr>"
            for k, v in self.to_dict().items()
        )
        return f"<table><caption>Layer</caption>{rows}</table>"


class LayerChain(Sequence[Layer]):
    """The parents of a layer, top-most (immediate parent) first and the base layer last: the
    ``LayerData`` document every storage call takes, and a container's ``Storage.Layers``.

    A layer appears once in a chain (ids are unique); an empty chain is a base layer's."""

    def __init__(
        self, layers: Iterable[Layer] = (), *, schema_version: tuple[int, int] = (2, 1)
    ) -> None:
        items = tuple(layers)
        seen: set[str] = set()
        for index, layer in enumerate(items):
            if not isinstance(layer, Layer):
                raise InvalidArgumentError(
                    f"layer {index} of the chain is a {type(layer).__name__}, not a Layer"
                )
            if layer.id in seen:
                raise InvalidArgumentError(f"layer {layer.id} appears twice in the chain")
            seen.add(layer.id)
        major, minor = schema_version
        self._layers = items
        self.schema_version = (int(major), int(minor))

    @classmethod
    def of(cls, parents: Parents) -> LayerChain:
        """A chain from what the methods accept: None (no parents), a Layer, Layers, a chain."""
        if parents is None:
            return cls()
        if isinstance(parents, LayerChain):
            return parents
        if isinstance(parents, Layer):
            return cls((parents,))
        if isinstance(parents, (str, bytes, os.PathLike)):
            raise InvalidArgumentError(
                "parents must be Layer objects (a path alone has no layer id): "
                f"wrap it as Layer({parents!r})"
            )
        return cls(parents)

    # -- Sequence --------------------------------------------------------------------------

    @overload
    def __getitem__(self, index: int) -> Layer: ...
    @overload
    def __getitem__(self, index: slice) -> LayerChain: ...
    def __getitem__(self, index: int | slice) -> Layer | LayerChain:
        if isinstance(index, slice):
            return LayerChain(self._layers[index], schema_version=self.schema_version)
        return self._layers[index]

    def __len__(self) -> int:
        return len(self._layers)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerChain):
            return NotImplemented
        return (self._layers, self.schema_version) == (other._layers, other.schema_version)

    def __hash__(self) -> int:
        return hash((self._layers, self.schema_version))

    # -- documents -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The ``LayerData`` document as a JSON object."""
        major, minor = self.schema_version
        return {
            "SchemaVersion": {"Major": major, "Minor": minor},
            "Layers": [layer.to_dict() for layer in self._layers],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def to_schema(self) -> schema.LayerData:
        from pyhcs import schema  # noqa: PLC0415 (pydantic on demand)

        return schema.LayerData.parse(self.to_dict())

    @classmethod
    def from_schema(cls, document: schema.Document) -> LayerChain:
        """A chain from a ``LayerData`` document (a model, a dict or JSON)."""
        from pyhcs import schema  # noqa: PLC0415 (pydantic on demand)

        model = schema.LayerData.parse(document)
        version = model.schema_version
        major, minor = DEFAULT_SCHEMA_VERSION
        if version is not None:
            major = major if version.major is None else int(version.major)
            minor = minor if version.minor is None else int(version.minor)
        return cls(
            (Layer.from_schema(layer) for layer in model.layers or []),
            schema_version=(major, minor),
        )

    def storage(self, writable: Layer | PathLike) -> dict[str, Any]:
        """A container's ``Storage``: these layers under the writable layer (or volume path)
        ``writable``, whose storage filter must be attached over this chain."""
        path = writable.path if isinstance(writable, Layer) else _text_path(writable, "path")
        return {"Layers": [layer.to_dict() for layer in self._layers], "Path": path}

    # -- display ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"LayerChain({list(self._layers)!r})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i}</td><td><code>{escape(layer.id)}</code></td>"
            f"<td><code>{escape(layer.path)}</code></td></tr>"
            for i, layer in enumerate(self._layers)
        )
        head = "<tr><th>#</th><th>Id</th><th>Path</th></tr>"
        return f"<table><caption>LayerChain (top-most first)</caption>{head}{rows}</table>"


#: What the methods accept as a layer's parents.
Parents = LayerChain | Layer | Iterable[Layer] | None


# -- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """One progress report of a long storage call (see the module docstring for its limits)."""

    operation: str
    phase: Literal["started", "running", "finished", "failed"]
    #: Files found in the destination that were not there before the call.
    files_done: int
    #: Files in the source tree, counted before the call (None when it could not be read).
    files_total: int | None

    @property
    def fraction(self) -> float | None:
        """``files_done / files_total`` capped at 1 (None when the total is unknown or 0)."""
        if not self.files_total:
            return None
        return min(1.0, self.files_done / self.files_total)


def _count(root: Path) -> int:
    """Files (anything but directories) under the transport-format trees of ``root``.

    An estimate: a folder that cannot be read while the call writes it counts as empty."""
    total = 0
    for tree in _TREES:
        for _directory, _dirs, names in os.walk(root / tree):
            total += len(names)
    return total


def _run(
    operation: str,
    call: Callable[[], int],
    where: str,
    progress: Callable[[Progress], None] | None,
    interval: float,
    *,
    source: Path,
    destination: Path,
) -> None:
    """One storage call; with ``progress``, on a worker thread while this thread reports."""
    if progress is None:
        _check(call(), operation, where)
        return
    if not interval > 0:
        raise InvalidArgumentError(f"interval must be > 0 seconds, not {interval!r}")
    total = _count(source) if source.is_dir() else None
    baseline = _count(destination)
    progress(Progress(operation, "started", 0, total))
    outcome: list[int] = []
    crashed: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 (handed to the caller below, never lost)
            crashed.append(exc)

    worker = threading.Thread(target=work, name=f"pyhcs-{operation}", daemon=True)
    worker.start()
    pending: BaseException | None = None
    while worker.is_alive():
        try:
            worker.join(interval)  # each wait is bounded; the loop is bounded by the call
            if worker.is_alive() and pending is None:
                done = max(0, _count(destination) - baseline)
                progress(Progress(operation, "running", done, total))
        except BaseException as exc:  # noqa: BLE001 (raised once the call returned)
            # The C call cannot be stopped and may still read our buffers: wait for it,
            # then raise what interrupted the reporting (a callback's error, Ctrl-C).
            pending = pending or exc
    if crashed:
        raise crashed[0]
    code = outcome[0]
    done = max(0, _count(destination) - baseline)
    if pending is not None:
        raise pending
    if hr.failed(code):
        progress(Progress(operation, "failed", done, total))
        _check(code, operation, where)
    progress(Progress(operation, "finished", done, total))


# -- overlay filters on volumes ---------------------------------------------------------------


def _overlay_data(parents: Parents, filter_type: FilterType) -> str:
    if filter_type not in ("WCIFS", "UnionFS"):
        raise InvalidArgumentError(f"filter_type must be 'WCIFS' or 'UnionFS', not {filter_type!r}")
    return json.dumps({**LayerChain.of(parents).to_dict(), "FilterType": filter_type})


def attach_overlay(
    volume: PathLike, parents: Parents, *, filter_type: FilterType = "WCIFS"
) -> None:
    """Present the union of ``parents`` at the volume mount point ``volume``."""
    operation = "HcsAttachOverlayFilter"
    path = _text_path(volume, "volume mount point", operation)
    code = lib.HcsAttachOverlayFilter(_wide(path), _wide(_overlay_data(parents, filter_type)))
    _check(code, operation, f"volume {path}")


def detach_overlay(
    volume: PathLike, parents: Parents = None, *, filter_type: FilterType = "WCIFS"
) -> None:
    """Remove the overlay from ``volume`` (HCS needs only the filter type)."""
    operation = "HcsDetachOverlayFilter"
    path = _text_path(volume, "volume mount point", operation)
    code = lib.HcsDetachOverlayFilter(_wide(path), _wide(_overlay_data(parents, filter_type)))
    _check(code, operation, f"volume {path}")


@contextmanager
def overlay(
    volume: PathLike, parents: Parents, *, filter_type: FilterType = "WCIFS"
) -> Iterator[Path]:
    """`attach_overlay` for the time of a ``with`` block; yields the volume's path."""
    attach_overlay(volume, parents, filter_type=filter_type)
    try:
        yield Path(volume)
    finally:
        detach_overlay(volume, parents, filter_type=filter_type)


# -- VHDs -------------------------------------------------------------------------------------

#: A VHD handle: a file object open on the VHD (its descriptor's OS handle is used), an int
#: taken as the raw HANDLE value, or a cffi ``HANDLE``.
VhdHandle = Any


def _vhd(vhd: VhdHandle) -> Any:
    if isinstance(vhd, ffi.CData):
        return vhd
    if isinstance(vhd, bool):
        raise InvalidArgumentError("a VHD handle is a file object, an int HANDLE or a cdata")
    if isinstance(vhd, int):
        return ffi.cast("HANDLE", vhd)
    fileno = getattr(vhd, "fileno", None)
    if fileno is None:
        raise InvalidArgumentError(
            f"a VHD handle is a file object, an int HANDLE or a cdata, not {type(vhd).__name__}"
        )
    fd = int(fileno())
    if sys.platform == "win32":
        import msvcrt  # noqa: PLC0415 (Windows only)

        return ffi.cast("HANDLE", msvcrt.get_osfhandle(fd))
    return ffi.cast("HANDLE", fd)


def format_writable_layer_vhd(vhd: VhdHandle) -> None:
    """Create and format (NTFS) the volume of a writable layer's VHD. Windows Server 2019
    wants a handle of the ``.vhdx`` file, later builds a virtual-disk (OpenVirtualDisk)
    handle."""
    _check(lib.HcsFormatWritableLayerVhd(_vhd(vhd)), "HcsFormatWritableLayerVhd", "VHD handle")


def vhd_mount_path(vhd: VhdHandle) -> str:
    """The volume path of a formatted, mounted writable-layer VHD (the string HCS returns is
    freed here)."""
    out = ffi.new("PWSTR *")
    code = lib.HcsGetLayerVhdMountPath(_vhd(vhd), out)
    path = take_wide(out[0])
    _check(code, "HcsGetLayerVhdMountPath", "VHD handle")
    if path is None:
        raise error_from_hresult(
            hr.E_POINTER,
            operation="HcsGetLayerVhdMountPath",
            message="HCS reported success but returned no mount path",
        )
    return path
