/* Open connections per client address, for max_connections_per_ip: a hash
 * table (open addressing, linear probing, deletion by backward shift) that
 * never allocates after creation, so a flood of new addresses cannot make
 * it grow. Not thread-safe: the caller locks (server/guard.c). */
#ifndef SRV_ADDR_COUNT_H
#define SRV_ADDR_COUNT_H

#include <stddef.h>
#include <sys/socket.h>

/* An address as 16 bytes: IPv6, or IPv4 mapped as ::ffff:a.b.c.d. */
typedef struct srv_addr {
    unsigned char b[16];
} srv_addr;

typedef struct srv_addr_count srv_addr_count;

/* A table for up to max_addrs distinct addresses at once. NULL on OOM. */
srv_addr_count *srv_addr_count_create(size_t max_addrs);

/* Frees it. Accepts NULL. */
void srv_addr_count_destroy(srv_addr_count *t);

/* The key of a socket address (all zero for an unknown family or NULL). */
srv_addr srv_addr_of(const struct sockaddr *sa);

/* Takes one slot for a if it holds fewer than cap (cap <= 0: no cap), or
 * when the table is full refuses. Returns 1 if taken, 0 if refused. */
int srv_addr_count_take(srv_addr_count *t, const srv_addr *a, int cap);

/* Gives back one slot of a (taken before). */
void srv_addr_count_give(srv_addr_count *t, const srv_addr *a);

/* How many slots a holds. */
int srv_addr_count_get(const srv_addr_count *t, const srv_addr *a);

#endif
