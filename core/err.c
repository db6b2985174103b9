/* vg_err_t names and classification. */
#include "vigil/err.h"

const char *vg_err_name(vg_err_t err)
{
    switch (err) {
    case VG_OK:
        return "OK";
    case VG_ERR_INVALID:
        return "INVALID";
    case VG_ERR_PARSE:
        return "PARSE";
    case VG_ERR_IO:
        return "IO";
    case VG_ERR_BACKEND:
        return "BACKEND";
    case VG_ERR_TIMEOUT:
        return "TIMEOUT";
    case VG_ERR_REJECTED:
        return "REJECTED";
    case VG_ERR_FATAL:
        return "FATAL";
    case VG_ERR_CONFLICT:
        return "CONFLICT";
    }
    return "UNKNOWN";
}

bool vg_err_is_retriable(vg_err_t err)
{
    return err == VG_ERR_BACKEND || err == VG_ERR_TIMEOUT || err == VG_ERR_CONFLICT;
}
