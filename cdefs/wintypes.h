/* Windows base types used by the HCS, HCN and system declarations (minwindef.h, winnt.h,
   guiddef.h, basetsd.h). Only the types the other headers need are declared here.
   ABI rules: WCHAR is char16_t (UTF-16 on every platform, never wchar_t); HRESULT is long and
   DWORD/ULONG are unsigned long, exactly as the SDK spells them (32-bit on Windows, LLP64);
   handles are opaque pointers. */

typedef char16_t WCHAR;
typedef WCHAR* PWSTR;
typedef const WCHAR* PCWSTR;

typedef long HRESULT;
typedef int BOOL;
typedef unsigned long DWORD;
typedef unsigned long ULONG;
typedef unsigned short USHORT;
typedef unsigned short UINT16;
typedef unsigned int UINT32;
typedef unsigned long long UINT64;

typedef void* LPVOID;
typedef void* HANDLE;
typedef HANDLE HLOCAL;

typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID;
typedef const GUID* REFGUID;

/* Only ever passed through (HCS requires NULL), so its members are not declared. */
typedef struct _SECURITY_DESCRIPTOR SECURITY_DESCRIPTOR;
