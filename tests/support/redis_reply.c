/* A Redis reply read as a number, for the tests' raw commands (support.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "support.h"

long long vg_test_reply_int(struct redisReply *reply, const char *what)
{
    long long n = LLONG_MIN;

    if (!reply) {
        fprintf(stderr, "%s: no reply\n", what);
        return LLONG_MIN;
    }
    if (reply->type == REDIS_REPLY_INTEGER) {
        n = reply->integer;
    } else if (reply->type == REDIS_REPLY_NIL) {
        n = -1;
    } else if (reply->type == REDIS_REPLY_STRING) {
        char *end = NULL;

        errno = 0;
        n = strtoll(reply->str, &end, 10);
        if (errno != 0 || end == reply->str || *end != '\0') {
            n = LLONG_MIN;
        }
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
               reply->element[0]->type == REDIS_REPLY_INTEGER) {
        n = reply->element[0]->integer;
    }
    if (n == LLONG_MIN) {
        fprintf(stderr, "%s: reply type %d (%s), want a number\n", what, reply->type,
                reply->str ? reply->str : "");
    }
    freeReplyObject(reply);
    return n;
}
