"""HRESULT values HCS and HCN return, with their names and messages, and HRESULT arithmetic.

Data and pure functions only: `pyhcs.errors` turns these codes into exceptions, the emulator
returns them, and both agree because there is one table. Codes are kept as unsigned 32-bit
integers; C hands them over as signed ``long`` (sign-extended on LP64), so every entry point
normalises with `to_unsigned` first. Messages are the English system texts HCS reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FACILITY_WIN32: Final = 0x7
FACILITY_VIRTUALIZATION: Final = 0x37
FACILITY_HCN: Final = 0x3B
"""The facility of the HCN_E_* codes (0x803Bxxxx)."""

_MASK32: Final = 0xFFFFFFFF


@dataclass(frozen=True)
class HResultInfo:
    """A known HRESULT: its unsigned value, symbolic name and the message HCS reports for it."""

    hresult: int
    name: str
    message: str


# --- success -------------------------------------------------------------------------------
S_OK: Final = 0x00000000
S_FALSE: Final = 0x00000001

# --- COM / Win32 failures HCS returns --------------------------------------------------
E_NOTIMPL: Final = 0x80004001
E_POINTER: Final = 0x80004003
E_ABORT: Final = 0x80004004
E_FAIL: Final = 0x80004005
E_UNEXPECTED: Final = 0x8000FFFF
E_ACCESSDENIED: Final = 0x80070005
E_HANDLE: Final = 0x80070006
E_OUTOFMEMORY: Final = 0x8007000E
E_INVALIDARG: Final = 0x80070057
ERROR_FILE_NOT_FOUND: Final = 0x80070002
ERROR_PATH_NOT_FOUND: Final = 0x80070003
ERROR_TOO_MANY_OPEN_FILES: Final = 0x80070004
ERROR_INVALID_DATA: Final = 0x8007000D
ERROR_NOT_SUPPORTED: Final = 0x80070032
ERROR_BROKEN_PIPE: Final = 0x8007006D
ERROR_BUSY: Final = 0x800700AA
ERROR_DISK_FULL: Final = 0x80070070
ERROR_MOD_NOT_FOUND: Final = 0x8007007E
ERROR_PROC_NOT_FOUND: Final = 0x8007007F
ERROR_ALREADY_EXISTS: Final = 0x800700B7
ERROR_BAD_EXE_FORMAT: Final = 0x800700C1
ERROR_FILENAME_EXCED_RANGE: Final = 0x800700CE
ERROR_OPERATION_ABORTED: Final = 0x800703E3
ERROR_NOT_FOUND: Final = 0x80070490
ERROR_TIMEOUT: Final = 0x800705B4
RPC_S_SERVER_UNAVAILABLE: Final = 0x800706BA
RPC_S_CALL_FAILED: Final = 0x800706BE
ERROR_INVALID_STATE: Final = 0x8007139F

# --- HCS (facility 0x37) ------------------------------------------------------------------
HCS_E_TERMINATED_DURING_START: Final = 0x80370100
HCS_E_IMAGE_MISMATCH: Final = 0x80370101
HCS_E_HYPERV_NOT_INSTALLED: Final = 0x80370102
HCS_E_INVALID_STATE: Final = 0x80370105
HCS_E_UNEXPECTED_EXIT: Final = 0x80370106
HCS_E_TERMINATED: Final = 0x80370107
HCS_E_CONNECT_FAILED: Final = 0x80370108
HCS_E_CONNECTION_TIMEOUT: Final = 0x80370109
HCS_E_CONNECTION_CLOSED: Final = 0x8037010A
HCS_E_UNKNOWN_MESSAGE: Final = 0x8037010B
HCS_E_UNSUPPORTED_PROTOCOL_VERSION: Final = 0x8037010C
HCS_E_INVALID_JSON: Final = 0x8037010D
HCS_E_SYSTEM_NOT_FOUND: Final = 0x8037010E
HCS_E_SYSTEM_ALREADY_EXISTS: Final = 0x8037010F
HCS_E_SYSTEM_ALREADY_STOPPED: Final = 0x80370110
HCS_E_PROTOCOL_ERROR: Final = 0x80370111
HCS_E_INVALID_LAYER: Final = 0x80370112
HCS_E_WINDOWS_INSIDER_REQUIRED: Final = 0x80370113
HCS_E_SERVICE_NOT_AVAILABLE: Final = 0x80370114
HCS_E_OPERATION_NOT_STARTED: Final = 0x80370115
HCS_E_OPERATION_ALREADY_STARTED: Final = 0x80370116
HCS_E_OPERATION_PENDING: Final = 0x80370117
HCS_E_OPERATION_TIMEOUT: Final = 0x80370118
HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET: Final = 0x80370119
HCS_E_OPERATION_RESULT_ALLOCATION_FAILED: Final = 0x8037011A
HCS_E_ACCESS_DENIED: Final = 0x8037011B
HCS_E_GUEST_CRITICAL_ERROR: Final = 0x8037011C
HCS_E_PROCESS_INFO_NOT_AVAILABLE: Final = 0x8037011D
HCS_E_SERVICE_DISCONNECT: Final = 0x8037011E
HCS_E_PROCESS_ALREADY_STOPPED: Final = 0x8037011F
HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION: Final = 0x80370120
HCS_E_OPERATION_ALREADY_CANCELLED: Final = 0x80370121

# Legacy vmcompute.dll statuses without an HCS_E_ name (only ever seen as 0xC037xxxx).
ERROR_VMCOMPUTE_OPERATION_PENDING: Final = 0xC0370103
ERROR_VMCOMPUTE_TOO_MANY_NOTIFICATIONS: Final = 0xC0370104

# --- HCN (facility 0x3B) -------------------------------------------------------------------
HCN_E_NETWORK_NOT_FOUND: Final = 0x803B0001
HCN_E_ENDPOINT_NOT_FOUND: Final = 0x803B0002
HCN_E_LAYER_NOT_FOUND: Final = 0x803B0003
HCN_E_SWITCH_NOT_FOUND: Final = 0x803B0004
HCN_E_SUBNET_NOT_FOUND: Final = 0x803B0005
HCN_E_ADAPTER_NOT_FOUND: Final = 0x803B0006
HCN_E_PORT_NOT_FOUND: Final = 0x803B0007
HCN_E_POLICY_NOT_FOUND: Final = 0x803B0008
HCN_E_VFP_PORTSETTING_NOT_FOUND: Final = 0x803B0009
HCN_E_INVALID_NETWORK: Final = 0x803B000A
HCN_E_INVALID_NETWORK_TYPE: Final = 0x803B000B
HCN_E_INVALID_ENDPOINT: Final = 0x803B000C
HCN_E_INVALID_POLICY: Final = 0x803B000D
HCN_E_INVALID_POLICY_TYPE: Final = 0x803B000E
HCN_E_INVALID_REMOTE_ENDPOINT_OPERATION: Final = 0x803B000F
HCN_E_NETWORK_ALREADY_EXISTS: Final = 0x803B0010
HCN_E_LAYER_ALREADY_EXISTS: Final = 0x803B0011
HCN_E_POLICY_ALREADY_EXISTS: Final = 0x803B0012
HCN_E_PORT_ALREADY_EXISTS: Final = 0x803B0013
HCN_E_ENDPOINT_ALREADY_ATTACHED: Final = 0x803B0014
HCN_E_REQUEST_UNSUPPORTED: Final = 0x803B0015
HCN_E_MAPPING_NOT_SUPPORTED: Final = 0x803B0016
HCN_E_DEGRADED_OPERATION: Final = 0x803B0017
HCN_E_SHARED_SWITCH_MODIFICATION: Final = 0x803B0018
HCN_E_GUID_CONVERSION_FAILURE: Final = 0x803B0019
HCN_E_REGKEY_FAILURE: Final = 0x803B001A
HCN_E_INVALID_JSON: Final = 0x803B001B
HCN_E_INVALID_JSON_REFERENCE: Final = 0x803B001C
HCN_E_ENDPOINT_SHARING_DISABLED: Final = 0x803B001D
HCN_E_INVALID_IP: Final = 0x803B001E
HCN_E_SWITCH_EXTENSION_NOT_FOUND: Final = 0x803B001F
HCN_E_MANAGER_STOPPED: Final = 0x803B0020
GCN_E_MODULE_NOT_FOUND: Final = 0x803B0021
GCN_E_NO_REQUEST_HANDLERS: Final = 0x803B0022
GCN_E_REQUEST_UNSUPPORTED: Final = 0x803B0023
GCN_E_RUNTIMEKEYS_FAILED: Final = 0x803B0024
GCN_E_NETADAPTER_TIMEOUT: Final = 0x803B0025
GCN_E_NETADAPTER_NOT_FOUND: Final = 0x803B0026
GCN_E_NETCOMPARTMENT_NOT_FOUND: Final = 0x803B0027
GCN_E_NETINTERFACE_NOT_FOUND: Final = 0x803B0028
GCN_E_DEFAULTNAMESPACE_EXISTS: Final = 0x803B0029
HCN_E_ICS_DISABLED: Final = 0x803B002A
HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS: Final = 0x803B002B
HCN_E_ENTITY_HAS_REFERENCES: Final = 0x803B002C
HCN_E_INVALID_INTERNAL_PORT: Final = 0x803B002D
HCN_E_NAMESPACE_ATTACH_FAILED: Final = 0x803B002E
HCN_E_ADDR_INVALID_OR_RESERVED: Final = 0x803B002F
HCN_E_INVALID_PREFIX: Final = 0x803B0030
HCN_E_OBJECT_USED_AFTER_UNLOAD: Final = 0x803B0031
HCN_E_INVALID_SUBNET: Final = 0x803B0032
HCN_E_INVALID_IP_SUBNET: Final = 0x803B0033
HCN_E_ENDPOINT_NOT_ATTACHED: Final = 0x803B0034
HCN_E_ENDPOINT_NOT_LOCAL: Final = 0x803B0035
HCN_INTERFACEPARAMETERS_ALREADY_APPLIED: Final = 0x803B0036
HCN_E_VFP_NOT_ALLOWED: Final = 0x803B0037

_MESSAGES: Final[dict[int, str]] = {
    S_OK: "The operation completed successfully.",
    S_FALSE: "The operation completed successfully (S_FALSE).",
    E_NOTIMPL: "Not implemented.",
    E_POINTER: "Invalid pointer.",
    E_ABORT: "Operation aborted.",
    E_FAIL: "Unspecified error.",
    E_UNEXPECTED: "Catastrophic failure.",
    E_ACCESSDENIED: "Access is denied.",
    E_HANDLE: "The handle is invalid.",
    E_OUTOFMEMORY: "Not enough memory resources are available to complete this operation.",
    E_INVALIDARG: "The parameter is incorrect.",
    ERROR_FILE_NOT_FOUND: "The system cannot find the file specified.",
    ERROR_PATH_NOT_FOUND: "The system cannot find the path specified.",
    ERROR_TOO_MANY_OPEN_FILES: "The system cannot open the file.",
    ERROR_INVALID_DATA: "The data is invalid.",
    ERROR_NOT_SUPPORTED: "The request is not supported.",
    ERROR_BROKEN_PIPE: "The pipe has been ended.",
    ERROR_BUSY: "The requested resource is in use.",
    ERROR_DISK_FULL: "There is not enough space on the disk.",
    ERROR_MOD_NOT_FOUND: "The specified module could not be found.",
    ERROR_PROC_NOT_FOUND: "The specified procedure could not be found.",
    ERROR_ALREADY_EXISTS: "Cannot create a file when that file already exists.",
    ERROR_BAD_EXE_FORMAT: "The program is not a valid Win32 application.",
    ERROR_FILENAME_EXCED_RANGE: "The filename or extension is too long.",
    ERROR_OPERATION_ABORTED: "The I/O operation has been aborted.",
    ERROR_NOT_FOUND: "Element not found.",
    ERROR_TIMEOUT: "This operation returned because the timeout period expired.",
    RPC_S_SERVER_UNAVAILABLE: "The RPC server is unavailable.",
    RPC_S_CALL_FAILED: "The remote procedure call failed.",
    ERROR_INVALID_STATE: "The group or resource is not in the correct state to perform the "
    "requested operation.",
    HCS_E_TERMINATED_DURING_START: "The virtual machine or container exited unexpectedly while "
    "starting.",
    HCS_E_IMAGE_MISMATCH: "The container operating system does not match the host operating "
    "system.",
    HCS_E_HYPERV_NOT_INSTALLED: "The virtual machine could not be started because a required "
    "feature is not installed.",
    HCS_E_INVALID_STATE: "The requested virtual machine or container operation is not valid in "
    "the current state.",
    HCS_E_UNEXPECTED_EXIT: "The virtual machine or container exited unexpectedly.",
    HCS_E_TERMINATED: "The virtual machine or container was forcefully exited.",
    HCS_E_CONNECT_FAILED: "A connection could not be established with the container or virtual "
    "machine.",
    HCS_E_CONNECTION_TIMEOUT: "The operation timed out because a response was not received from "
    "the virtual machine or container.",
    HCS_E_CONNECTION_CLOSED: "The connection with the virtual machine or container was closed.",
    HCS_E_UNKNOWN_MESSAGE: "An unknown internal message was received by the virtual machine or "
    "container.",
    HCS_E_UNSUPPORTED_PROTOCOL_VERSION: "The virtual machine or container does not support an "
    "available version of the communication protocol with the host.",
    HCS_E_INVALID_JSON: "The virtual machine or container JSON document is invalid.",
    HCS_E_SYSTEM_NOT_FOUND: "A virtual machine or container with the specified identifier does "
    "not exist.",
    HCS_E_SYSTEM_ALREADY_EXISTS: "A virtual machine or container with the specified identifier "
    "already exists.",
    HCS_E_SYSTEM_ALREADY_STOPPED: "The virtual machine or container with the specified "
    "identifier is not running.",
    HCS_E_PROTOCOL_ERROR: "A communication protocol error has occurred between the virtual "
    "machine or container and the host.",
    HCS_E_INVALID_LAYER: "The container image contains a layer with an unrecognized format.",
    HCS_E_WINDOWS_INSIDER_REQUIRED: "To use this container image, you must join the Windows "
    "Insider Program.",
    HCS_E_SERVICE_NOT_AVAILABLE: "The operation could not be started because a required feature "
    "is not installed.",
    HCS_E_OPERATION_NOT_STARTED: "The operation has not started.",
    HCS_E_OPERATION_ALREADY_STARTED: "The operation is already running.",
    HCS_E_OPERATION_PENDING: "The operation is still running.",
    HCS_E_OPERATION_TIMEOUT: "The operation did not complete in time.",
    HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET: "An event callback has already been registered "
    "on this handle.",
    HCS_E_OPERATION_RESULT_ALLOCATION_FAILED: "Not enough memory available to return the result "
    "of the operation.",
    HCS_E_ACCESS_DENIED: "Insufficient privileges. Only administrators or users that are members "
    "of the Hyper-V Administrators user group are permitted to access virtual machines or "
    "containers.",
    HCS_E_GUEST_CRITICAL_ERROR: "The virtual machine or container reported a critical error and "
    "was stopped or restarted.",
    HCS_E_PROCESS_INFO_NOT_AVAILABLE: "The process information is not available.",
    HCS_E_SERVICE_DISCONNECT: "The host compute system service has disconnected unexpectedly.",
    HCS_E_PROCESS_ALREADY_STOPPED: "The process has already exited.",
    HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION: "The virtual machine or container is not "
    "configured to perform the operation.",
    HCS_E_OPERATION_ALREADY_CANCELLED: "The operation has already been cancelled.",
    ERROR_VMCOMPUTE_OPERATION_PENDING: "The operation is pending (legacy vmcompute status).",
    ERROR_VMCOMPUTE_TOO_MANY_NOTIFICATIONS: "Too many notifications are registered (legacy "
    "vmcompute status).",
    HCN_E_NETWORK_NOT_FOUND: "The network was not found.",
    HCN_E_ENDPOINT_NOT_FOUND: "The endpoint was not found.",
    HCN_E_LAYER_NOT_FOUND: "The network's underlying layer was not found.",
    HCN_E_SWITCH_NOT_FOUND: "The virtual switch was not found.",
    HCN_E_SUBNET_NOT_FOUND: "The network does not have a subnet for this endpoint.",
    HCN_E_ADAPTER_NOT_FOUND: "An adapter was not found.",
    HCN_E_PORT_NOT_FOUND: "The switch-port was not found.",
    HCN_E_POLICY_NOT_FOUND: "An expected policy was not found.",
    HCN_E_VFP_PORTSETTING_NOT_FOUND: "A required VFP port setting was not found.",
    HCN_E_INVALID_NETWORK: "The provided network configuration is invalid or missing parameters.",
    HCN_E_INVALID_NETWORK_TYPE: "Invalid network type.",
    HCN_E_INVALID_ENDPOINT: "The provided endpoint configuration is invalid or missing parameters.",
    HCN_E_INVALID_POLICY: "The provided policy configuration is invalid or missing parameters.",
    HCN_E_INVALID_POLICY_TYPE: "Invalid policy type.",
    HCN_E_INVALID_REMOTE_ENDPOINT_OPERATION: "This requested operation is invalid for a remote "
    "endpoint.",
    HCN_E_NETWORK_ALREADY_EXISTS: "A network with this name already exists.",
    HCN_E_LAYER_ALREADY_EXISTS: "A network layer with this name already exists.",
    HCN_E_POLICY_ALREADY_EXISTS: "Policy information already exists on this object.",
    HCN_E_PORT_ALREADY_EXISTS: "The specified port already exists.",
    HCN_E_ENDPOINT_ALREADY_ATTACHED: "This endpoint is already attached to the switch.",
    HCN_E_REQUEST_UNSUPPORTED: "The specified request is unsupported.",
    HCN_E_MAPPING_NOT_SUPPORTED: "Port mapping is not supported on the given network.",
    HCN_E_DEGRADED_OPERATION: "There was an operation attempted on a degraded object.",
    HCN_E_SHARED_SWITCH_MODIFICATION: "Cannot modify a switch shared by multiple networks.",
    HCN_E_GUID_CONVERSION_FAILURE: "Failed to interpret a parameter as a GUID.",
    HCN_E_REGKEY_FAILURE: "Failed to process registry key.",
    HCN_E_INVALID_JSON: "Invalid JSON document string.",
    HCN_E_INVALID_JSON_REFERENCE: "The reference is invalid in the JSON document.",
    HCN_E_ENDPOINT_SHARING_DISABLED: "Endpoint sharing is disabled.",
    HCN_E_INVALID_IP: "IP address is either invalid or not part of any configured subnet(s).",
    HCN_E_SWITCH_EXTENSION_NOT_FOUND: "The specified switch extension does not exist on this "
    "switch.",
    HCN_E_MANAGER_STOPPED: "Operation cannot be performed while service is stopping.",
    GCN_E_MODULE_NOT_FOUND: "Operation cannot be performed while service module not found.",
    GCN_E_NO_REQUEST_HANDLERS: "Request handlers not present to handle the JSON request.",
    GCN_E_REQUEST_UNSUPPORTED: "The specified request is unsupported.",
    GCN_E_RUNTIMEKEYS_FAILED: "Add runtime keys to container failed.",
    GCN_E_NETADAPTER_TIMEOUT: "Timeout while waiting for network adapter with the given "
    "instance id.",
    GCN_E_NETADAPTER_NOT_FOUND: "Network adapter not found for the given instance id.",
    GCN_E_NETCOMPARTMENT_NOT_FOUND: "Network compartment not found for the given id.",
    GCN_E_NETINTERFACE_NOT_FOUND: "Network interface not found for the given id.",
    GCN_E_DEFAULTNAMESPACE_EXISTS: "Default namespace already exists.",
    HCN_E_ICS_DISABLED: "Internet Connection Sharing service (SharedAccess) is disabled and "
    "cannot be started.",
    HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS: "This requested operation is invalid as endpoint is "
    "already part of a network namespace.",
    HCN_E_ENTITY_HAS_REFERENCES: "The specified entity cannot be removed while it still has "
    "references.",
    HCN_E_INVALID_INTERNAL_PORT: "The internal port must exist and cannot be zero.",
    HCN_E_NAMESPACE_ATTACH_FAILED: "The requested operation for attach namespace failed.",
    HCN_E_ADDR_INVALID_OR_RESERVED: "An address provided is invalid or reserved.",
    HCN_E_INVALID_PREFIX: "The prefix provided is invalid.",
    HCN_E_OBJECT_USED_AFTER_UNLOAD: "A call was performed against an object that was torn down.",
    HCN_E_INVALID_SUBNET: "The provided subnet configuration is invalid or missing parameters.",
    HCN_E_INVALID_IP_SUBNET: "The provided IP subnet configuration is invalid or missing "
    "parameters.",
    HCN_E_ENDPOINT_NOT_ATTACHED: "The endpoint must be attached to complete the operation.",
    HCN_E_ENDPOINT_NOT_LOCAL: "The endpoint must be local to complete the operation.",
    HCN_INTERFACEPARAMETERS_ALREADY_APPLIED: "Cannot apply more than one InterfaceParameters "
    "policy.",
    HCN_E_VFP_NOT_ALLOWED: "A network of this type can not be created because VFP is not "
    "available.",
}


def _build_table() -> dict[int, HResultInfo]:
    names = {
        value: name
        for name, value in globals().items()
        if name.isupper()
        and isinstance(value, int)
        and not name.startswith(("FACILITY_", "_"))
        and value in _MESSAGES
    }
    return {code: HResultInfo(code, names[code], _MESSAGES[code]) for code in _MESSAGES}


#: Every HRESULT pyhcs knows, by unsigned value.
KNOWN: Final[dict[int, HResultInfo]] = _build_table()


def to_unsigned(hr: int) -> int:
    """The HRESULT as an unsigned 32-bit value, whatever width and sign C handed over."""
    return hr & _MASK32


def to_signed(hr: int) -> int:
    """The HRESULT as a signed 32-bit value, as HCS writes it in JSON (``"Error": -2143878899``)."""
    value = hr & _MASK32
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def failed(hr: int) -> bool:
    """FAILED(hr): the severity bit is set."""
    return bool(hr & 0x8000_0000)


def succeeded(hr: int) -> bool:
    """SUCCEEDED(hr): S_OK, S_FALSE and any other value without the severity bit."""
    return not failed(hr)


def facility(hr: int) -> int:
    """HRESULT_FACILITY(hr)."""
    return (hr >> 16) & 0x1FFF


def code(hr: int) -> int:
    """HRESULT_CODE(hr): the low 16 bits."""
    return hr & 0xFFFF


def hresult_from_win32(error: int) -> int:
    """HRESULT_FROM_WIN32: a Win32 error code as an HRESULT (0 stays S_OK)."""
    if error <= 0 or error > 0xFFFF:
        return to_unsigned(error)
    return 0x8007_0000 | error


def win32_from_hresult(hr: int) -> int | None:
    """The Win32 error code inside a FACILITY_WIN32 HRESULT, or None for any other HRESULT."""
    value = to_unsigned(hr)
    if value & 0x1FFF_0000 == FACILITY_WIN32 << 16:
        return code(value)
    return None


def canonical(hr: int) -> int:
    """The computecore form of a code: legacy vmcompute 0xC037xxxx becomes 0x8037xxxx.

    Only codes that have an HCS_E_ name are folded; the two legacy-only statuses stay as they
    are, so callers never see a name that does not exist.
    """
    value = to_unsigned(hr)
    if value & 0xFFFF_0000 == 0xC037_0000:
        folded = 0x8037_0000 | code(value)
        if folded in KNOWN:
            return folded
    return value


def is_legacy(hr: int) -> bool:
    """Whether the code is in the legacy vmcompute 0xC037xxxx form."""
    return to_unsigned(hr) & 0xFFFF_0000 == 0xC037_0000


def lookup(hr: int) -> HResultInfo | None:
    """The table entry for a code (legacy forms resolve to their HCS_E_ entry)."""
    return KNOWN.get(canonical(hr))


def name(hr: int) -> str:
    """Symbolic name, or the hex value for a code pyhcs does not know."""
    info = lookup(hr)
    return info.name if info else f"0x{to_unsigned(hr):08X}"


def message(hr: int) -> str:
    """The English system message for a code, or a generic one naming its facility."""
    info = lookup(hr)
    if info:
        return info.message
    value = to_unsigned(hr)
    return f"Unknown HRESULT 0x{value:08X} (facility 0x{facility(value):X}, code {code(value)})."


def describe(hr: int) -> str:
    """``NAME (0x........)``, the way pyhcs prints a code."""
    return f"{name(hr)} (0x{to_unsigned(hr):08X})"
