/*
 * vigil-noop-milter: the cheapest possible libmilter filter, the "floor" that
 * benchmarks compare vigil-milter against.  It accepts everything.
 *
 *   vigil-noop-milter -p SOCKET [--add-header] [--nodelay] [--answer-data] [--receive] [--spin-us N]
 *
 *   -p SOCKET      libmilter socket spec: inet:PORT@HOST, inet6:PORT@HOST, unix:/path
 *   --add-header   add "X-Noop: 1" at end of message.  libmilter then writes two
 *                  replies (ADDHEADER, ACCEPT) in two write(2)s; over TCP the second
 *                  one waits for the MTA's delayed ACK of the first (Nagle): ~40 ms.
 *   --nodelay      set TCP_NODELAY on the listening socket so that accepted
 *                  connections inherit it; removes that stall.
 *   --answer-data  receive the DATA event and answer it (no SMFIP_NODATA, no
 *                  SMFIP_NR_DATA).  Removes the *MTA-side* stall described below.
 *   --receive      do not skip events: receive connect, helo, envelope, headers
 *                  and body (with every no-reply flag the MTA offers), to measure
 *                  the cost of transport alone.
 *   --spin-us N    burn N microseconds of CPU at end of message: a filter with
 *                  work to do but nothing else of a real one, to see how
 *                  libmilter shares the CPU among sessions when that work adds up.
 *
 * By default it asks the MTA to skip every event it can and to expect no reply
 * for every event it may, so the MTA sends only OPTNEG, some macros, end-of-message,
 * ABORT and QUIT.
 *
 * The MTA-side stall (measured with Postfix 3.7 over inet): Postfix's smtpd
 * flushes what it has buffered for the filter when it hands the connection to
 * the cleanup server after the DATA event, and cleanup then writes the message
 * events.  If the filter answered nothing since the last read (DATA skipped or
 * no-reply), those are two writes without a read in between: Nagle in Postfix
 * holds the second one until the filter's kernel sends its delayed ACK, ~40 ms
 * per message.  TCP_NODELAY on the filter side cannot help; answering DATA can,
 * because the reply carries the ACK.  A libmilter filter that registers no
 * xxfi_data callback gets SMFIP_NODATA set for it automatically, and the stall.
 */

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static bool opt_add_header = false;
static bool opt_answer_data = false;
static bool opt_receive = false;
static long opt_spin_us = 0;

static void spin(long us) {
    struct timespec start, now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
    do {
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000L + (now.tv_nsec - start.tv_nsec) / 1000L < us);
}

/* Events that the MTA may leave out (SMFIP_NO*). */
static const unsigned long kSkipAll = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
                                      SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN |
                                      SMFIP_NODATA;
/* Events that we promise not to answer (SMFIP_NR_*). */
static const unsigned long kNoReplyAll = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
                                         SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH |
                                         SMFIP_NR_BODY;

/*
 * Make every TCP connection that libmilter accepts use TCP_NODELAY.
 *
 * Why: when a filter modifies the message at end-of-message, libmilter sends
 * each modification and then the final reply as separate small writes.  With
 * Nagle's algorithm on, the final reply is held back until the MTA ACKs the
 * first write, and the MTA (Postfix) delays that ACK because it has nothing to
 * send while it waits for the reply: ~40 ms per message on Linux.
 *
 * How: libmilter offers no hook to reach the sockets it accepts, but on Linux an
 * accepted TCP socket inherits TCP_NODELAY from its listening socket.  So call
 * this after smfi_opensocket() (which creates the listener) and before
 * smfi_main() (which accepts): it walks this process's file descriptors, finds
 * the listening sockets (SO_ACCEPTCONN == 1) of family AF_INET or AF_INET6 and
 * sets TCP_NODELAY on them.  Unix-domain sockets have no Nagle and are left alone.
 *
 * Returns the number of listening sockets changed, or -1 with errno set if
 * setting the option failed on one of them.  Self-contained: needs only
 * <sys/socket.h>, <netinet/in.h>, <netinet/tcp.h>, <sys/resource.h>, <unistd.h>.
 */
int set_nodelay_on_tcp_listeners(void) {
    /* The listener is opened at start-up, so its number is small; the cap only
     * keeps the scan short when the descriptor limit is huge. */
    struct rlimit lim;
    int max_fd = 65536;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < 65536) {
        max_fd = (int)lim.rlim_cur;
    }
    int changed = 0;
    for (int fd = 0; fd < max_fd; ++fd) {
        int accepting = 0;
        socklen_t len = sizeof accepting;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || accepting != 1) {
            continue; /* not open, not a socket, or not listening */
        }
        struct sockaddr_storage addr;
        socklen_t addr_len = sizeof addr;
        if (getsockname(fd, (struct sockaddr*)&addr, &addr_len) != 0) continue;
        if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) continue;
        int on = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0) return -1;
        ++changed;
    }
    return changed;
}

static sfsistat noop_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                               unsigned long f3, unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                               unsigned long* pf3) {
    (void)ctx;
    (void)f2;
    (void)f3;
    if (opt_add_header && !(f0 & SMFIF_ADDHDRS)) {
        fprintf(stderr, "vigil-noop-milter: MTA does not allow adding headers\n");
        return SMFIS_REJECT; /* libmilter closes the connection */
    }
    unsigned long want = opt_receive ? kNoReplyAll : (kSkipAll | kNoReplyAll);
    if (opt_answer_data) want &= ~(SMFIP_NODATA | SMFIP_NR_DATA);
    *pf0 = opt_add_header ? SMFIF_ADDHDRS : 0;
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

/* In --receive mode every event is answered with "no reply"; we asked for every
 * NR_* flag, and an MTA that did not offer one (pre-v6) is not what we test. */
static sfsistat noop_connect(SMFICTX* ctx, char* host, struct sockaddr* addr) {
    (void)ctx;
    (void)host;
    (void)addr;
    return SMFIS_NOREPLY;
}
static sfsistat noop_helo(SMFICTX* ctx, char* name) {
    (void)ctx;
    (void)name;
    return SMFIS_NOREPLY;
}
static sfsistat noop_envelope(SMFICTX* ctx, char** argv) {
    (void)ctx;
    (void)argv;
    return SMFIS_NOREPLY;
}
static sfsistat noop_header(SMFICTX* ctx, char* name, char* value) {
    (void)ctx;
    (void)name;
    (void)value;
    return SMFIS_NOREPLY;
}
static sfsistat noop_ctx_only(SMFICTX* ctx) {
    (void)ctx;
    return SMFIS_NOREPLY;
}
static sfsistat noop_body(SMFICTX* ctx, unsigned char* chunk, size_t len) {
    (void)ctx;
    (void)chunk;
    (void)len;
    return SMFIS_NOREPLY;
}
static sfsistat noop_data_answered(SMFICTX* ctx) {
    (void)ctx;
    return SMFIS_CONTINUE;
}
static sfsistat noop_unknown(SMFICTX* ctx, const char* cmd) {
    (void)ctx;
    (void)cmd;
    return SMFIS_NOREPLY;
}

static sfsistat noop_eom(SMFICTX* ctx) {
    if (opt_spin_us > 0) spin(opt_spin_us);
    if (opt_add_header && smfi_addheader(ctx, "X-Noop", "1") != MI_SUCCESS) {
        return SMFIS_TEMPFAIL;
    }
    return SMFIS_ACCEPT;
}

static void usage(FILE* out) {
    fprintf(out,
            "usage: vigil-noop-milter -p SOCKET [--add-header] [--nodelay] [--answer-data] [--receive]\n"
            "                         [--spin-us N]\n"
            "  -p SOCKET      inet:PORT@HOST, inet6:PORT@HOST or unix:/path\n"
            "  --add-header   add \"X-Noop: 1\" at end of message\n"
            "  --nodelay      TCP_NODELAY on accepted connections (no filter-side Nagle stall)\n"
            "  --answer-data  answer the DATA event (no MTA-side Nagle stall)\n"
            "  --receive      receive every event instead of skipping them\n"
            "  --spin-us N    burn N microseconds of CPU at end of message\n");
}

int main(int argc, char** argv) {
    static const struct option longopts[] = {
        {"add-header", no_argument, NULL, 'a'},
        {"nodelay", no_argument, NULL, 'n'},
        {"answer-data", no_argument, NULL, 'd'},
        {"receive", no_argument, NULL, 'r'},
        {"spin-us", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char* conn = NULL;
    bool nodelay = false;
    int c;
    while ((c = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
        switch (c) {
            case 'p':
                conn = optarg;
                break;
            case 'a':
                opt_add_header = true;
                break;
            case 'n':
                nodelay = true;
                break;
            case 'd':
                opt_answer_data = true;
                break;
            case 'r':
                opt_receive = true;
                break;
            case 's': {
                char* end = NULL;
                opt_spin_us = strtol(optarg, &end, 10);
                if (end == optarg || *end != '\0' || opt_spin_us < 0 || opt_spin_us > 1000000) {
                    fprintf(stderr, "vigil-noop-milter: --spin-us wants 0 to 1000000\n");
                    return 2;
                }
                break;
            }
            case 'h':
                usage(stdout);
                return 0;
            default:
                usage(stderr);
                return 2;
        }
    }
    if (conn == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    struct smfiDesc desc;
    memset(&desc, 0, sizeof desc);
    desc.xxfi_name = "vigil-noop";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = opt_add_header ? SMFIF_ADDHDRS : 0;
    desc.xxfi_eom = noop_eom;
    desc.xxfi_negotiate = noop_negotiate;
    if (opt_receive) {
        desc.xxfi_connect = noop_connect;
        desc.xxfi_helo = noop_helo;
        desc.xxfi_envfrom = noop_envelope;
        desc.xxfi_envrcpt = noop_envelope;
        desc.xxfi_header = noop_header;
        desc.xxfi_eoh = noop_ctx_only;
        desc.xxfi_body = noop_body;
        desc.xxfi_unknown = noop_unknown;
        desc.xxfi_data = noop_ctx_only;
    }
    if (opt_answer_data) desc.xxfi_data = noop_data_answered;

    if (smfi_register(desc) != MI_SUCCESS) {
        fprintf(stderr, "vigil-noop-milter: smfi_register failed\n");
        return 1;
    }
    if (smfi_setconn((char*)conn) != MI_SUCCESS) {
        fprintf(stderr, "vigil-noop-milter: bad socket spec %s\n", conn);
        return 2;
    }
    /* Open the listener now, not inside smfi_main(), so --nodelay can reach it. */
    if (smfi_opensocket(true) != MI_SUCCESS) {
        fprintf(stderr, "vigil-noop-milter: cannot open %s\n", conn);
        return 1;
    }
    if (nodelay) {
        int n = set_nodelay_on_tcp_listeners();
        if (n < 0) {
            fprintf(stderr, "vigil-noop-milter: TCP_NODELAY on listener: %s\n", strerror(errno));
            return 1;
        }
        if (n == 0 && strncmp(conn, "unix:", 5) != 0 && strncmp(conn, "local:", 6) != 0) {
            fprintf(stderr, "vigil-noop-milter: --nodelay: no TCP listening socket found\n");
            return 1;
        }
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
