/* Connections per address (see addr_count.h). */
#include "addr_count.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"

typedef struct slot {
    srv_addr a;
    int count; /* 0 = empty */
} slot;

struct srv_addr_count {
    slot *slots;
    size_t mask, used, max_used;
};

srv_addr_count *srv_addr_count_create(size_t max_addrs)
{
    srv_addr_count *t = ic_calloc(1, sizeof *t);
    size_t n = 16;
    while (n < 2 * max_addrs + 2) /* at most half full: short probe chains */
        n *= 2;
    if (t)
        t->slots = ic_calloc(n, sizeof *t->slots);
    if (!t || !t->slots) {
        ic_free(t);
        return NULL;
    }
    t->mask = n - 1;
    t->max_used = max_addrs;
    return t;
}

void srv_addr_count_destroy(srv_addr_count *t)
{
    if (!t)
        return;
    ic_free(t->slots);
    ic_free(t);
}

srv_addr srv_addr_of(const struct sockaddr *sa)
{
    srv_addr a;
    memset(&a, 0, sizeof a);
    if (sa && sa->sa_family == AF_INET) {
        a.b[10] = a.b[11] = 0xff;
        memcpy(a.b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        memcpy(a.b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
    return a;
}

static size_t home_of(const srv_addr_count *t, const srv_addr *a)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ a->b[i]) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29)) & t->mask;
}

/* The slot of a, or the empty slot where it would go. */
static slot *find(const srv_addr_count *t, const srv_addr *a)
{
    for (size_t i = home_of(t, a);; i = (i + 1) & t->mask)
        if (t->slots[i].count == 0 || memcmp(&t->slots[i].a, a, sizeof *a) == 0)
            return &t->slots[i];
}

int srv_addr_count_take(srv_addr_count *t, const srv_addr *a, int cap)
{
    slot *s = find(t, a);
    if (cap > 0 && s->count >= cap)
        return 0;
    if (s->count == 0) {
        if (t->used >= t->max_used)
            return 0;
        s->a = *a;
        t->used++;
    }
    s->count++;
    return 1;
}

void srv_addr_count_give(srv_addr_count *t, const srv_addr *a)
{
    slot *s = find(t, a);
    if (s->count == 0 || --s->count > 0)
        return;
    t->used--;
    /* Backward shift: move later members of the chain into the hole when
     * their home is not between the hole and them. */
    size_t i = (size_t)(s - t->slots);
    for (size_t j = (i + 1) & t->mask; t->slots[j].count; j = (j + 1) & t->mask) {
        size_t home = home_of(t, &t->slots[j].a);
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->slots[i] = t->slots[j];
            t->slots[j].count = 0;
            i = j;
        }
    }
}

int srv_addr_count_get(const srv_addr_count *t, const srv_addr *a)
{
    return find(t, a)->count;
}
