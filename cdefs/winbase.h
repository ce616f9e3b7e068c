/* pyhcs: dll=kernel32.dll */
/* The two kernel32 functions the binding needs (SDK winbase.h / handleapi.h): LocalFree releases
   the strings HCS returns, CloseHandle closes the std pipe handles of a process. */

HLOCAL WINAPI LocalFree(HLOCAL hMem);
BOOL WINAPI CloseHandle(HANDLE hObject);
