/* pyhcs: dll=ole32.dll */
/* CoTaskMemFree (SDK combaseapi.h, STDAPI_(void)): releases strings returned by HCN (and,
   in practice, by HCS). */

void WINAPI CoTaskMemFree(LPVOID pv);
