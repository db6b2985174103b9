/*
 * The one link from cli/options.c into the engine, stubbed for the unit
 * tests that compile cli/ sources in (options, the `vigil get` rendering):
 * they never open Redis, so this is never reached.
 */
#include <stddef.h>

#include "vigil/engine.h"

vg_err_t vg_engine_redis_for_reading(const struct vg_config *cfg, const char *override_url,
                                     char **url_out, struct vg_redis_child **child, char *errstr,
                                     size_t errstr_size)
{
    (void)cfg;
    (void)override_url;
    (void)url_out;
    (void)child;
    (void)errstr;
    (void)errstr_size;
    return VG_ERR_INVALID;
}
