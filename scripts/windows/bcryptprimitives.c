/* Wine 8 (Debian 12's wine64) lacks bcryptprimitives.dll, from which Rust's std (>= 1.78)
 * imports ProcessPrng: a Windows binary built by Rust then does not load under it. This stub
 * gives ProcessPrng on top of RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * Only for running deltadrop.exe under Wine here; a real Windows has the DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
